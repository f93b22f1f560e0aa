# Runs last (Apache::Test sorts by name): the error log since this server's
# startup must show no crash -- Apache::Test does not notice a child dying --
# and must hold the PW0001 startup self-report of every child.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Basename qw(dirname);
use PWTest qw(error_log_file mpm pw_venv pw_python python_version);

my $venv = pw_venv();
my $mpm  = mpm();
# The Python under test (Debian's /usr/bin/python3 unless t/run-pythons says
# otherwise): its version, and its libpython under its prefix's lib/ (Debian:
# /usr/lib/<multiarch>/, also seen as /lib/... through the /lib symlink).
my $ver  = python_version();
(my $prefix = dirname(dirname(pw_python()))) =~ s{^/usr(?=/|$)}{};
my $libpython = qr{libpython (?:/usr)?\Q$prefix\E/lib/\S*libpython\Q$ver\E\.so};

# [name, qr// that must not occur]
my @forbidden = (
    ['no child died of a signal',   qr/exit signal/],
    ['no segmentation fault',       qr/Segmentation fault|seg fault/],
    ['no Fatal Python error',       qr/Fatal Python error/],
    ['no pywsgi crit/alert/emerg',  qr/\[pywsgi:(crit|alert|emerg)\]/],
    ['no PW line at crit or worse', qr/\[[a-z_]+:(crit|alert|emerg)\][^\n]*PW\d{4}/],
);

plan tests => 2 + @forbidden + 1;

open my $fh, '<', error_log_file() or die error_log_file() . ": $!";
my @lines = <$fh>;
close $fh;

# The last startup of the parent; everything after it is this run.
my ($start) = grep { $lines[$_] =~ /resuming normal operations/ }
              reverse 0 .. $#lines;
ok(defined $start, 'startup line found in the error log');
my $log = defined $start ? join('', @lines[$start .. $#lines]) : '';
ok(length $log, 'log since startup is not empty');

for my $row (@forbidden) {
    my ($name, $re) = @$row;
    my @hits = grep { $_ =~ $re } split /\n/, $log;
    ok(!@hits, $name) or diag(join "\n", @hits[0 .. ($#hits < 9 ? $#hits : 9)]);
}

subtest 'PW0001 startup line per child' => sub {
    my @pw1 = grep { /PW0001:/ } split /\n/, $log;
    ok(scalar @pw1, 'PW0001 logged') or return;
    my %pids;
    for my $line (@pw1) {
        like($line, qr/Python \Q$ver\E\.\d+\S* initiali[sz]ed in pid (\d+)/,
             "Python $ver and pid");
        $pids{$1}++ if $line =~ /in pid (\d+)/;
        like($line, $libpython, "the libpython of ${\ pw_python()}");
        like($line, qr/sys\.prefix \Q$venv\E(,|\s|$)/, 'sys.prefix is the venv');
        like($line, qr/virtualenv \Q$venv\E(,|\s|$)/, 'virtualenv is the test venv');
        like($line, qr/MPM \Q$mpm\E\b/, "MPM $mpm");
    }
    ok(!grep({ $_ > 1 } values %pids), 'one PW0001 line per child');
};
