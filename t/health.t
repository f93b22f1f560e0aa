# The health check for load balancers (SetHandler pywsgi-health,
# src/pw_health.c), on a private server under the MPM being tested:
#   - while the node serves: 200 "ok", text/plain, Cache-Control: no-store;
#     GET and HEAD only;
#   - while the PyWSGIHealthDrain file exists: 503 "draining", and 200 again
#     once it is gone;
#   - a graceful restart is not a stop: checks keep getting 200, also from
#     an old-generation child that was reading the check when SIGUSR1 came;
#   - a graceful stop is: a check a child was reading when SIGWINCH came
#     gets 503 "stopping";
#   - a drain file in a directory that does not exist fails configtest,
#     naming the directive.
# The multi-node picture (HAProxy draining a node on the 503) is
# t/scale/run's.
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
my $extra = <<'EOF';
PyWSGIHealthDrain "@DIR@/drain"
PyWSGIScriptAlias /fault/sleep @TOP@/t/apps/faults.py callable=sleep
<Location /pywsgi-health>
    SetHandler pywsgi-health
    Require all granted
</Location>
EOF
my $procs = is_threaded_mpm() ? 2 : 3;

plan tests => 5;

sub server {
    my $srv = PWPrivate->new(mpm => $mpm, procs => $procs, threads => 4,
                             extra => $extra);
    return $srv->start ? $srv : (diag($srv->{error}), undef);
}

# A health check whose request is still being read when $sig reaches the
# parent: the child reading it has accepted the connection before the
# signal and learns of it before it answers (every MPM closes a kept-alive
# connection once it is stopping, so this is the way a check meets a
# stopping child).  Returns the check's response.
sub check_across_signal {
    my ($srv, $sig) = @_;
    my $c = $srv->conn or return { status => 0, error => "connect: $!" };
    my $port = $srv->port;
    syswrite($c->{sock}, "GET /pywsgi-health HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n");
    sleep 0.3;
    $srv->send_signal($sig);
    sleep 0.5;
    syswrite($c->{sock}, "Connection: close\r\n\r\n");
    $c->{sent_at} = time;
    my $res = $c->response(timeout => 10);
    $c->close;
    return $res;
}

my $srv = server() or BAIL_OUT('private server did not start');

subtest 'serving: 200 ok' => sub {
    my $res = $srv->get('/pywsgi-health');
    is($res->{status}, 200, 'status 200');
    is($res->{body}, "ok\n", 'body "ok"');
    like($res->{headers}{'content-type'}, qr{^text/plain}, 'text/plain');
    is($res->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
    $res = $srv->get('/pywsgi-health', method => 'HEAD');
    is($res->{status}, 200, 'HEAD: 200');
    $res = $srv->get('/pywsgi-health', method => 'POST', body => 'x');
    is($res->{status}, 405, 'POST: 405');
};

subtest 'drain file: 503 draining while it exists' => sub {
    my $drain = $srv->dir . '/drain';
    open my $fh, '>', $drain or return fail("touch $drain: $!");
    close $fh;
    my $res = $srv->get('/pywsgi-health');
    is($res->{status}, 503, 'status 503');
    is($res->{body}, "draining\n", 'body "draining"');
    is($res->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
    is($srv->get('/fault/sleep?0')->{status}, 200,
       'the app still serves while draining');
    unlink $drain;
    $res = $srv->get('/pywsgi-health');
    is($res->{status}, 200, 'file removed: 200 again');
};

subtest 'graceful restart: still ok' => sub {
    # The old generation's child reading it is stopping, but the node is
    # not: the running generation has moved on.
    my $check = check_across_signal($srv, 'USR1');
    if (is_threaded_mpm()) {
        is($check->{status}, 200, 'a check read by an old-generation child '
           . 'across SIGUSR1: 200');
        is($check->{body}, "ok\n", '... "ok"');
    }
    else {
        # prefork's signal handler cuts the read of a request short: 400
        # from Apache itself (PREFORK_SIGNAL_NOTE below).
        isnt($check->{status}, 503, 'a check read by an old-generation '
             . "child across SIGUSR1: not 503 (got $check->{status})");
    }
    my ($checks, $bad) = (0, 0);
    my $t0 = time;
    while (time - $t0 < 1.5) {
        my $res = $srv->get('/pywsgi-health');
        $checks++;
        $bad++ unless $res->{status} == 200;
        sleep 0.05;
    }
    is($bad, 0, "$checks checks on new connections during and after the "
       . 'restart: all 200');
};

subtest 'graceful stop: 503 stopping' => sub {
    my $check = check_across_signal($srv, 'WINCH');
    if (is_threaded_mpm()) {
        is($check->{status}, 503, 'a check read across SIGWINCH: 503');
        is($check->{body}, "stopping\n", '... "stopping"');
        is($check->{headers}{'cache-control'}, 'no-store',
           'Cache-Control: no-store');
    }
    else {
        # PREFORK_SIGNAL_NOTE: a prefork child reads a request in the same
        # process that takes the MPM's signal; the signal ends the read and
        # Apache answers 400 before any handler runs.  A balancer's check
        # comes in one packet and is read at once, so under prefork a check
        # practically never meets a stopping child; the drain file is the
        # way to drain a prefork node.
        isnt($check->{status}, 200, 'a check read across SIGWINCH: not 200 '
             . "(got $check->{status})");
    }
    ok(defined $srv->wait_all_gone(15), 'every process gone');
    $srv->stop;
};

subtest 'configtest: the drain file needs an existing directory' => sub {
    my $bad = PWPrivate->new(mpm => $mpm, procs => 1,
                             extra => "PyWSGIHealthDrain /nonexistent-pw/dir/drain\n");
    ok(!$bad->start, 'httpd refuses to start');
    like($bad->{error} || '', qr{PyWSGIHealthDrain: the directory /nonexistent-pw/dir does not exist},
         'the error names the directive and the directory');
    my $vhost = PWPrivate->new(mpm => $mpm, procs => 1, extra =>
        "<VirtualHost *:80>\nPyWSGIHealthDrain /tmp/drain\n</VirtualHost>\n");
    ok(!$vhost->start, 'inside <VirtualHost>: refused');
    like($vhost->{error} || '', qr{PyWSGIHealthDrain}, '... naming the directive');
};
