# Faults are contained: an app that kills its process (os.abort(), a ctypes
# null pointer read, os._exit) takes down only that child -- a request in
# flight on another child completes, Apache replaces the dead one, and the
# error log names the URL that did it; an app that raises SystemExit or
# KeyboardInterrupt, recurses without end, spins for ever (with
# PyWSGIRequestTimeout) or leaves a thread running is survived by its own
# child. Apps: t/apps/faults.py. A private server under the MPM being tested
# (t/perl/PWPrivate.pm): crashes must not reach the shared server's log,
# which t/zz_errorlog.t reads.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Time::HiRes qw(time sleep);
use PWTest qw(mpm is_threaded_mpm);
use PWServer ();
use PWPrivate ();

my $mpm = mpm() || 'event';
my $TIMEOUT = 2;          # PyWSGIRequestTimeout
my $SHUTDOWN = 2;         # PyWSGIShutdownTimeout

my @apps = qw(abort segv os_exit sys_exit sys_exit_body sys_exit_close
              keyboard_interrupt recursion kill_parent thread spin pid sleep);
my $extra = "PyWSGIRequestTimeout $TIMEOUT\nPyWSGIShutdownTimeout $SHUTDOWN\n"
    . join('', map { "PyWSGIScriptAlias /fault/$_ \@TOP\@/t/apps/faults.py callable=$_\n" } @apps)
    . <<'EOF';
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
PyWSGIScriptAlias /fault/authspin @TOP@/t/apps/faults.py callable=pid
<Location /fault/authspin>
    AuthType Basic
    AuthName spin
    AuthBasicProvider pywsgi
    PyWSGIAuthScript @TOP@/t/apps/auth_script.py
    Require valid-user
</Location>
EOF

# prefork: 3 children; worker/event: 2 children x 8 threads.
my $procs = is_threaded_mpm() ? 2 : 3;
my $srv = PWPrivate->new(mpm => $mpm, procs => $procs, threads => 8,
                         extra => $extra);

# The child dies: [name, path, how the parent sees it (qr// on its log)]
my @crash_rows = (
    ['os.abort()',           'abort',   qr/exit signal Abort/],
    ['ctypes null pointer',  'segv',    qr/exit signal Segmentation fault/],
    ['os._exit(3)',          'os_exit', undef, '3'],
);

# The child lives: [name, path, status, complete body?, qr// for the PW line]
my @survive_rows = (
    ['sys.exit() in the app', 'sys_exit', 500, 1,
     qr/PW0301: \S+: application '[^']+' raised SystemExit/],
    ['SystemExit while producing the body', 'sys_exit_body', 200, 0,
     qr/PW0302: \S+: application '[^']+' .*SystemExit/],
    ['SystemExit from close()', 'sys_exit_close', 200, 1,
     qr/PW0309: \S+: .*SystemExit/],
    ['KeyboardInterrupt', 'keyboard_interrupt', 500, 1,
     qr/PW0301: \S+: application '[^']+' raised KeyboardInterrupt/],
    ['endless recursion', 'recursion', 500, 1,
     qr/PW0301: \S+: application '[^']+' raised RecursionError/],
    ['os.kill() of the Apache parent', 'kill_parent', 500, 1,
     qr/PW0301: \S+: application '[^']+' raised PermissionError/],
);

plan tests => 1 + @crash_rows + @survive_rows + 6;

ok($srv->start, "private $mpm server started") or do {
    diag($srv->{error});
    exit 0;
};

sub token { 'tok' . int(rand(1e9)) }

sub pid_of {
    my $res = shift;
    return ($res->{status} || 0) == 200 && $res->{body} =~ /pid=(\d+)/ ? $1 : 0;
}

# Two keep-alive connections served by two different children: (conn, pid,
# conn, pid). Under prefork each connection holds its child, so only
# $procs - 1 are taken, leaving one child for other requests.
sub two_children {
    for my $attempt (1 .. 15) {
        my (%by_pid, @conns);
        if (is_threaded_mpm()) {
            # Connect all first, then ask: the children's listeners
            # compete for the connections, so they spread. Fewer
            # connections than threads: event closes idle keep-alive
            # connections when it runs short of workers.
            @conns = grep { defined } map { $srv->conn } 1 .. 5;
            $_->send('/fault/pid') for @conns;
            for my $c (@conns) {
                my $pid = pid_of($c->response(timeout => 5));
                $by_pid{$pid} ||= $c if $pid;
            }
        }
        else {
            for (1 .. $procs - 1) {
                my $c = $srv->conn or next;
                push @conns, $c;
                my $pid = pid_of($c->request('/fault/pid'));
                $by_pid{$pid} ||= $c if $pid;
            }
        }
        my @pids = sort keys %by_pid;
        my %keep = @pids >= 2 ? map { $by_pid{$_} => 1 } @pids[0, 1] : ();
        $_->close for grep { !$keep{$_} } @conns;
        return ($by_pid{ $pids[0] }, $pids[0], $by_pid{ $pids[1] }, $pids[1])
            if @pids >= 2;
        sleep 0.2;
    }
    return;
}

for my $row (@crash_rows) {
    my ($name, $app, $parent_sees, $query) = @$row;
    subtest "$name: only that child dies, and the log names the URL" => sub {
        my ($a, $pa, $b, $pb) = two_children()
            or return fail('two connections on two different children');
        my $path = "/fault/$app/" . token() . (defined $query ? "?$query" : '');
        my $offset = $srv->log_offset;

        # A slow request to another app, on the other child, in flight.
        $b->send('/fault/sleep?1.5');
        sleep 0.2;
        my $res = $a->request($path, timeout => 10);
        is($res->{status}, 0, "$path: no response (the child died)")
            or diag("got $res->{status}");
        ok($res->{closed}, sprintf('the connection was closed (after %.1f s)',
                                   time - $a->{sent_at}))
            or diag($res->{error});
        my $rb = $b->response(timeout => 10);
        is($rb->{status}, 200, 'the request in flight on the other child completed');
        is(pid_of($rb), $pb, "... served by pid $pb, which is still alive")
            or diag($rb->{body});
        ok(PWServer::process_alive($pb), "pid $pb alive");
        $b->close;
        $a->close;

        my $t0 = time;
        sleep 0.05 while PWServer::process_alive($pa) && time - $t0 < 5;
        ok(!PWServer::process_alive($pa), "pid $pa is gone")
            or diag(PWServer::describe($pa), "\nlog:\n", $srv->log_text($offset));
        my @kids = $srv->wait_children($procs, 10, $pa);
        ok(@kids >= $procs, "Apache replaced it ($procs children again: @kids)");
        is($srv->get('/fault/pid')->{status}, 200, 'a new request is served');

        # The path names the request (the token is in it); r->uri has no
        # query string.
        (my $uri = $path) =~ s/\?.*//;
        my $log = $srv->wait_for_log($offset, qr/\Q$uri\E/, 3);
        like($log, $parent_sees, 'the parent logged the death') if $parent_sees;
        my @named = grep { /\Q$uri\E/ } split /\n/, $log;
        ok(@named, 'the error log names the URL that killed the child')
            or diag("log since the request:\n$log");
        like("@named", qr/pid $pa/, '... and the pid') if @named;
    };
}

for my $row (@survive_rows) {
    my ($name, $app, $status, $complete, $line) = @$row;
    subtest "$name: $status, the child lives on" => sub {
        my $c = $srv->conn or return fail('connect');
        my $pid = pid_of($c->request('/fault/pid'));
        ok($pid, "connection served by pid $pid");
        my $path = "/fault/$app/" . token();
        my $offset = $srv->log_offset;
        my $res = $c->request($path, timeout => 10);
        is($res->{status}, $status, "$path: status");
        is($res->{complete} ? 1 : 0, $complete,
           $complete ? 'complete response' : 'response cut short (headers were sent)');
        unlike($res->{body}, qr/Traceback|SystemExit|PWTEST|\.py\b/,
               'nothing of Python in the body') if $status >= 500;
        $c->close;
        ok(PWServer::process_alive($pid), "pid $pid still alive");
        ok(PWServer::process_alive($srv->pid), 'the Apache parent is alive');
        my $log = $srv->wait_for_log($offset, qr/\Q$path\E/, 3);
        like($log, qr/\Q$path\E/, 'the log names the URL');
        like($log, $line, 'PW line with the cause');
        is(pid_of($srv->get('/fault/pid')), $pid, 'the same child serves again')
            if !is_threaded_mpm() && $procs == 1;
        is($srv->get('/fault/pid')->{status}, 200, 'the server serves');
    };
}

subtest "a request spinning in Python: 504 after PyWSGIRequestTimeout $TIMEOUT s, others served meanwhile" => sub {
    my ($a, $pa, $b, $pb) = two_children()
        or return fail('two connections on two different children');
    my $path = '/fault/spin/' . token();
    my $offset = $srv->log_offset;
    my $t0 = time;
    $a->send($path);
    # Meanwhile: requests on the other child, and under worker/event on
    # the spinning child's own process too (the GIL is shared).
    my ($served, $slowest) = (0, 0);
    my $same = is_threaded_mpm() ? $srv->conn : undef;
    while (time - $t0 < $TIMEOUT - 0.3) {
        for my $c (grep { defined } $b, $same) {
            my $t = time;
            my $res = $c->request('/fault/pid', timeout => 5);
            $served++ if $res->{status} == 200;
            $slowest = time - $t if time - $t > $slowest;
        }
        sleep 0.1;
    }
    ok($served >= 3, "$served requests served while it spun");
    cmp_ok($slowest, '<', 1.0, sprintf('the slowest took %.2f s', $slowest));
    my $res = $a->response(timeout => $TIMEOUT + 5);
    my $took = time - $t0;
    is($res->{status}, 504, 'the spinning request got 504');
    ok($took >= $TIMEOUT && $took < $TIMEOUT + 2,
       sprintf('after %.1f s (timeout %d s)', $took, $TIMEOUT));
    ok(PWServer::process_alive($pa), "its child ($pa) lives on");
    my $log = $srv->wait_for_log($offset, qr/PW0401/, 3);
    like($log, qr/PW0401: \Q$path\E: application '[^']+' stopped after $TIMEOUT s/,
         'PW0401 names the URL');
    like($log, qr/PW0303: .*faults\.py", line \d+, in spin/, 'and where it was');
    $_->close for grep { defined } $a, $b, $same;
};

subtest "a check_password() that never returns: 500 after PyWSGIRequestTimeout $TIMEOUT s, PW0605, the thread comes back" => sub {
    my $offset = $srv->log_offset;
    my $t0 = time;
    my $res = $srv->get('/fault/authspin',
                        headers => [['Authorization', 'Basic c3Bpbjpwdw==']],
                        timeout => $TIMEOUT + 5);
    my $took = time - $t0;
    is($res->{status}, 500, 'the client gets 500, as for a script that raised');
    ok($took < $TIMEOUT + 2, sprintf('after %.1f s (timeout %d s)', $took, $TIMEOUT));
    my $log = $srv->wait_for_log($offset, qr/PW0605/, 3);
    like($log, qr/PW0605: \/fault\/authspin: PyWSGIAuthScript '[^']+': check_password\(\) for user 'spin' stopped after $TIMEOUT s/,
         'PW0605 says the script was stopped');
    is($srv->get('/fault/pid')->{status}, 200, 'the server serves on');
};

subtest 'a thread that never ends does not hold up a graceful restart' => sub {
    my @old = $srv->children;
    my $res = $srv->get('/fault/thread/' . token());
    is($res->{status}, 200, 'the app started a non-daemon thread');
    my $offset = $srv->log_offset;
    $srv->send_signal('USR1');
    my $t0 = time;
    # A second graceful restart while the old children finalise (prefork
    # signals its whole process group): PyWSGIShutdownTimeout must still
    # be what it says.
    my ($again, $pw0102_at) = (0, undef);
    while (grep({ PWServer::process_alive($_) } @old) && time - $t0 < 15) {
        if (!$again && time - $t0 > 0.5) {
            $srv->send_signal('USR1');
            $again = 1;
        }
        $pw0102_at //= time - $t0 if $srv->log_text($offset) =~ /PW0102/;
        sleep 0.05;
    }
    my $took = time - $t0;
    $pw0102_at //= time - $t0 if $srv->log_text($offset) =~ /PW0102/;
    ok(!grep({ PWServer::process_alive($_) } @old),
       sprintf('old children gone after %.1f s (PyWSGIShutdownTimeout %d s)',
               $took, $SHUTDOWN));
    cmp_ok($took, '<', $SHUTDOWN + 4, 'within PyWSGIShutdownTimeout + 4 s');
    if (defined $pw0102_at) {
        cmp_ok($pw0102_at, '>=', $SHUTDOWN - 0.2,
               sprintf('PW0102 ("took more than %d s") logged %.1f s after '
                       . 'the restart, not sooner', $SHUTDOWN, $pw0102_at));
    }
    else {
        pass('no PW0102: finalisation ended within PyWSGIShutdownTimeout');
    }
    my @kids = $srv->wait_children($procs, 10, @old);
    ok(@kids >= $procs, "a new generation of $procs children: @kids");
    is($srv->get('/fault/pid')->{status}, 200, 'and it serves');
    my $log = $srv->log_text($offset);
    unlike($log, qr/exit signal|still did not exit|Fatal Python error/,
           'nobody crashed or had to be killed');
};

# Last, in case it takes the whole server down: Apache treats exit status
# 15 of a child as "fatal, stop everything" (mod_pywsgi's os._exit()
# replacement turns it into 1).
subtest 'os._exit(15) (APEXIT_CHILDFATAL) takes down only its child' => sub {
    my $c = $srv->conn or return fail('connect');
    my $pid = pid_of($c->request('/fault/pid'));
    my @others = grep { $_ != $pid } $srv->children;
    my $uri = '/fault/os_exit/' . token();
    my $path = "$uri?15";
    my $offset = $srv->log_offset;
    my $res = $c->request($path, timeout => 10);
    is($res->{status}, 0, 'no response (the child exited)');
    $c->close;
    sleep 1.5;
    my $log = $srv->log_text($offset);
    ok(PWServer::process_alive($srv->pid), 'the Apache parent is still running')
        or diag("log:\n$log");
    my $after = $srv->get('/fault/pid', timeout => 5);
    is($after->{status}, 200, 'and serves the next request')
        or diag($after->{error});
    unlike($log, qr/AH00050|Apache is exiting/, 'no "Apache is exiting"');
    like($log, qr/\Q$uri\E/, 'the error log names the URL');
    unless (PWServer::process_alive($srv->pid)) {
        # The parent is gone: are its other children gone too, or left
        # behind (prefork's keep accepting on the port)?
        sleep 0.5;
        my @orphans = grep { PWServer::process_alive($_) } $srv->all_pids;
        ok(!@orphans, 'no orphaned child left behind by the parent\'s exit')
            or diag("orphans (killed now): @orphans");
        kill 'KILL', @orphans;
    }
};

# Nothing outlives a stop.
my @killed = $srv->stop(30);
ok(!@killed, 'the server stopped without SIGKILL for anyone')
    or diag("killed: @killed");
ok(!$srv->all_pids, 'no process of the private server is left');
