# Requests run concurrently: N requests to the 0.5 s sleep app
# (t/apps/sleep.py) together take about 0.5 s, not N x 0.5 s -- under prefork
# through N children, under worker/event through threads. t/run-mpms passes
# -minclients 4 -maxclients 8 so prefork has the children ready.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(time);
use PWTest qw(mpm);

my $N     = 4;
my $SLEEP = 0.5;
my $LIMIT = 1.8 * $SLEEP;    # sequential: N x 0.5 s; two at a time: 1 s
my $port  = Apache::Test::vars('port');

plan tests => 2;

# Sends $n requests at once, each on its own connection; returns
# (elapsed seconds, list of response texts). Everything is bounded by 10 s.
sub concurrent_get {
    my ($n, $path) = @_;
    my $start = time;
    my (@socks, %text);
    for my $i (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5)
            or return (undef, "connect: $@");
        print {$s} "GET $path?$i HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n"
                 . "Connection: close\r\n\r\n";
        push @socks, $s;
        $text{$s} = '';
    }
    my $sel = IO::Select->new(@socks);
    my $deadline = $start + 10;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(0.2)) {
            my $got = sysread($s, my $buf, 65536);
            if ($got) {
                $text{$s} .= $buf;
            }
            else {
                $sel->remove($s);
                close $s;
            }
        }
    }
    my $elapsed = time - $start;
    return ($elapsed, map { $text{$_} } @socks);
}

sub check_round {
    my ($elapsed, @responses) = @_;
    is(scalar(grep { m{^HTTP/1\.1 200 } && /\r\n\r\nslept pid=\d+/ } @responses),
       $N, "$N responses of 200 from the sleep app")
        or diag(join "\n---\n", map { substr($_, 0, 300) } @responses);
    return $elapsed;
}

sub served_by {
    return map { m{slept (pid=\d+ thread=\d+)} ? ($1 => 1) : () } @_;
}

# Warm-up: the first request in a child may still load the app, and a
# file before this one may have left prefork with fewer children than
# StartServers (a graceful restart keeps only those still running, and
# prefork adds at most one more per second): rounds until N children or
# threads answered in one round, for at most 8 s, so that the timed round
# measures concurrency, not process creation.
subtest 'warm-up round' => sub {
    my ($elapsed, @responses);
    my $until = time + 8;
    my $rounds = 0;
    while (1) {
        ($elapsed, @responses) = concurrent_get($N, '/sleep/warm');
        $rounds++;
        my %seen = served_by(@responses);
        last if keys %seen >= $N || time > $until;
    }
    note("$rounds warm-up round(s)");
    check_round($elapsed, @responses);
};

subtest "$N concurrent requests under " . mpm() => sub {
    my ($elapsed, @responses) = concurrent_get($N, '/sleep/timed');
    check_round($elapsed, @responses);
    ok(defined $elapsed && $elapsed >= $SLEEP, 'the app did sleep')
        or diag("elapsed: " . ($elapsed // 'n/a'));
    ok(defined $elapsed && $elapsed < $LIMIT,
       sprintf("took %.2f s, less than %.2f s", $elapsed // -1, $LIMIT));
    my %served_by = served_by(@responses);
    is(scalar keys %served_by, $N, 'each request had its own thread of control');
};
