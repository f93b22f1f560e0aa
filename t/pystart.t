# A Python that cannot start in a child says why (issue 13, PW0101): beside
# CPython's own message (a symptom: "init_fs_encoding: failed to get the
# Python codec"), the cause an admin acts on.  Each case is a private httpd
# (t/perl/PWServer.pm) under the MPM being tested, with a PyWSGIVirtualEnv
# whose pyvenv.cfg passes configtest (the module's Python version) but
# whose "home" names a prefix with an os.py and no standard library (what
# a Python moved after it was built looks like): "encodings is missing".
# The server starts, its requests get 500, and it keeps answering.
# The other cause PW0101 names, a standard library the User cannot enter,
# arises only when the module's own build prefix is closed (a venv's home
# in a closed directory is not even looked at: CPython falls back to its
# built-in prefix), so the second case builds the module against a pyenv
# Python left where it is, under /root (mode 0700): "cannot be read by uid
# N ... /root (mode 0700) is closed to it".  Skipped, saying so, on a
# machine without one.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Path qw(make_path);
use PWTest qw(mpm python_version);
use PWServer ();

my $top = Apache::Test::vars('top_dir');
my $mpm = mpm() || 'event';
my $app = "$top/t/apps/env.py";

plan tests => 2;

# A virtualenv in $dir/venv whose home is $home/bin, its pyvenv.cfg made
# for the module's Python (so configtest passes), bin/python a link to
# nothing that matters: Python reads the pyvenv.cfg beside bin/.
sub fake_venv {
    my ($dir, $home) = @_;
    my $v = python_version();
    make_path("$dir/venv/bin", "$home/bin", "$home/lib/python$v");
    open my $fh, '>', "$dir/venv/pyvenv.cfg" or die "pyvenv.cfg: $!";
    print {$fh} "home = $home/bin\ninclude-system-site-packages = false\n"
              . "version = $v.0\n";
    close $fh;
    symlink '/bin/true', "$dir/venv/bin/python";
    system('chmod', '-R', 'a+rX', "$dir/venv");
    return "$dir/venv";
}

# $setup->(dir) makes the virtualenv in dir; returns it and the cause the
# PW0101 line must give.
sub case {
    my ($name, $setup) = @_;
    my $srv = PWServer->new(name => $name, mpm => $mpm, top => $top);
    my ($venv, $want) = $setup->($srv->dir);
    $srv->{conf} = ($venv ? "PyWSGIVirtualEnv $venv\n" : '')
                 . "PyWSGIScriptAlias /app $app\n";
    ok($srv->start, 'httpd starts: a child without Python serves 500s')
        or return diag($srv->{error});
    my $r = $srv->get('/app/');
    is($r->{status}, 500, 'the request gets 500');
    my $log = $srv->wait_for_log(0, qr/PW0101/, 10) // '';
    my $names = $venv ? qr/\(program \Q$venv\E\/bin\/python, virtualenv \Q$venv\E\)/
                      : qr/\(program \S+, virtualenv none\)/;
    like($log, qr/PW0101: Python could not start in pid \d+: .*$names/,
         'PW0101 names the program and the virtualenv');
    like($log, $want, 'and the cause');
    is($srv->get('/app/')->{status}, 500, 'the server keeps answering');
    $srv->stop;
}

subtest "a home without a standard library ($mpm)" => sub {
    case('nostdlib', sub {
        my $d = shift;
        my $v = python_version();
        my $home = "$d/otherpy";
        my $venv = fake_venv($d, $home);
        # os.py is the landmark CPython looks for: with it, this is the
        # prefix it takes (without it, it falls back to its own).
        open my $fh, '>', "$home/lib/python$v/os.py" or die "os.py: $!";
        close $fh;
        system('chmod', '-R', 'a+rX', $home);
        return ($venv, qr/\Q$home\E\/lib\/python\Q$v\E\/encodings is missing, so \S+ is not the standard library of a Python \Q$v\E/);
    });
};

subtest "a build whose Python the User cannot read ($mpm)" => sub {
    my $pyenv = '/root/.pyenv/versions';
    my ($config) = sort { $b cmp $a }
                   glob("$pyenv/3.1[0-9].[0-9]*/bin/python3.1[0-9]-config");
    my $mode = (stat '/root')[2] // 0;
    if (!$config || $> != 0 || ($mode & 07777) != 0700) {
        plan skip_all => 'SKIPPED: needs a shared CPython under /root/.pyenv '
                       . '(mode 0700), as root';
    }
    my $build = "build/closed";
    my $out = `cd $top && make -f Makefile.apxs PYTHON_CONFIG=$config BUILD=$build 2>&1`;
    ok($? == 0, "the module built against $config") or return diag($out);
    local $ENV{PW_MODULE} = "$top/$build/.libs/mod_pywsgi.so";
    case('closedpy', sub {
        return (undef, qr/the standard library \/root\/\S+ cannot be read by uid \d+, the user Apache's children run as: \/root \(mode 0700\) is closed to it/);
    });
};
