# Runs after zz_errorlog.t (which reads the log since the last startup): a
# graceful restart (SIGUSR1 to the parent) must not hang on Python
# finalisation -- the old children exit promptly, new ones start Python
# (PW0001) and serve, and nothing crashes on the way.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use Time::HiRes qw(time sleep);
use PWTest qw(log_offset log_since decode_json_body);
use PWServer ();

my $EXIT_LIMIT = 3;    # seconds for idle old children to go away

plan tests => 5;

my $pidfile = Apache::Test::vars('t_pid_file');
open my $fh, '<', $pidfile or die "$pidfile: $!";
chomp(my $parent = <$fh> // '');
close $fh;

# Live (not zombie) children of the httpd parent, from /proc.
sub children { return PWServer::proc_children($parent) }

# Make sure every child has served and so initialised Python.
GET "/env/before-restart-$_" for 1 .. 4;

my @old = children();
ok(@old, "httpd parent $parent has children") or diag("children: @old");

my $offset = log_offset();
my $t0 = time;
kill 'USR1', $parent or die "kill USR1 $parent: $!";

my %old = map { $_ => 1 } @old;
my @left = @old;
while (@left && time - $t0 < 10) {
    sleep 0.1;
    my %now = map { $_ => 1 } children();
    @left = grep { $now{$_} } @old;
}
my $took = time - $t0;
ok($took < $EXIT_LIMIT,
   sprintf('old children exited %.1f s after the graceful restart (limit %d s)',
           $took, $EXIT_LIMIT))
    or diag(@left ? "still running after 10 s: @left"
                  : "old children: @old");

# The new generation serves (allow it a moment to start).
my $ok = 0;
my $deadline = time + 10;
while (time < $deadline) {
    my $res = GET '/env/after-restart';
    my $data = $res->code == 200 && decode_json_body($res->content);
    if ($data && !$old{ $data->{pid} }) { $ok = 1; last }
    sleep 0.2;
}
ok($ok, 'a new child serves after the restart');

my $log = log_since($offset);
like($log, qr/PW0001: Python \S+ initiali[sz]ed in pid \d+/,
     'new children logged PW0001');
my @bad = grep { /exit signal|Segmentation fault|Fatal Python error|PW0102|\[pywsgi:(crit|alert|emerg)\]|still did not exit/ }
          split /\n/, $log;
ok(!@bad, 'no crash, finalisation timeout or lingering child in the log')
    or diag(join "\n", @bad);
