# Each tenant as its own user, with mpm-itk (issue 16), in a private httpd:
# Debian's mpm-itk (t/tools/fetch-itk unpacks it into /var/cache/pywsgi-test,
# never installs it) loaded on top of prefork, two name-based virtual hosts
# with "AssignUserID alice alice" and "AssignUserID bob bob", each serving
# its app.wsgi by handler from a document root only its tenant can read
# (0750).  Checks through HTTP that:
# - each app runs as its tenant's uid, and was imported as that uid (no app
#   code ever runs as root: Python starts in the root child, apps load only
#   after mpm-itk's setuid in the connection's own process);
# - alice reads her files and not bob's (nor bob's app's source), and
#   cannot signal bob's process;
# - PyWSGIRequestTimeout holds in a connection's process (mpm-itk forks
#   it from the root child, where the watchdog thread was started: a thread
#   does not survive fork(), so the process starts its own): a spinning
#   request gets 504 and PW0401;
# - PyWSGIPreload under mpm-itk fails configtest, saying why.
# Runs under prefork only (mpm-itk is a prefork add-on); skipped elsewhere.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use PWTest qw(decode_json_body mpm);
use PWPrivate ();
use PWServer ();

my $top = Apache::Test::vars('top_dir');

plan skip_all => 'mpm-itk runs on top of prefork only' if mpm() ne 'prefork';
plan skip_all => 'needs root (users, setuid)' if $> != 0;
chomp(my $itk = `$top/t/tools/fetch-itk 2>/dev/null`);
plan skip_all => 'mpm-itk could not be fetched (apt-get download '
    . 'libapache2-mpm-itk)' unless $itk && -e $itk;

# The tenants' users, made once per machine.
for my $u (qw(alice bob)) {
    next if defined getpwnam($u);
    system('useradd', '--system', '--user-group', '--no-create-home',
           '--shell', '/usr/sbin/nologin', $u) == 0
        or BAIL_OUT("useradd $u failed");
}
my %uid = map { $_ => scalar((getpwnam($_))[2]) } qw(alice bob);
my %gid = map { $_ => scalar((getpwnam($_))[3]) } qw(alice bob);

plan tests => 6;

# The tenants' trees: /tmp/pwitk-XXXX/{alice,bob}, each 0750 owned by its
# tenant (others cannot even list it), with a secret 0600 inside.
my $tmp = File::Temp->newdir('pwitk-XXXXXX', TMPDIR => 1);
my $base = $tmp->dirname;
chmod 0711, $base;
my $app = <<'EOF_APP';
import json
import os
import time

IMPORTED_AS = os.getuid()      # the uid the module's code ran as


def probe(path):
    try:
        with open(path) as f:
            return "read:" + f.read().strip()
    except OSError as e:
        return type(e).__name__


def application(environ, start_response):
    q = dict(p.split("=", 1) for p in environ["QUERY_STRING"].split("&") if "=" in p)
    out = dict(uid=os.getuid(), euid=os.geteuid(), gid=os.getgid(),
               imported_as=IMPORTED_AS, pid=os.getpid())
    for key in ("read", "read2"):
        if key in q:
            out[key] = probe(q[key])
    if "spin" in q:    # pure Python, interruptible between bytecodes
        end = time.monotonic() + float(q["spin"])
        while time.monotonic() < end:
            pass
    if "kill" in q:
        try:
            os.kill(int(q["kill"]), 0)
            out["kill"] = "allowed"
        except OSError as e:
            out["kill"] = type(e).__name__
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
EOF_APP
for my $t (qw(alice bob)) {
    my $d = "$base/$t";
    mkdir $d or die "$d: $!";
    open my $fh, '>', "$d/app.wsgi" or die $!; print $fh $app; close $fh;
    open $fh, '>', "$d/secret.txt" or die $!; print $fh "$t-secret\n"; close $fh;
    open $fh, '>', "$d/.htaccess" or die $!;
    print $fh "AddHandler pywsgi-script .wsgi\nOptions +ExecCGI\n"; close $fh;
    chown $uid{$t}, $gid{$t}, $d, "$d/app.wsgi", "$d/secret.txt", "$d/.htaccess";
    chmod 0640, "$d/app.wsgi", "$d/.htaccess";
    chmod 0600, "$d/secret.txt";
    chmod 0750, $d;
}

sub vhosts {
    my ($port) = @_;
    my $conf = '';
    for my $t (qw(alice bob)) {
        $conf .= <<"EOF_VH";
<VirtualHost 127.0.0.1:$port>
    ServerName $t.test
    AssignUserID $t $t
    PyWSGIInheritMounts Off
    PyWSGIRequestTimeout 2
    DocumentRoot "$base/$t"
    <Directory "$base/$t">
        AllowOverride FileInfo Options
        Require all granted
    </Directory>
</VirtualHost>
EOF_VH
    }
    return $conf;
}

my $srv = PWPrivate->new(mpm => 'prefork', procs => 2, ports => [8772 .. 8779],
                         extra => "LoadModule mpm_itk_module $itk\n");
# The vhosts need the port, known only once start() picks it: they are
# added to the config text start() writes.
{
    no warnings 'redefine';
    my $orig = \&PWPrivate::config_text;
    *PWPrivate::config_text = sub {
        my $self = shift;
        my $text = $orig->($self);
        return $text . vhosts($self->{port});
    };
}
$srv->start or BAIL_OUT("private httpd with mpm-itk: $srv->{error}");

sub get {
    my ($host, $path, $conn) = @_;
    my $res = $conn ? $conn->request($path, host => $host)
                    : PWServer::http_get($srv->port, $path, host => $host);
    my $d = $res->{status} == 200 ? decode_json_body($res->{body}) : undef;
    diag("GET $path ($host): $res->{status} " . ($res->{error} // $res->{body}))
        unless $d;
    return $d;
}

subtest 'each tenant\'s app runs, and was imported, as its own uid' => sub {
    for my $t (qw(alice bob)) {
        my $d = get("$t.test", '/app.wsgi') or return fail("$t: no answer");
        is($d->{uid}, $uid{$t}, "$t: uid is $t\'s");
        is($d->{euid}, $uid{$t}, "$t: euid too");
        is($d->{gid}, $gid{$t}, "$t: gid is $t\'s group");
        is($d->{imported_as}, $uid{$t}, "$t: the module was imported as $t, not root");
    }
};

subtest 'alice reads her files, not bob\'s, nor bob\'s app\'s source' => sub {
    my $d = get('alice.test', "/app.wsgi?read=$base/alice/secret.txt"
                . "&read2=$base/bob/secret.txt") or return fail('no answer');
    is($d->{read}, 'read:alice-secret', 'her own secret');
    is($d->{read2}, 'PermissionError', 'bob\'s secret: PermissionError');
    $d = get('alice.test', "/app.wsgi?read=$base/bob/app.wsgi") or return fail('no answer');
    is($d->{read}, 'PermissionError', 'bob\'s app source: PermissionError');
    $d = get('bob.test', "/app.wsgi?read=$base/alice/app.wsgi") or return fail('no answer');
    is($d->{read}, 'PermissionError', 'and bob cannot read alice\'s');
};

subtest 'alice cannot signal bob\'s process' => sub {
    # bob's connection stays open: its process (bob's uid) lives meanwhile.
    my $bob = PWServer::Conn->new($srv->port);
    my $b = get('bob.test', '/app.wsgi', $bob) or return fail('bob: no answer');
    ok(PWServer::process_alive($b->{pid}), "bob's process $b->{pid} is alive");
    my $a = get('alice.test', "/app.wsgi?kill=$b->{pid}") or return fail('alice: no answer');
    is($a->{kill}, 'PermissionError', 'alice: os.kill(bob\'s pid, 0) is EPERM');
    $bob->disconnect;
};

subtest 'a connection is one process of one tenant (mpm-itk forks per connection)' => sub {
    my $c = PWServer::Conn->new($srv->port);
    my @d = map { get('alice.test', '/app.wsgi', $c) } 1 .. 3;
    is(scalar(grep { $_ } @d), 3, 'three requests on one connection');
    is(scalar(keys %{{ map { $_->{pid} => 1 } grep { $_ } @d }}), 1,
       '... served by one process');
    my $other = get('alice.test', '/app.wsgi');
    isnt($other->{pid}, $d[0]{pid}, 'another connection, another process');
    $c->disconnect;
};

subtest 'PyWSGIRequestTimeout holds in a connection\'s process' => sub {
    my $off = $srv->log_offset;
    # 8 s of spinning against a 2 s timeout; a timeout that does not fire
    # lets it finish with 200.
    my $res = PWServer::http_get($srv->port, '/app.wsgi?spin=8', host => 'alice.test');
    is($res->{status}, 504, 'a request spinning past PyWSGIRequestTimeout 2: 504')
        or diag($res->{error} // $res->{body});
    like($srv->wait_for_log($off, qr/PW0401/, 5),
         qr/PW0401: \/app\.wsgi: application '[^']*alice\/app\.wsgi' stopped after 2 s/,
         'PW0401 names the app');
    my $c = PWServer::Conn->new($srv->port);
    my $r1 = $c->request('/app.wsgi?spin=8', host => 'bob.test');
    my $r2 = $c->request('/app.wsgi', host => 'bob.test');
    is($r1->{status}, 504, 'and in the next connection\'s process (bob\'s): 504');
    is($r2->{status}, 200, '... whose next request on that connection is served');
    $c->disconnect;
};

$srv->stop;

subtest 'PyWSGIPreload under mpm-itk fails configtest, saying why' => sub {
    my $dir = File::Temp->newdir('pwitk-conf-XXXXXX', TMPDIR => 1);
    my $conf = "$dir/httpd.conf";
    open my $fh, '>', $conf or die $!;
    print $fh <<"EOF_CONF";
ServerRoot $dir
DefaultRuntimeDir $dir
PidFile $dir/httpd.pid
ErrorLog $dir/error_log
ServerName localhost
Listen 127.0.0.1:8779
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule mpm_itk_module $itk
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule pywsgi_module $top/.libs/mod_pywsgi.so
PyWSGIPreload $top/t/apps/env.py
EOF_CONF
    close $fh;
    my $out = `/usr/sbin/apache2 -t -d $dir -f $conf 2>&1`;
    isnt($? >> 8, 0, 'configtest fails');
    like($out, qr/PW0706: PyWSGIPreload [^\n]*mpm-itk[^\n]*root/,
         'PW0706 names PyWSGIPreload, mpm-itk and root') or diag($out);
};
