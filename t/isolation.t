# No way in: request headers cannot pose as CGI or WSGI variables,
# Authorization stays hidden unless PyWSGIPassAuthorization says otherwise,
# an app in a named interpreter cannot see what another interpreter loaded,
# the children run as Apache's User (never root), and an error page never
# carries a traceback, a path or an environment value.
# Apps: t/lib/pwtest/envdump.py (/env, /auth on the main server) and
# t/apps/hostile.py (virtual host pywsgi_hostile, t/conf/hostile.conf.in).
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use PWTest qw(raw_request decode_json_body log_offset wait_for_log);
use PWPrivate ();

my $top  = Apache::Test::vars('top_dir');
my $port = Apache::Test::vars('pywsgi_hostile_port');
my $user = Apache::Test::vars('user') || 'nobody';
my $auth = 'Basic cHd0ZXN0OnNlY3JldA==';

# [header name, value, environ key that must keep its own value (or be
#  absent: undef), what the key must be]
my $absent = undef;
my @spoof_rows = (
    ['Script-Name',     '/evil',        'SCRIPT_NAME',     '/env'],
    ['Path-Info',       '/evil',        'PATH_INFO',       '/spoof'],
    ['Query-String',    'evil=1',       'QUERY_STRING',    'q=1'],
    ['Request-Method',  'DELETE',       'REQUEST_METHOD',  'GET'],
    ['Remote-Addr',     '6.6.6.6',      'REMOTE_ADDR',     '127.0.0.1'],
    ['Remote-User',     'admin',        'REMOTE_USER',     $absent],
    ['Auth-Type',       'Basic',        'AUTH_TYPE',       $absent],
    ['Server-Name',     'evil.example', 'SERVER_NAME',     qr/^(?!evil)/],
    ['Https',           'on',           'HTTPS',           $absent],
    ['Https',           'on',           'wsgi.url_scheme', 'http'],
    ['Content_Type',    'text/evil',    'CONTENT_TYPE',    $absent],
    ['Content_Type',    'text/evil',    'HTTP_CONTENT_TYPE', $absent],
    ['X_Forwarded_For', '6.6.6.6',      'HTTP_X_FORWARDED_FOR', $absent],
    ['Wsgi.url_scheme', 'https',        'wsgi.url_scheme', 'http'],
    ['Proxy',           'http://evil.example/', 'HTTP_PROXY', $absent],
    ['Authorization',   $auth,          'HTTP_AUTHORIZATION', $absent],
);

plan tests => 1 + 1 + 1 + 1 + 2;

subtest 'request headers cannot set CGI or WSGI variables' => sub {
    my $res = raw_request(path => '/env/spoof?q=1',
                          headers => [map { [$_->[0], $_->[1]] } @spoof_rows]);
    is($res->{status}, 200, 'status') or return;
    my $env = (decode_json_body($res->{body}) || {})->{environ} || {};
    for my $row (@spoof_rows) {
        my ($h, $v, $key, $want) = @$row;
        if (!defined $want) {
            ok(!exists $env->{$key}, "$h: $key absent")
                or diag("$key = '$env->{$key}'");
        }
        elsif (ref $want) {
            like($env->{$key} // '', $want, "$h: $key not taken from the header");
        }
        else {
            is($env->{$key}, $want, "$h: $key keeps its own value");
        }
    }
    # Names with '-' only are passed, as HTTP_*, and nothing else.
    is($env->{HTTP_SCRIPT_NAME}, '/evil', 'Script-Name is HTTP_SCRIPT_NAME');
    my @odd = grep { /^HTTP_/ && !/^HTTP_[A-Z0-9_]+$/ } keys %$env;
    ok(!@odd, 'every HTTP_* name is upper case, digits and _') or diag("@odd");
};

subtest 'Authorization only with PyWSGIPassAuthorization On' => sub {
    my $off = raw_request(path => '/env', headers => [['Authorization', $auth]]);
    my $on  = raw_request(path => '/auth', headers => [['Authorization', $auth]]);
    my $eoff = (decode_json_body($off->{body}) || {})->{environ} || {};
    my $eon  = (decode_json_body($on->{body}) || {})->{environ} || {};
    ok(!exists $eoff->{HTTP_AUTHORIZATION}, 'hidden by default');
    is($eon->{HTTP_AUTHORIZATION}, $auth, 'passed where it is On');
};

subtest 'a named interpreter cannot see what another loaded' => sub {
    ok($port, "virtual host pywsgi_hostile on port $port") or return;
    # One keep-alive connection: the same child answers every request.
    my $c = PWPrivate::Conn->new($port) or return fail("connect: $!");
    my $ask = sub {
        my $path = shift;
        my $res = $c->request($path);
        is($res->{status}, 200, "$path: 200") or diag($res->{body});
        return decode_json_body($res->{body}) || {};
    };
    my $a1 = $ask->('/iso/a/mark?alpha');
    is($a1->{marker}, 'alpha', 'iso_a: marker set');
    my $a2 = $ask->('/iso/a/look');
    is($a2->{marker}, 'alpha', 'iso_a sees its own marker');
    my $b = $ask->('/iso/b/look');
    is($b->{marker}, undef, 'iso_b does not');
    my $m = $ask->('/iso/main/look');
    isnt($m->{marker}, 'alpha', 'main does not see the marker set in iso_a');
    $ask->('/iso/main/mark?main');
    is($ask->('/iso/a/look')->{marker}, 'alpha', 'iso_a does not see the marker set in main');
    is($ask->('/iso/b/look')->{marker}, undef, "nor does iso_b");
    my %pids = map { $_->{pid} => 1 } grep { $_->{pid} } $a1, $a2, $b, $m;
    is(scalar keys %pids, 1, 'all in one child');
    my %ids = map { $_->{modules_id} => 1 } $a2, $b, $m;
    is(scalar keys %ids, 3, 'three different sys.modules');
    $c->close;
};

subtest "the children run as Apache's User ($user), not root" => sub {
    my $c = PWPrivate::Conn->new($port) or return fail("connect: $!");
    my $res = $c->request('/whoami', close => 1);
    my $who = decode_json_body($res->{body}) || {};
    my @pw = getpwnam($user);
    ok(defined $who->{uid}, 'the app answered') or return diag($res->{body});
    isnt($who->{uid}, 0, "uid $who->{uid} is not root");
    isnt($who->{euid}, 0, "euid $who->{euid} is not root");
    isnt($who->{gid}, 0, "gid $who->{gid} is not root's");
    ok(!grep({ $_ == 0 } @{ $who->{groups} || [] }), 'no supplementary group 0');
    is($who->{uid}, $pw[2], "uid is that of $user") if @pw;
};

# Nothing of the app, Python or the host in what the client sees.
my $leak = qr/Traceback|File "|\.py\b|RuntimeError|pwtest-secret|PWTEST|\Q$top\E|python3|mod_pywsgi/i;

subtest 'an error page carries no traceback, path or environment value' => sub {
    my $offset = log_offset();
    my $c = PWPrivate::Conn->new($port) or return fail("connect: $!");
    my $res = $c->request('/secret', close => 1);
    is($res->{status}, 500, 'status 500');
    like($res->{body}, qr/Internal Server Error/, "Apache's own error page");
    unlike($res->{body}, $leak, 'no traceback, path or secret in the body');
    my $headers = join "\n", map { "$_: $res->{headers}{$_}" } sort keys %{ $res->{headers} };
    unlike($headers, $leak, 'nor in the headers');
    # The exception did hold them: it went to the error log.
    my $log = wait_for_log($offset, qr/pwtest-secret-b7d1f0/);
    like($log, qr/PW0301: \/secret: .*RuntimeError: PWTEST secret pwtest-secret-b7d1f0/,
         'the error log has the whole message');
};

# (The virtual host inherits the main server's "/" app, so Apache's own
# 4xx pages come from requests it refuses before any app.)
subtest 'other error pages neither' => sub {
    for my $row (['/hostile/%zz'], ['/secret/a%00b'], ['/secret/../../etc/passwd'],
                 ['/hostile', body => 'x' x 2048, method => 'POST']) {
        my ($path, %o) = @$row;
        my $c = PWPrivate::Conn->new($port) or return fail("connect: $!");
        my $res = $c->request($path, close => 1, %o);
        like($res->{status}, qr/^4\d\d$/, "$path: $res->{status}");
        unlike($res->{body}, qr/Traceback|\Q$top\E|pwtest-secret/,
               "$path: no traceback, path or secret");
        $c->close;
    }
};
