# Process-wide and disruptive settings (issue 4), each scenario in a private
# httpd of its own (t/perl/PWServer.pm: temporary config, port 8650-8699,
# the MPM under test), never in the shared test server:
#   preload timing and a preloaded app that fails to import,
#   PyWSGIReload On/Off after the file changes,
#   a runaway request cut by PyWSGIRequestTimeout (504) while others go on,
#   recycling after PyWSGIMaxRequests / past PyWSGIMaxMemory,
#   a child with a never-ending thread exiting within PyWSGIShutdownTimeout,
#   graceful restarts every second under load: no failed request, new code.
# Apps: t/apps/deploy/. Every wait is bounded.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use IO::Select ();
use POSIX ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm);
use PWServer ();

my $top      = Apache::Test::vars('top_dir');
my $mpm      = mpm() || 'event';
my $threaded = $mpm ne 'prefork';
our $TODO;
my $apps     = "$top/t/apps/deploy";

my @scenarios = (
    ['PyWSGIPreload: the first request does not pay for the import', \&preload],
    ['PyWSGIPreload of an app that fails: logged once per child, 500 until fixed',
     \&preload_broken],
    ['PyWSGIReload On re-imports a changed file, Off does not', \&reload],
    ['PyWSGIRequestTimeout: a runaway request gets 504, others go on',
     \&request_timeout],
    ['PyWSGIMaxRequests 10: children recycled, no request fails', \&max_requests],
    ['PyWSGIMaxMemory 40: a child holding 60 MB is recycled', \&max_memory],
    ['PyWSGIShutdownTimeout: a never-ending thread does not hold a restart',
     \&shutdown_timeout],
    ['graceful restarts every second under load: zero failures, new code after',
     \&graceful_under_load],
);

# PW_SCENARIO=REGEX runs only the scenarios whose name matches (debugging).
if (my $only = $ENV{PW_SCENARIO}) {
    @scenarios = grep { $_->[0] =~ /$only/i } @scenarios;
}

plan tests => scalar @scenarios;

for my $s (@scenarios) {
    my ($name, $code) = @$s;
    my $t0 = time;
    subtest "$name ($mpm)" => $code;
    note(sprintf '%.1f s', time - $t0);
}

# ------------------------------------------------------------------ helpers

# A started private server, or undef after failing a test. conf may use
# @DIR@ for the server's own temporary directory; files => { name => text }
# are written there before it starts.
sub server {
    my (%a) = @_;
    my $conf = delete $a{conf} // '';
    my $files = delete $a{files} || {};
    my $srv = PWServer->new(mpm => $mpm, top => $top, %a);
    my $dir = $srv->dir;
    $conf =~ s/\@DIR\@/$dir/g;
    $srv->{conf} = $conf;
    write_file("$dir/$_", $files->{$_}) for sort keys %$files;
    unless ($srv->start) {
        fail("private httpd '$a{name}' starts");
        diag($srv->{error});
        return;
    }
    return $srv;
}

# Stops the server; checks it went away whole and nothing crashed.
sub finish {
    my $srv = shift;
    $srv->stop;
    ok(!@{ $srv->{leftovers} || [] }, 'httpd stopped with no child left behind')
        or diag("killed: @{ $srv->{leftovers} }");
    my @bad = grep { /exit signal|Segmentation fault|Fatal Python error/ }
              split /\n/, $srv->log_text;
    ok(!@bad, 'no child crashed or died of a signal') or diag(join "\n", @bad);
}

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    my $t = <$fh>;
    close $fh;
    return $t;
}

# Writes $text to $file through a rename (a reader never sees half a file),
# world-readable; with $bump, the mtime is moved $bump seconds past the old
# one (a change is then seen whatever the file system's time resolution).
sub write_file {
    my ($file, $text, $bump) = @_;
    my $old = (stat $file)[9];
    open my $fh, '>', "$file.tmp" or die "$file.tmp: $!";
    print {$fh} $text;
    close $fh or die "$file.tmp: $!";
    chmod 0644, "$file.tmp";
    rename "$file.tmp", $file or die "rename $file: $!";
    if ($bump && defined $old) {
        my $t = $old + $bump;
        $t = int(time) + $bump if $t < time;
        utime $t, $t, $file;
    }
}

# t/apps/deploy/version_app.py with another VERSION.
sub version_app {
    my $version = shift;
    (my $text = slurp("$apps/version_app.py"))
        =~ s/^VERSION = "v1"$/VERSION = "$version"/m;
    return $text;
}

sub pid_of { ($_[0]->{body} // '') =~ /pid=(\d+)/ ? $1 : undef }

# The body without its " pid=N" part, after the status: "200 v1".
sub answer {
    my $res = shift;
    return "$res->{status} " . (($res->{body} // '') =~ s/ pid=\d+\n?//r);
}

# GETs until a 200 arrives (a child may still be starting); the last response.
sub get_ok {
    my ($srv, $path, $secs) = @_;
    my $deadline = time + ($secs || 10);
    my $res;
    while (1) {
        $res = $srv->get($path, timeout => 10);
        return $res if $res->{status} == 200 || time > $deadline;
        sleep 0.1;
    }
}

sub count { my ($re, $text) = @_; my $n = () = $text =~ /$re/g; return $n }

# Load clients: forked processes, each GETting $o{path} in a loop until
# $o{until} (epoch seconds) or $o{max} requests ($o{pause} seconds apart),
# on a kept-alive connection
# or (keepalive 0) a new one per request. A request that went out on a
# kept-alive connection just as the server closed it (no byte of response)
# is retried once on a new connection, as HTTP clients do for idempotent
# requests (RFC 9112, 9.3.1): counted as "stale", not as a failure.
# A response is good when it is 200 and its body matches $o{body}; the
# first capture group of that names the version (counted as n_X, with the
# times first_X and last_X).
sub start_clients {
    my ($srv, %o) = @_;
    my @kids;
    for my $i (0 .. $#{ $o{keepalive} }) {
        my $file = $srv->dir . "/client-$i";
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            client_loop($srv->port, $file, $o{keepalive}->[$i], %o);
            POSIX::_exit(0);
        }
        push @kids, [$pid, $file];
    }
    return \@kids;
}

sub client_loop {
    my ($port, $file, $keepalive, %o) = @_;
    my $conn = PWServer::Conn->new($port, timeout => 10);
    my %r = (total => 0, ok => 0, fail => 0, stale => 0);
    my (@fails, %pids);
    while (time < $o{until} && $r{total} < $o{max}) {
        my $t = time;
        my $res = $conn->request($o{path}, keepalive => $keepalive);
        if (!$res->{status} && $res->{reused} && !$res->{got}
                && ($res->{error} // '') ne 'timeout') {
            $r{stale}++;
            $res = $conn->request($o{path}, keepalive => $keepalive);
        }
        $r{total}++;
        if ($res->{status} == 200 && $res->{body} =~ $o{body}) {
            my $v = $1 // 'ok';
            $r{ok}++;
            $r{"n_$v"}++;
            $r{"last_$v"} = time;
            $r{"first_$v"} //= time;
            $pids{ pid_of($res) // 0 }++;
        }
        else {
            $r{fail}++;
            push @fails, sprintf('at %.3f: status %s, error %s, reused %d, '
                . 'got %d bytes, body %s', $t, $res->{status},
                $res->{error} // 'none', $res->{reused}, $res->{got},
                substr($res->{body}, 0, 60)) if @fails < 5;
        }
        sleep $o{pause} if $o{pause};
    }
    $conn->disconnect;
    open my $fh, '>', $file or POSIX::_exit(1);
    print {$fh} "$_=$r{$_}\n" for sort keys %r;
    print {$fh} "pid=$_=$pids{$_}\n" for sort keys %pids;
    print {$fh} "failure=$_\n" for @fails;
    close $fh;
}

# Waits for the clients (killing any still there after $secs); returns
# { total, ok, fail, stale, n_X, first_X, last_X, pids => {pid => n},
#   failures => [...] }.
sub collect_clients {
    my ($kids, $secs) = @_;
    my $deadline = time + $secs;
    my %sum = (total => 0, ok => 0, fail => 0, stale => 0, failures => [],
               pids => {});
    for my $kid (@$kids) {
        my ($pid, $file) = @$kid;
        while (waitpid($pid, POSIX::WNOHANG()) == 0) {
            if (time > $deadline) { kill 'KILL', $pid; waitpid($pid, 0); last }
            sleep 0.05;
        }
        my %c;
        if (open my $fh, '<', $file) {
            while (my $line = <$fh>) {
                chomp $line;
                my ($k, $v) = split /=/, $line, 2;
                if ($k eq 'failure') { push @{ $sum{failures} }, $v }
                elsif ($k eq 'pid') {
                    my ($p, $n) = split /=/, $v;
                    $sum{pids}{$p} += $n;
                }
                else { $c{$k} = $v }
            }
            close $fh;
        }
        else {
            $c{fail} = 1;
            push @{ $sum{failures} }, "client $pid left no result";
        }
        for my $k (keys %c) {
            if ($k =~ /^first_/) {
                $sum{$k} = $c{$k} if !defined $sum{$k} || $c{$k} < $sum{$k};
            }
            elsif ($k =~ /^last_/) {
                $sum{$k} = $c{$k} if !defined $sum{$k} || $c{$k} > $sum{$k};
            }
            else { $sum{$k} += $c{$k} }
        }
    }
    return \%sum;
}

# ------------------------------------------------------------------ preload

sub preload {
    my $srv = server(name => 'preload', processes => 1, conf => <<"CONF") or return;
PyWSGIScriptAlias /ping $apps/ping.py
PyWSGIScriptAlias /pre  $apps/slow_preloaded.py
PyWSGIScriptAlias /lazy $apps/slow_lazy.py
PyWSGIPreload $apps/slow_preloaded.py
CONF
    # One child: this waits until it has started (and preloaded).
    my $ping = get_ok($srv, '/ping', 15);
    is($ping->{status}, 200, 'the child is up') or return finish($srv);
    my $child = pid_of($ping);

    my $sent = time;
    my $pre1 = $srv->get('/pre');
    my $pre2 = $srv->get('/pre');
    is($pre1->{status}, 200, 'preloaded app: first request 200');
    is($pre2->{status}, 200, 'preloaded app: second request 200');
    ok($pre1->{elapsed} < 0.5,
       sprintf('preloaded app: first request took %.3f s (< 0.5; the import sleeps 1 s)',
               $pre1->{elapsed}));
    ok($pre1->{elapsed} <= 4 * $pre2->{elapsed} + 0.1,
       sprintf('preloaded app: first request (%.3f s) no slower than 4 x the second (%.3f s) + 0.1 s',
               $pre1->{elapsed}, $pre2->{elapsed}));
    my ($imported) = $pre1->{body} =~ /imported_at=([\d.]+)/;
    ok(defined $imported && $imported < $sent,
       'preloaded app was imported before its first request was sent')
        or diag("imported_at " . ($imported // '?') . ", sent $sent");
    is(pid_of($pre1), $child, '... by the same child');

    my $lazy1 = $srv->get('/lazy');
    my $lazy2 = $srv->get('/lazy');
    is($lazy1->{status}, 200, 'app without preload: 200');
    ok($lazy1->{elapsed} >= 1.0,
       sprintf('app without preload: first request took %.3f s (>= 1 s: the import)',
               $lazy1->{elapsed}));
    ok($lazy2->{elapsed} < 0.5,
       sprintf('app without preload: second request took %.3f s', $lazy2->{elapsed}));
    is(pid_of($lazy1), $child, '... same child');
    finish($srv);
}

sub preload_broken {
    my $srv = server(name => 'preload-broken', processes => 2,
        files => { 'broken.py' => version_app('fixed')
                   . "\nraise RuntimeError('broken on purpose')\n" },
        conf => <<"CONF") or return;
PyWSGIScriptAlias /ping $apps/ping.py
PyWSGIScriptAlias /broken \@DIR\@/broken.py
PyWSGIPreload \@DIR\@/broken.py
CONF
    get_ok($srv, '/ping', 15);
    # Both children up: each has logged PW0001 and then its preload.
    my $log = $srv->wait_for_log(
        0, qr/(PW0201: \(preload\)(?s:.*?)){2}/, 5);
    my @children = $log =~ /PW0001: Python \S+ initialised in pid (\d+)/g;
    my @failed = $log =~ /\[pid (\d+)[^\]]*\] PW0201: \(preload\): application '[^']*broken\.py' failed to load/g;
    ok(@children >= 2, scalar(@children) . ' children started');
    is(join(',', sort @failed), join(',', sort @children),
       'PW0201 (preload) logged once per child');
    like($log, qr/PW0303: .*RuntimeError: broken on purpose/,
         'with its traceback');

    my $res = $srv->get('/broken');
    is($res->{status}, 500, 'its requests get 500');
    unlike($res->{body}, qr/RuntimeError/, 'no traceback to the client');

    write_file($srv->dir . '/broken.py', version_app('fixed'), 2);
    my %got;
    # Several requests, so both children answer. PyWSGIReload is Off: an
    # app that failed to load is tried again on its next request anyway.
    $got{ answer($srv->get('/broken')) }++ for 1 .. 6;
    is_deeply(\%got, { '200 fixed' => 6 }, 'once fixed, it loads and answers 200')
        or diag(explain(\%got));
    finish($srv);
}

# ------------------------------------------------------------------ reload

sub reload {
    my $srv = server(name => 'reload', processes => 1,
        files => { 'on.py' => version_app('v1'), 'off.py' => version_app('v1'),
                   'reloadmod.py' => version_app('v1') },
        conf => <<"CONF") or return;
PyWSGIPythonPath \@DIR\@
PyWSGIScriptAlias /on      \@DIR\@/on.py
PyWSGIScriptAlias /off     \@DIR\@/off.py
PyWSGIScriptAlias /mod-on  reloadmod:application
<Location /on>
    PyWSGIReload On
</Location>
<Location /mod-on>
    PyWSGIReload On
</Location>
<Location /off>
    PyWSGIReload Off
</Location>
CONF
    my $dir = $srv->dir;
    # [url, file, reloaded when it changes?]
    my @rows = (['/on', 'on.py', 1], ['/mod-on', 'reloadmod.py', 1],
                ['/off', 'off.py', 0]);
    my %pid;
    for my $r (@rows) {
        my $res = get_ok($srv, $r->[0], 15);
        is(answer($res), '200 v1', "$r->[0] serves v1");
        $pid{ pid_of($res) // 0 }++;
    }
    my $offset = $srv->log_offset;
    write_file("$dir/$_->[1]", version_app('v2'), 2) for @rows;
    for my $r (@rows) {
        my ($url, $file, $reloads) = @$r;
        my $want = $reloads ? 'v2' : 'v1';
        for my $n (1, 2) {
            my $res = $srv->get($url);
            is(answer($res), "200 $want",
               "after $file changed, $url serves $want (request $n)");
            $pid{ pid_of($res) // 0 }++;
        }
    }
    is(scalar(keys %pid), 1, 'one child served everything (nothing restarted)')
        or diag(explain(\%pid));
    my $log = $srv->log_text($offset);
    is(count(qr/PW0203: application '[^']*\/on\.py' reloaded/, $log), 1,
       'PW0203 logged once for on.py');
    is(count(qr/PW0203: application 'reloadmod:application' reloaded/, $log), 1,
       'PW0203 logged once for reloadmod');
    is(count(qr/PW0203: application '[^']*off\.py'/, $log), 0,
       'no PW0203 for off.py');
    finish($srv);
}

# ------------------------------------------------------------------ timeout

sub request_timeout {
    # Threaded MPMs: one child, so the runaway and the other requests share
    # it. Prefork: three children.
    my $srv = server(name => 'timeout', processes => $threaded ? 1 : 3,
                     threads => 4, conf => <<"CONF") or return;
PyWSGIRequestTimeout 1
PyWSGIScriptAlias /spin       $apps/runaway.py callable=spin
PyWSGIScriptAlias /spin-catch $apps/runaway.py callable=spin_catch
PyWSGIScriptAlias /fast       $apps/runaway.py callable=fast
CONF
    get_ok($srv, '/fast', 15) for 1 .. 3;
    my $offset = $srv->log_offset;

    # The runaway request, from a process of its own.
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $kid = fork;
    die "fork: $!" unless defined $kid;
    if ($kid == 0) {
        close $rd;
        my $res = $srv->get('/spin', timeout => 10);
        print {$wr} "$res->{status} $res->{elapsed}\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    my $t0 = time;
    my $sel = IO::Select->new($rd);
    my @fast;
    until ($sel->can_read(0) || time - $t0 > 8) {
        my $res = $srv->get('/fast', timeout => 5);
        push @fast, [time - $t0, $res];
        sleep 0.02;
    }
    $sel->can_read(10);
    my $line = <$rd> // '';
    close $rd;
    waitpid $kid, 0;
    my ($status, $elapsed) = split ' ', $line;
    is($status, 504, 'the busy loop got 504');
    ok(defined $elapsed && $elapsed >= 1 && $elapsed < 3,
       sprintf('after %.2f s (timeout 1 s)', $elapsed // -1));

    my @during = grep { $_->[0] > 0.2 && $_->[0] < ($elapsed // 0) } @fast;
    ok(@during >= 5, scalar(@during) . ' other requests completed while it ran');
    my @bad = grep { $_->[1]{status} != 200 || $_->[1]{elapsed} > 0.5 } @fast;
    ok(!@bad, 'all of them 200, each within 0.5 s')
        or diag(join "\n", map { sprintf '%.2f: %s %.3f s', $_->[0],
                                 $_->[1]{status}, $_->[1]{elapsed} } @bad);
    my $log = $srv->wait_for_log($offset, qr/PW0401/, 3);
    my ($spin_pid) = $log =~ /spin pid=(\d+)/;
    if ($threaded) {
        my %pids = map { (pid_of($_->[1]) // 0) => 1 } @during;
        is(join(',', keys %pids), $spin_pid // 'unknown',
           "they ran in the runaway's own child (threaded MPM)");
    }
    like($log, qr{PW0401: /spin: application '[^']*runaway\.py' stopped after 1 s},
         'PW0401 names the URL and app');
    like($log, qr/PW0303: .*runaway\.py", line \d+, in spin/,
         'the traceback shows where it was stuck');
    like($log, qr/RequestTimeout/, 'the exception is mod_pywsgi.RequestTimeout');

    # except Exception does not swallow it; the next request is fine.
    my $conn = $srv->conn(timeout => 10);
    my $res = $conn->request('/spin-catch');
    is($res->{status}, 504, 'a loop inside "except Exception:" is cut too');
    $res = $conn->request('/fast');
    is($res->{status}, 200, 'the next request (same connection if kept) is served')
        or diag($res->{error});
    $conn->disconnect;
    finish($srv);
}

# ------------------------------------------------------------------ recycling

# README: exact under prefork.  Under worker/event the child asks its MPM for
# a graceful exit at the Nth request, and the MPM's own connection budget (set
# to N) is the backstop: N to 2N requests, and the worker MPM accepts one
# connection past its budget while it winds down: 2N + 1.
sub max_requests {
    my $limit = $threaded ? 21 : 10;
    # Enough children that replacements (the parent starts them once a
    # second) are seldom waited for.
    my $srv = server(name => 'max-requests', processes => $threaded ? 3 : 5,
                     threads => 4, conf => <<"CONF") or return;
PyWSGIMaxRequests 10
PyWSGIScriptAlias /ping $apps/ping.py
CONF
    my (%per_pid, @errors);
    for my $i (1 .. 50) {
        my $res = $srv->get("/ping?$i", timeout => 10);
        if ($res->{status} == 200) { $per_pid{ pid_of($res) }++ }
        else { push @errors, "request $i: $res->{status} " . ($res->{error} // '') }
    }
    ok(!@errors, '50 sequential requests (one connection each): all 200')
        or diag(join "\n", @errors);
    my @over = grep { $per_pid{$_} > $limit } keys %per_pid;
    ok(!@over, "no child served more than $limit") or diag(explain(\%per_pid));
    my $want = int((50 + $limit - 1) / $limit);
    ok(keys(%per_pid) >= $want,
       scalar(keys %per_pid) . " children served them (>= $want)")
        or diag(explain(\%per_pid));
    my $log = $srv->log_text;
    ok(count(qr/PW0410: recycling pid \d+ after 10 requests \(PyWSGIMaxRequests\)/, $log)
       >= $want - 1, 'PW0410 logged for the recycled children');

    # Kept-alive connections: the server closes them when it recycles.
    my $conn = $srv->conn(timeout => 10);
    my ($stale, %ka_pid) = (0);
    @errors = ();
    for my $i (1 .. 30) {
        my $res = $conn->request("/ping?ka$i");
        if (!$res->{status} && $res->{reused} && !$res->{got}) {
            $stale++;
            $res = $conn->request("/ping?ka$i");
        }
        if ($res->{status} == 200) { $ka_pid{ pid_of($res) }++ }
        else { push @errors, "request $i: $res->{status} " . ($res->{error} // '') }
    }
    $conn->disconnect;
    ok(!@errors, '30 requests on kept-alive connections: all 200')
        or diag(join "\n", @errors);
    $per_pid{$_} += $ka_pid{$_} for keys %ka_pid;
    @over = grep { $per_pid{$_} > $limit } keys %ka_pid;
    ok(!@over, "no child served more than $limit, keep-alive or not")
        or diag(explain({ map { $_ => $per_pid{$_} } keys %ka_pid }));
    diag("$stale request(s) retried on a new connection") if $stale;

    # Concurrent clients while children come and go.
    my $kids = start_clients($srv, path => '/ping', keepalive => [1, 1, 0, 0],
                             until => time + 20, max => 15,
                             body => qr/^pid=\d+\n\z/);
    my $sum = collect_clients($kids, 25);
    is($sum->{total}, 60, '4 concurrent clients sent 15 requests each');
    is($sum->{fail}, 0, 'none failed') or diag(join "\n", @{ $sum->{failures} });
    finish($srv);
}

sub max_memory {
    my $srv = server(name => 'max-memory', processes => 1, threads => 4,
                     conf => <<"CONF") or return;
PyWSGIMaxMemory 40
PyWSGIScriptAlias /mem $apps/memory.py
CONF
    my $first = get_ok($srv, '/mem', 15);
    my $pid = pid_of($first) // -1;
    my ($small_ok, $max_rss) = (1, 0);
    for (1 .. 19) {
        my $res = $srv->get('/mem');
        $small_ok = 0 unless $res->{status} == 200 && (pid_of($res) // 0) == $pid;
        $max_rss = $1 if $res->{body} =~ /rss_mb=(\d+)/ && $1 > $max_rss;
    }
    ok($small_ok, '20 requests under the limit: same child, all 200');
    ok($max_rss < 40, "its resident size stays under 40 MB ($max_rss MB)");
    unlike($srv->log_text, qr/PW0410/, 'not recycled');

    my $alloc = $srv->get('/mem?alloc');
    my ($rss) = $alloc->{body} =~ /rss_mb=(\d+)/;
    ok(($rss // 0) >= 60, 'after ?alloc it holds ' . ($rss // '?') . ' MB');
    # Back-to-back requests, one connection each: the gentlest steady load
    # there is; the child must leave without losing one of them.
    my ($n, $new, @errors) = (0);
    my $t0 = time;
    while (time < $t0 + 4) {
        my $res = $srv->get('/mem', timeout => 10);
        $n++;
        if ($res->{status} != 200) {
            push @errors, "$res->{status} " . ($res->{error} // '');
            next;
        }
        if ((pid_of($res) // 0) != $pid) { $new = $res; last }
    }
    ok(!@errors, "$n more requests: all 200 (none lost while the child left)")
        or diag(join "\n", @errors);
    ok($new, sprintf('%s after %d requests, %.1f s (the size is checked every 16 requests)',
                     $new ? 'a new child answered' : 'no new child', $n, time - $t0));
    my ($new_rss) = $new ? $new->{body} =~ /rss_mb=(\d+)/ : ();
    ok(defined $new_rss && $new_rss < 40, 'the new child is small again ('
                                           . ($new_rss // '?') . ' MB)');
    like($srv->log_text, qr/PW0410: recycling pid $pid after \d+ requests, resident \d+ MB > PyWSGIMaxMemory 40 MB/,
         'PW0410 names the size and the limit');

    # The same under a steady load of 4 clients (2 keep-alive): the child
    # over the limit must still leave, and no request may be lost.
    my $busy_alloc = get_ok($srv, '/mem?alloc', 10);
    my $kids = start_clients($srv, path => '/mem', keepalive => [1, 1, 0, 0],
                             until => time + 3, max => 3000, pause => 0.002,
                             body => qr/^pid=\d+ rss_mb=\d+\n\z/);
    my $sum = collect_clients($kids, 15);
    is($sum->{fail}, 0, "$sum->{total} requests from 4 concurrent clients: none failed")
        or diag(join "\n", @{ $sum->{failures} });
    ok(scalar(grep { $_ != (pid_of($busy_alloc) // 0) } keys %{ $sum->{pids} }),
       'the child over the limit was replaced during the load')
        or diag(explain($sum->{pids}));
    # worker/event: through the MPM's own graceful exit (PW0412), never the
    # lossy fallback (PW0411).
    like($srv->log_text, qr/PW0412: pid $pid leaves through the MPM's graceful exit/,
         "PW0412: it left through the MPM's graceful exit") if $threaded;
    unlike($srv->log_text, qr/PW0411/, 'not through the idle-exit fallback (PW0411)');
    finish($srv);
}

# ------------------------------------------------------------------ shutdown

sub shutdown_timeout {
    my $srv = server(name => 'shutdown', processes => 1, conf => <<"CONF") or return;
PyWSGIShutdownTimeout 2
PyWSGIScriptAlias /linger $apps/lingering.py
CONF
    my $res = get_ok($srv, '/linger', 15);
    my $old = pid_of($res) // -1;
    ok($res->{body} =~ /threads=([2-9])/, 'the app started its thread')
        or diag($res->{body});
    my $offset = $srv->log_offset;
    $srv->graceful;
    my $took = PWServer->wait_gone(10, $old);
    ok(defined $took && $took <= 3,
       sprintf('the old child exited %s after the graceful restart (limit 2 + 1 s)',
               defined $took ? sprintf('%.2f s', $took) : 'not within 10 s'));
    ok(defined $took && $took >= 1.5,
       'not before the shutdown timeout (it was waiting for the thread)')
        or diag("took " . ($took // 'n/a'));
    like($srv->log_text($offset),
         qr/PW0102: Python finalisation in pid $old took more than 2 s/,
         'PW0102 logged for it');
    $res = get_ok($srv, '/linger', 10);
    ok($res->{status} == 200 && (pid_of($res) // $old) != $old,
       'a new child serves');
    finish($srv);
}

# ------------------------------------------------------------------ graceful

sub graceful_under_load {
    my $srv = server(name => 'graceful',
                     processes => $threaded ? 2 : 6, threads => 8,
                     server_limit => $threaded ? 4 : 12,
                     files => { 'app.py' => version_app('v1') },
                     conf => "PyWSGIScriptAlias /app \@DIR\@/app.py\n") or return;
    my $app = $srv->dir . '/app.py';
    get_ok($srv, '/app', 15);

    my $restarts = 4;
    my $t0 = time;
    my $kids = start_clients($srv, path => '/app', keepalive => [1, 1, 0, 0],
                             until => $t0 + $restarts + 1.5, max => 3000,
                             pause => 0.003,
                             body => qr/^(v[12]) pid=\d+\n\z/);
    my $last_restart;
    for my $n (1 .. $restarts) {
        sleep 0.05 while time < $t0 + $n;
        write_file($app, version_app('v2'), 2) if $n == $restarts;
        $last_restart = time;
        $srv->graceful or diag("kill USR1: $!");
    }
    my $sum = collect_clients($kids, $restarts + 15);
    diag(sprintf 'load: %d requests (%d v1, %d v2, %d stale retries) over %.1f s, '
         . 'restarts every second from %.1f s', $sum->{total}, $sum->{n_v1} // 0,
         $sum->{n_v2} // 0, $sum->{stale}, time - $t0, 1);

    # event/worker: AH00493 "SIGUSR1 received.  Doing graceful restart";
    # prefork: AH00171 "Graceful restart requested, doing restart".
    is(count(qr/Doing graceful restart|Graceful restart requested/, $srv->log_text),
       $restarts, "httpd logged $restarts graceful restarts");
    # Enough load to overlap every restart; not a throughput figure (a busy
    # machine serves fewer, and benchmarks are not tests).
    ok($sum->{total} >= 200, "$sum->{total} requests from 4 clients (2 keep-alive)");
    is($sum->{fail}, 0, "$restarts graceful restarts, no request failed")
        or diag(join "\n", @{ $sum->{failures} });
    diag("$sum->{stale} request(s) on a kept-alive connection the server "
         . "was closing were retried on a new one") if $sum->{stale};
    ok(($sum->{n_v2} // 0) > 0, 'the new code was served during the load ('
       . ($sum->{n_v2} // 0) . ' responses)');
    ok(defined $sum->{first_v2} && $sum->{first_v2} >= $last_restart,
       'and not before the restart that followed the change');
    ok(defined $sum->{last_v1} && $sum->{last_v1} < $last_restart + 2,
       sprintf('the old code was last served %.2f s after that restart (< 2 s)',
               ($sum->{last_v1} // 0) - $last_restart));

    # After the load: every child is a new one, serving v2.
    my ($streak, $deadline) = (0, time + 10);
    while ($streak < 20 && time < $deadline) {
        my $res = $srv->get('/app');
        $streak = answer($res) eq '200 v2' ? $streak + 1 : 0;
    }
    is($streak, 20, '20 requests in a row served the new code after the restarts');
    finish($srv);
}
