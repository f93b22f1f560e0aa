# Stops lose nothing and leave nothing behind (private servers, the MPM
# under test; apps: t/apps/faults.py):
#   - graceful-stop (SIGWINCH): the requests in flight complete with 200,
#     new connections are refused, then every process is gone;
#   - hard stop (SIGTERM) with requests in flight and an app thread that
#     never ends: every process is gone, none orphaned.
# Graceful restarts under load are t/lifecycle.t's and the stress target's
# (t/stress/restarts.py, which also stops a server with a request blocked
# for ever in C).
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use IO::Socket::INET ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm is_threaded_mpm);
use PWServer ();
use PWPrivate ();

my $mpm = mpm() || 'event';
my $extra = "PyWSGIShutdownTimeout 2\n"
    . join('', map { "PyWSGIScriptAlias /fault/$_ \@TOP\@/t/apps/faults.py callable=$_\n" }
           qw(sleep thread pid block));
my $procs = is_threaded_mpm() ? 2 : 3;

plan tests => 2;

sub server {
    my $srv = PWPrivate->new(mpm => $mpm, procs => $procs, threads => 4,
                             extra => $extra);
    return $srv->start ? $srv : (diag($srv->{error}), undef);
}

subtest 'graceful-stop (SIGWINCH) finishes the requests in flight' => sub {
    my $srv = server() or return fail('server started');
    my @c = map { $srv->conn } 1 .. 2;
    ok(@c == 2 && $c[0] && $c[1], 'two connections') or return;
    $_->send('/fault/sleep?2') for @c;
    sleep 0.4;
    my $t0 = time;
    ok($srv->send_signal('WINCH'), 'SIGWINCH to the parent');
    # The listeners close at once.
    my $refused = 0;
    while (time - $t0 < 1.5) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $srv->port, Timeout => 1);
        unless ($s) { $refused = 1; last }
        close $s;
        sleep 0.1;
    }
    ok($refused, 'new connections are refused');
    for my $i (0, 1) {
        my $res = $c[$i]->response(timeout => 10);
        is($res->{status}, 200, "request $i in flight: 200");
        like($res->{body}, qr/^slept 2\.0 pid=\d+/, "... and its whole body");
    }
    my $gone = $srv->wait_all_gone(15);
    ok(defined $gone, sprintf('every process gone %.1f s after the signal',
                              time - $t0))
        or diag('left: ' . join(' ', $srv->all_pids));
    my $log = $srv->log_text;
    like($log, qr/SIGWINCH, shutting down gracefully/, 'Apache logged the graceful stop');
    unlike($log, qr/exit signal|still did not exit|Fatal Python error/,
           'nobody crashed or had to be killed');
    ok(!$srv->stop, 'nothing left for SIGKILL');
};

subtest 'hard stop (SIGTERM) with requests in flight leaves no process behind' => sub {
    my $srv = server() or return fail('server started');
    is($srv->get('/fault/thread')->{status}, 200,
       'an app started a thread that never ends');
    my @c = grep { defined } map { $srv->conn } 1 .. 2;
    $_->send('/fault/sleep?3') for @c;
    # prefork: a child blocked for ever in C too (threaded MPMs would wait
    # ~10 s for that thread before SIGKILL: the stress target does that).
    my $blocked = is_threaded_mpm() ? undef : $srv->conn;
    $blocked->send('/fault/block') if $blocked;
    sleep 0.4;
    my @pids = $srv->all_pids;
    ok(@pids > 1, 'parent and children: ' . join(' ', @pids));
    my $t0 = time;
    ok($srv->send_signal('TERM'), 'SIGTERM to the parent');
    my $gone = $srv->wait_all_gone(15);
    my $took = time - $t0;
    ok(defined $gone, sprintf('every process gone after %.1f s', $took))
        or diag(join "\n", map { PWServer::describe($_) } $srv->all_pids);
    my @left = grep { PWServer::process_alive($_) } @pids;
    ok(!@left, 'no orphan (pids checked one by one)') or diag("@left");
    for my $c (@c, grep { defined } $blocked) {
        my $res = $c->response(timeout => 3);
        ok($res->{closed} || $res->{status}, 'the client was not left hanging');
    }
    ok(!$srv->stop, 'nothing left for SIGKILL');
};
