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
#     module's own lines (PW0301) or the app's stdout/stderr (CWE-117);
#  3. saturation (issue 15): an idle server shows no advice; a bounded load
#     of slow requests on 2 workers (MaxRequestWorkers 2) makes the busy
#     share, the queue wait and the advice appear, in all three formats;
#  4. tenants (issue 16): PyWSGIStatus Host in a virtual host's <Location>
#     shows that host's own apps only, no children, no server totals; the
#     administrator's PyWSGIStatus On page shows every app;
#  5. a child near PyWSGIMaxMemory (80% or more) gets a line of advice, one
#     below it none.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use LWP::UserAgent ();
use POSIX ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm is_threaded_mpm);
use PWServer ();
use PWPrivate ();

my $mpm    = mpm() || 'event';
my $top    = Apache::Test::vars('top_dir');
my $PYTHON = '/usr/bin/python3';
my $STATUS = '/pywsgi-status';

plan tests => 6;

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
LoadModule status_module /usr/lib/apache2/modules/mod_status.so
PyWSGIScriptAlias /m @TOP@/t/apps/metrics_app.py
<Directory "@DIR@/htdocs">
    AllowOverride FileInfo
</Directory>
CONF
    for my $t (qw(tenant tenant2 tenant3)) {
        mkdir "$srv->{dir}/htdocs/$t";
        chmod 0755, "$srv->{dir}/htdocs/$t";
    }
    write_file("$srv->{dir}/htdocs/tenant/.htaccess", "SetHandler pywsgi-status\n");
    write_file("$srv->{dir}/htdocs/tenant2/.htaccess",
               "PyWSGIStatus On\nSetHandler pywsgi-status\n");
    write_file("$srv->{dir}/htdocs/tenant3/.htaccess", "SetHandler server-status\n");
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

    # mod_status's own page from .htaccess is Apache's business; the
    # mod_pywsgi section in it follows PyWSGIStatus too.
    for my $q ('', '?auto') {
        $res = $srv->get("/tenant3/$q");
        is($res->{status}, 200, "SetHandler server-status in .htaccess: /tenant3/$q 200 (mod_status)");
        unlike($res->{body} // '', qr/id="pywsgi"|PyWSGIRequests|metrics_app/,
               'but without the mod_pywsgi section');
    }
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

# --- 3. saturation, measured and explained ------------------------------------
# $n requests at once, each on a connection of its own; returns how many got
# a 200. Bounded by 30 s.
sub burst {
    my ($port, $n, $path) = @_;
    my (@socks, %text);
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 5) or next;
        print {$s} "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        push @socks, $s;
        $text{$s} = '';
    }
    my $sel = IO::Select->new(@socks);
    my $deadline = time + 30;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(0.2)) {
            my $got = sysread($s, my $buf, 65536);
            if ($got) { $text{$s} .= $buf } else { $sel->remove($s); close $s }
        }
    }
    return scalar grep { m{^HTTP/1\.1 200 } } values %text;
}

my $child_rss;    # a loaded child's RSS, for the memory advice below
subtest 'saturation: figures and advice under load, none when idle' => sub {
    # MaxRequestWorkers 2 either way: 2 processes, or 1 child of 2 threads.
    my $srv = PWPrivate->new(mpm => $mpm, procs => $mpm eq 'prefork' ? 2 : 1,
                             threads => 2, extra => <<"CONF");
PyWSGIScriptAlias /m \@TOP\@/t/apps/metrics_app.py
<Location $STATUS>
    SetHandler pywsgi-status
    PyWSGIStatus On
</Location>
CONF
    ok($srv->start, 'private server, MaxRequestWorkers 2') or return diag($srv->{error});
    # The first requests may wait in the listen backlog while the child
    # starts Python: a real wait, but no sign of load.
    is($srv->get('/m/ok')->{status}, 200, 'the app serves') for 1 .. 3;
    my $idle = status_json($srv);
    ok($idle, 'JSON') or return;
    is($idle->{workers}{max}, 2, 'workers.max = MaxRequestWorkers = 2');
    is($idle->{saturated_share_last_minute}, 0, 'idle: never saturated');
    my $html = $srv->get($STATUS)->{body} // '';
    like($html, qr/id="pywsgi-saturation"/, 'idle: the saturation line is there');
    unlike($html, qr/pywsgi-advice/, 'idle: no advice');

    # 3 rounds of 6 requests of 0.3 s on 2 workers: each round keeps both
    # busy for ~0.9 s while 4 requests wait.
    my $served = 0;
    $served += burst($srv->{port}, 6, '/m/slow?0.3') for 1 .. 3;
    is($served, 18, '18 slow requests served');

    my $j = status_json($srv);
    ok($j, 'JSON after the load') or return;
    note(sprintf('JSON: workers %s, saturated %.2f s, share of the last minute %.2f, '
                 . 'queue wait p50 %s p90 %s p99 %s s (%d requests)',
                 JSON::PP->new->canonical->encode($j->{workers} || {}),
                 $j->{saturated_seconds} // -1, $j->{saturated_share_last_minute} // -1,
                 map({ $j->{queue_wait}{$_} // 'null' } qw(p50 p90 p99)),
                 $j->{queue_wait}{count} // -1));
    cmp_ok($j->{saturated_seconds}, '>', 1, 'saturated for more than 1 s');
    cmp_ok($j->{saturated_share_last_minute}, '>', 0.05, 'a share of the last minute');
    cmp_ok($j->{queue_wait}{count}, '>=', 18, 'queue waits counted');
    cmp_ok($j->{queue_wait}{p90}, '>=', 0.2, 'p90 queue wait: the requests waited');
    my ($app) = grep { $_->{app} =~ /metrics_app\.py$/ } @{ $j->{apps} };
    cmp_ok($app->{queue_wait}{p90} // 0, '>=', 0.2, 'per app too');
    ok(!grep({ !defined $_->{busy_workers} } @{ $j->{children} }),
       'busy/idle workers per child');
    $child_rss = (sort { $b <=> $a } map { $_->{rss_bytes} } @{ $j->{children} })[0];

    $html = $srv->get($STATUS)->{body} // '';
    my ($sat) = $html =~ m{(<p id="pywsgi-saturation">.*?</p>)}s;
    my ($adv) = $html =~ m{(<p class="pywsgi-advice" id="pywsgi-advice-queue">.*?</p>)}s;
    note("HTML: $sat") if $sat;
    note("HTML: $adv") if $adv;
    ok($adv, 'the HTML page gives advice') or return diag($html);
    like($adv, qr/All 2 workers were busy in applications \d+% of the last minute; requests waited [\d.]+ (ms|s) at p90/,
         'in plain words: how busy, how long requests waited');
    like($adv, $mpm eq 'prefork' ? qr/Raise MaxRequestWorkers \(and ServerLimit\)/
                                 : qr/Raise ThreadsPerChild or MaxRequestWorkers/,
         'and what to raise under ' . $mpm);

    my $res = $srv->get("$STATUS?format=prometheus");
    my $check = prom_check($res->{body});
    ok(ref $check, 'Prometheus parses') or return diag($check);
    is_deeply($check->{duplicates}, [], 'no duplicate series');
    like($res->{body}, qr/^pywsgi_workers_max 2$/m, 'pywsgi_workers_max 2');
    my ($sat_total) = $res->{body} =~ /^pywsgi_saturated_seconds_total (\S+)$/m;
    cmp_ok($sat_total // 0, '>', 1, 'pywsgi_saturated_seconds_total > 1');
    like($res->{body}, qr/^pywsgi_queue_wait_seconds_count\{app="[^"]*metrics_app\.py"\} (1[89]|[2-9]\d)$/m,
         'pywsgi_queue_wait_seconds histogram per app');
    like($res->{body}, qr/^pywsgi_workers\{state="busy"\} \d+$/m, 'pywsgi_workers{state}');
    $srv->stop;
};

# --- 4. tenants see only their own figures -------------------------------------
subtest 'PyWSGIStatus Host: each tenant sees its own apps only' => sub {
    my $srv = PWPrivate->new(mpm => $mpm, procs => 1, threads => 4, extra => <<'CONF');
PyWSGIScriptAlias /m @TOP@/t/apps/metrics_app.py
<VirtualHost *>
    ServerName admin.test
    <Location /pywsgi-status>
        SetHandler pywsgi-status
        PyWSGIStatus On
    </Location>
</VirtualHost>
<VirtualHost *>
    ServerName alice.test
    PyWSGIScriptAlias /a @TOP@/t/apps/env.py
    <Location /my-status>
        SetHandler pywsgi-status
        PyWSGIStatus Host
    </Location>
</VirtualHost>
<VirtualHost *>
    ServerName bob.test
    PyWSGIScriptAlias /b @TOP@/t/apps/env.py callable=alt_application
    <Location /my-status>
        SetHandler pywsgi-status
        PyWSGIStatus Host
    </Location>
</VirtualHost>
CONF
    ok($srv->start, 'private server with three virtual hosts') or return diag($srv->{error});
    my $ua = LWP::UserAgent->new(timeout => 15, keep_alive => 0);
    my $get = sub {
        my ($host, $path) = @_;
        return $ua->get("http://127.0.0.1:$srv->{port}$path", Host => $host);
    };
    my %want = (alice => ['/a/', 3, "$top/t/apps/env.py"],
                bob => ['/b/', 5, "$top/t/apps/env.py:alt_application"]);
    for my $t (sort keys %want) {
        my ($path, $n) = @{ $want{$t} };
        is($get->("$t.test", $path)->code, 200, "$t: $path serves") for 1 .. $n;
    }
    is($get->('alice.test', '/m/ok')->code, 200, "the main server's app, through alice's host");

    for my $t (sort keys %want) {
        my ($path, $n, $label) = @{ $want{$t} };
        my $res = $get->("$t.test", '/my-status?format=json');
        is($res->code, 200, "$t: her status page");
        my $j = eval { JSON::PP->new->decode($res->decoded_content) } || {};
        is($j->{host}, "$t.test", "$t: host $t.test");
        is_deeply([map { $_->{app} } @{ $j->{apps} || [] }], [$label], "$t: only $label");
        is(($j->{apps} || [{}])->[0]{requests}, $n, "$t: its $n requests");
        is_deeply($j->{children}, [], "$t: no children (pids, memory)");
        ok(!exists $j->{workers} && !exists $j->{child_starts}, "$t: no server totals");

        my $prom = $get->("$t.test", '/my-status?format=prometheus')->decoded_content;
        my $check = prom_check($prom);
        ok(ref $check && !@{ $check->{duplicates} }, "$t: Prometheus parses");
        my %apps = map { $_ => 1 } $prom =~ /app="([^"]*)"/g;
        is_deeply([sort keys %apps], [$label], "$t: Prometheus: only $label");
        unlike($prom, qr/pid="|pywsgi_children|pywsgi_workers/, "$t: Prometheus: nothing server-wide");

        my $html = $get->("$t.test", '/my-status')->decoded_content;
        like($html, qr/id="pywsgi-host">\Q$t\E\.test</, "$t: HTML names the host");
        my %rows = map { $_ => 1 } $html =~ /tr class="pywsgi-app[^"]*" data-app="([^"]*)"/g;
        is_deeply([sort keys %rows], [$label], "$t: HTML: only $label");
        unlike($html, qr/pywsgi-children|pywsgi-saturation/, "$t: HTML: no children, no workers");
    }

    my $res = $get->('admin.test', '/pywsgi-status?format=json');
    is($res->code, 200, "the administrator's page");
    my $j = eval { JSON::PP->new->decode($res->decoded_content) } || {};
    my %all = map { $_->{app} => $_->{requests} } @{ $j->{apps} || [] };
    is_deeply(\%all, { "$top/t/apps/metrics_app.py" => 1, "$top/t/apps/env.py" => 3,
                       "$top/t/apps/env.py:alt_application" => 5 },
              'lists every app with its requests');
    ok(scalar @{ $j->{children} || [] }, 'and the children');
    is($get->('alice.test', '/pywsgi-status')->code, 404,
       "alice's host has no /pywsgi-status (the admin's is in another host)");
    $srv->stop;
};

# --- 5. memory advice ------------------------------------------------------------
subtest 'a child near PyWSGIMaxMemory gets advice' => sub {
    ok($child_rss, 'a loaded child held ' . int(($child_rss || 0) / 1048576) . ' MiB')
        or return;
    # A limit the children should sit at 80-100% of once they have served.
    my $limit = int($child_rss / 1048576 / 0.9) + 1;
    my $srv = PWPrivate->new(mpm => $mpm, procs => 1, threads => 2, extra => <<"CONF");
PyWSGIMaxMemory $limit
PyWSGIScriptAlias /m \@TOP\@/t/apps/metrics_app.py
<Location $STATUS>
    SetHandler pywsgi-status
    PyWSGIStatus On
</Location>
CONF
    ok($srv->start, "private server, PyWSGIMaxMemory $limit") or return diag($srv->{error});
    $srv->get('/m/ok') for 1 .. 5;
    my $html = $srv->get($STATUS)->{body} // '';
    my %rss = $html =~ /data-pid="(\d+)">.*?<td class="rss" data-value="(\d+)"/g;
    ok(scalar keys %rss, 'children listed with their RSS');
    my %advised = map { $_ => 1 } $html =~ /pywsgi-advice-memory" data-pid="(\d+)"/g;
    my $near = 0;
    for my $pid (sort keys %rss) {
        my $share = $rss{$pid} / ($limit * 1048576);
        $near++ if $share >= 0.8;
        is($advised{$pid} ? 1 : 0, $share >= 0.8 ? 1 : 0,
           sprintf('pid %d at %.0f%% of %d MiB: %s', $pid, 100 * $share, $limit,
                   $share >= 0.8 ? 'advice' : 'none'));
    }
    my ($line) = $html =~ m{(<p class="pywsgi-advice pywsgi-advice-memory".*?</p>)}s;
    note("HTML: $line") if $line;
    ok($near, 'at least one child near the limit (else the check above proves little)');
    like($line // '', qr/Child \d+ holds [\d.]+ MiB, \d+% of PyWSGIMaxMemory \(\d+\.\d MiB\): it will be recycled/,
         'in plain words') if $near;
    $srv->stop;
};
