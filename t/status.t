# The status page's figures stay right and stay where they belong (issues 12,
# 15, 16), each on a private server (t/perl/PWPrivate.pm) under the MPM
# being tested:
#  1. a child killed by SIGKILL whose pid is then reused by a new child
#     (forced: the server runs in a pid namespace of its own, and
#     /proc/sys/kernel/ns_last_pid makes the replacement get the dead
#     child's pid) leaves no duplicate series in the Prometheus scrape,
#     checked with prometheus_client's parser and a "no two samples with the
#     same name and labels" pass over every family;
#  2. a tenant's .htaccess (AllowOverride FileInfo) cannot publish the
#     figures: SetHandler pywsgi-status there is refused (404, one PW0505
#     line) and PyWSGIStatus is not allowed there; the administrator's
#     PyWSGIStatus On location serves them; and what a client puts in the
#     URL (%0a, %0d, ESC) cannot forge a line in the error log through the
#     module's own lines (PW0301) or the app's stdout/stderr (CWE-117).
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm is_threaded_mpm);
use PWServer ();
use PWPrivate ();

my $mpm    = mpm() || 'event';
my $top    = Apache::Test::vars('top_dir');
my $PYTHON = '/usr/bin/python3';
my $STATUS = '/pywsgi-status';

plan tests => 3;

# The Prometheus text through prometheus_client's parser, then every family's
# samples checked for a repeated (name, labels): Prometheus rejects a whole
# scrape that has one.  Returns { families => N, samples => N,
# duplicates => [...] } or an error string.
sub prom_check {
    my $text = shift;
    my $in = File::Temp->new;
    binmode $in;
    print {$in} $text;
    close $in;
    my $script = File::Temp->new(SUFFIX => '.py');
    print {$script} <<'PY';
import json, sys
from prometheus_client.parser import text_string_to_metric_families
fams = samples = 0
dups = []
with open(sys.argv[1], encoding="utf-8") as f:
    for fam in text_string_to_metric_families(f.read()):
        fams += 1
        seen = set()
        for s in fam.samples:
            samples += 1
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                dups.append("%s%s" % (s.name, dict(key[1])))
            seen.add(key)
print(json.dumps({"families": fams, "samples": samples, "duplicates": dups}))
PY
    close $script;
    my $out = qx($PYTHON $script $in 2>&1);
    return "parser failed: $out" if $?;
    return eval { JSON::PP->new->decode($out) } || "bad output: $out";
}

# --- 1. a reused pid never makes two series ------------------------------------
{
    # PWPrivate, but httpd runs in the foreground as pid 1 of a pid
    # namespace of its own (unshare), so nothing else takes pids there and a
    # write to ns_last_pid decides the next child's pid.
    package PWPidNS;
    our @ISA = ('PWPrivate');

    sub start {
        my $self = shift;
        $self->{port} = PWServer::free_port(8700 .. 8719)
            or return $self->fail('no free port in 8700-8719');
        open my $fh, '>', $self->conf_file or return $self->fail("conf: $!");
        print {$fh} $self->config_text;
        close $fh;
        my $pid = fork;
        return $self->fail("fork: $!") unless defined $pid;
        if ($pid == 0) {
            POSIX::setsid();
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', "$self->{dir}/stdout";
            open STDERR, '>&', \*STDOUT;
            exec('unshare', '--pid', '--fork', '--mount-proc',
                 '/usr/sbin/apache2', '-f', $self->conf_file, '-DFOREGROUND')
                or POSIX::_exit(127);
        }
        $self->{unshare} = $pid;
        my $deadline = time + 20;
        while (time < $deadline) {
            my ($init) = PWServer::proc_children($pid);
            if ($init) {
                $self->{pid} = $init;
                my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $self->{port},
                                              Proto => 'tcp', Timeout => 1);
                if ($s) { close $s; return 1 }
            }
            return $self->fail('unshare/httpd exited')
                if waitpid($pid, POSIX::WNOHANG()) == $pid;
            sleep 0.05;
        }
        return $self->fail('httpd did not accept connections in 20 s');
    }

    sub stop {
        my $self = shift;
        my @left = $self->SUPER::stop(@_);
        if (my $pid = delete $self->{unshare}) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
        }
        return @left;
    }

    # host pid => pid inside the namespace, for the httpd children.
    sub ns_children {
        my $self = shift;
        my %ns;
        for my $host ($self->children) {
            open my $fh, '<', "/proc/$host/status" or next;
            while (<$fh>) {
                $ns{$host} = $1 if /^NSpid:\s+\d+\s+(\d+)/;
            }
            close $fh;
        }
        return %ns;
    }
}

sub status_json {
    my $srv = shift;
    my $res = $srv->get("$STATUS?format=json");
    return undef unless $res && $res->{status} == 200;
    return eval { JSON::PP->new->decode($res->{body}) };
}

# Waits until the status page lists every pid of @pids as a child.
sub wait_listed {
    my ($srv, $secs, @pids) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my $j = status_json($srv);
        if ($j) {
            my %listed = map { $_->{pid} => 1 } @{ $j->{children} };
            return $j unless grep { !$listed{$_} } @pids;
        }
        sleep 0.1;
    }
    return undef;
}

subtest 'a pid reused after SIGKILL: no duplicate series' => sub {
    # prefork: ServerLimit above the pool, so a free slot is there for the
    # replacement (as on any server with room to grow).
    my $srv = PWPidNS->new(mpm => $mpm, procs => 2, threads => 2, extra => <<"CONF");
@{[ $mpm eq 'prefork' ? 'ServerLimit 4' : '' ]}
PyWSGIScriptAlias /m \@TOP\@/t/apps/metrics_app.py
<Location $STATUS>
    SetHandler pywsgi-status
    PyWSGIStatus On
</Location>
CONF
    ok($srv->start, 'private server in a pid namespace') or return diag($srv->{error});
    $srv->wait_children(2, 10);
    my %ns = $srv->ns_children;
    is(scalar keys %ns, 2, 'two children') or return;
    ok(wait_listed($srv, 10, values %ns), 'both listed') or return;
    $srv->get('/m/ok') for 1 .. 4;

    my ($reused, $killed_at);
    for my $try (1 .. 4) {
        my ($host) = sort { $a <=> $b } keys %ns;
        my $victim = $ns{$host};
        # The next pid handed out in the namespace is $victim: the writer
        # (nsenter's child) takes one before it writes.
        system('nsenter', '-t', $host, '--pid', '--', 'sh', '-c',
               'echo ' . ($victim - 1) . ' > /proc/sys/kernel/ns_last_pid') == 0
            or return fail('nsenter could not set ns_last_pid');
        $killed_at = time;
        kill 'KILL', $host;
        my $deadline = time + 10;
        my %new;
        while (time < $deadline) {
            %new = $srv->ns_children;
            last if keys %new == 2 && !$new{$host};
            sleep 0.05;
        }
        if (grep { $_ == $victim } values %new) {
            $reused = $victim;
            %ns = %new;
            last;
        }
        diag("try $try: the replacement got another pid");
        %ns = %new;
    }
    ok($reused, "the replacement child has the killed child's pid") or return;
    # The replacement has run child_init once it is listed as started
    # after the kill.
    my $listed;
    my $deadline = time + 10;
    while (!$listed && time < $deadline) {
        my $j = status_json($srv) || {};
        $listed = grep { $_->{pid} == $reused && $_->{started} > $killed_at }
                  @{ $j->{children} || [] };
        sleep 0.1;
    }
    ok($listed, "pid $reused (the replacement) is listed")
        or return diag($srv->log_tail(20));
    $srv->get('/m/ok') for 1 .. 4;

    my $res = $srv->get("$STATUS?format=prometheus");
    is($res->{status}, 200, 'scrape: 200');
    my $check = prom_check($res->{body});
    ok(ref $check, 'prometheus_client parses the scrape') or return diag($check);
    ok($check->{samples} > 30, "$check->{samples} samples in $check->{families} families");
    is_deeply($check->{duplicates}, [], 'no two samples with the same name and labels')
        or diag(join "\n", grep { /pid="$reused"/ } split /\n/, $res->{body});

    my $j = status_json($srv);
    is(scalar(grep { $_->{pid} == $reused } @{ $j->{children} }), 1,
       "JSON lists pid $reused once");
    is(scalar @{ $j->{children} }, 2, 'two children in JSON');
    $srv->stop;
};

# --- 2. only the administrator publishes the figures ---------------------------
sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print {$fh} $text;
    close $fh;
    chmod 0644, $path;
}

subtest "a tenant's .htaccess cannot publish the status page" => sub {
    my $srv = PWPrivate->new(mpm => $mpm, procs => 1, threads => 2, extra => <<'CONF');
PyWSGIScriptAlias /m @TOP@/t/apps/metrics_app.py
<Directory "@DIR@/htdocs">
    AllowOverride FileInfo
</Directory>
CONF
    for my $t (qw(tenant tenant2)) {
        mkdir "$srv->{dir}/htdocs/$t";
        chmod 0755, "$srv->{dir}/htdocs/$t";
    }
    write_file("$srv->{dir}/htdocs/tenant/.htaccess", "SetHandler pywsgi-status\n");
    write_file("$srv->{dir}/htdocs/tenant2/.htaccess",
               "PyWSGIStatus On\nSetHandler pywsgi-status\n");
    ok($srv->start, 'private server') or return diag($srv->{error});
    is($srv->get('/m/ok')->{status}, 200, 'the app serves');

    my $off = $srv->log_offset;
    for my $q ('', '?format=json', '?format=prometheus') {
        my $res = $srv->get("/tenant/$q");
        is($res->{status}, 404, "SetHandler pywsgi-status in .htaccess: /tenant/$q 404");
        unlike($res->{body} // '', qr/pywsgi_requests_total|"apps"|mod_pywsgi status/,
               'and no figures');
    }
    my $text = $srv->wait_for_log($off, qr/(?:.*PW0505.*\n){3}/, 3);
    my @lines = grep { /PW0505/ } split /\n/, $text;
    is(scalar @lines, 3, 'one PW0505 line per refused request');
    like($lines[0] // '', qr{PW0505: /tenant/: handler pywsgi-status refused: PyWSGIStatus is not On or Host},
         'PW0505 names the URL and the reason');

    my $res = $srv->get('/tenant2/?format=prometheus');
    is($res->{status}, 500, 'PyWSGIStatus in .htaccess: 500');
    unlike($res->{body} // '', qr/pywsgi_requests_total/, 'and no figures');
    like($srv->log_text($off), qr/PyWSGIStatus not allowed here/,
         "Apache's own line: PyWSGIStatus not allowed here");
    $srv->stop;
};

subtest 'the administrator publishes it; the URL cannot forge log lines' => sub {
    my $srv = PWPrivate->new(mpm => $mpm, procs => 1, threads => 2, extra => <<"CONF");
PyWSGIScriptAlias /m \@TOP\@/t/apps/metrics_app.py
PyWSGIScriptAlias /forge \@TOP\@/t/apps/logforge.py
<Location $STATUS>
    SetHandler pywsgi-status
    PyWSGIStatus On
</Location>
CONF
    ok($srv->start, 'private server') or return diag($srv->{error});
    is($srv->get('/m/ok')->{status}, 200, 'the app serves');
    my $res = $srv->get("$STATUS?format=prometheus");
    is($res->{status}, 200, 'PyWSGIStatus On: 200');
    like($res->{body}, qr/^pywsgi_requests_total\{app="[^"]*metrics_app.py",status_class="2xx"\} 1$/m,
         'with the figures');

    my $off = $srv->log_offset;
    my $forged = 'FORGED' . int(rand(1e9));
    for my $path ("/forge/a%0a$forged", "/forge/b%0d%0a[Mon Jan 01 00:00:00.000000 2024] [core:crit] $forged",
                  "/forge/c%1b[31m$forged", "/forge/raise/d%0a$forged") {
        (my $p = $path) =~ s/ /%20/g;
        $srv->get($p);
    }
    my $text = $srv->wait_for_log($off, qr/PW0301.*\n/, 5);
    sleep 0.3;
    $text = $srv->log_text($off);
    my @lines = split /\n/, $text;
    my @marked = grep { /\Q$forged\E/ } @lines;
    ok(scalar(@marked) >= 8, scalar(@marked) . " log lines carry the client's text");
    my @bad = grep { !/^\[[A-Z][a-z]{2} [A-Z][a-z]{2} / || /\[core:crit\]/ && !/pywsgi/ } @marked;
    is_deeply(\@bad, [], "each starts with Apache's own prefix: none forged");
    my @ctl = grep { /[\x00-\x08\x0b-\x1f\x7f]/ } @lines;
    is_deeply(\@ctl, [], 'no raw control characters (CR, ESC) in the log');
    note($_) for @marked;
    ok(grep({ /PW0301/ && /\Q$forged\E/ } @lines), 'the PW0301 line has the text, escaped')
        or diag($text);
    $srv->stop;
};
