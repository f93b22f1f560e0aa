# Installing into an existing Apache (issue 4), never touching the machine's
# own /etc/apache2:
# - refusal beside another embedded Python: Debian's real mod_wsgi and
#   mod_python (downloaded with `apt-get download` into t/cache/, unpacked
#   with dpkg-deb -x, never installed) loaded beside mod_pywsgi make
#   `apache2 -t` -- and a real start -- fail with PW0002;
# - `make -f Makefile.apxs install DESTDIR=<tmp>` puts the module in
#   apxs2's LIBEXECDIR and pywsgi.load/.conf in mods-available; in a scratch
#   copy of /etc/apache2, `a2enmod pywsgi` (APACHE_CONFDIR pointing there)
#   makes the mods-enabled links, and a tiny config including them says
#   "Syntax OK" and loads pywsgi_module.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use IPC::Open3 ();
use POSIX ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm pw_module pw_python);
use PWServer qw(free_port);

my $top   = Apache::Test::vars('top_dir');
my $httpd = '/usr/sbin/apache2';
my $mods  = '/usr/lib/apache2/modules';
my $mpm   = mpm() || 'event';
my $tmp   = File::Temp->newdir('pw-install-XXXXXX', TMPDIR => 1);
my $cache = "$top/t/cache";
my $ours  = pw_module();
# A module built for another Python (t/run-pythons: BUILD=build/pyX.Y with
# that Python's python3.X-config) is installed the same way, with the same
# two variables; it must still load from LIBEXECDIR, through its RUNPATH.
my @build_args;
my $target = '.libs/mod_pywsgi.so';
if ($ours ne "$top/.libs/mod_pywsgi.so") {
    ($target = $ours) =~ s{^\Q$top\E/}{};
    (my $build = $target) =~ s{/\.libs/mod_pywsgi\.so$}{};
    @build_args = ("BUILD=$build", 'PYTHON_CONFIG=' . pw_python() . '-config');
}

# Other embedders: [Debian package, module name, .so inside the package,
# the name PW0002 reports]
my @rivals = (
    ['libapache2-mod-wsgi-py3', 'wsgi_module', 'mod_wsgi.so', 'mod_wsgi.c'],
    ['libapache2-mod-python', 'python_module', 'mod_python.so', 'mod_python.c'],
);

plan tests => 2 * @rivals + 2 + 1;

# Runs a command with a time limit; returns (exit status, stdout+stderr).
# env => { NAME => value } is added to the environment.
sub run {
    my ($secs, $cmd, %o) = @_;
    local %ENV = (%ENV, %{ $o{env} || {} });
    my $pid = IPC::Open3::open3(my $in, my $out, undef, @$cmd);
    close $in;
    my $text = '';
    my $ok = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $secs;
        local $/;
        $text = <$out> // '';
        waitpid $pid, 0;
        alarm 0;
        1;
    };
    alarm 0;
    unless ($ok) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        return (-1, "$text\n(killed after $secs s)");
    }
    return ($? >> 8, $text);
}

sub write_file {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print {$fh} $text;
    close $fh;
}

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    my $t = <$fh> // '';
    close $fh;
    return $t;
}

# A minimal httpd config in its own directory: the MPM under test,
# authz_core, then $load (LoadModule / Include lines).
sub tiny_config {
    my ($name, $load) = @_;
    my $dir = "$tmp/$name";
    mkdir $dir;
    my $port = free_port() || 8699;
    write_file("$dir/httpd.conf", <<"CONF");
ServerRoot $dir
DefaultRuntimeDir $dir
PidFile $dir/httpd.pid
ErrorLog $dir/error_log
ServerName 127.0.0.1
Listen 127.0.0.1:$port
LoadModule mpm_${mpm}_module $mods/mod_mpm_${mpm}.so
LoadModule authz_core_module $mods/mod_authz_core.so
$load
CONF
    return "$dir/httpd.conf";
}

# The rival's .so, downloaded and unpacked into t/cache/ once; or undef and
# the reason it could not be had.
sub rival_so {
    my ($pkg, $so) = @_;
    my $root = "$cache/$pkg";
    my $path = "$root$mods/$so";
    return $path if -e $path;
    mkdir $cache;
    my @debs = glob("$cache/${pkg}_*.deb");
    unless (@debs) {
        # apt-get download saves into the current directory.
        my ($rc, $text) = run(120, ['sh', '-c', 'cd "$1" && apt-get download "$2"',
                                    'sh', $cache, $pkg]);
        @debs = glob("$cache/${pkg}_*.deb");
        return (undef, "apt-get download $pkg failed (exit $rc): "
                       . (split /\n/, $text)[-1]) unless @debs;
    }
    my ($rc, $text) = run(60, ['dpkg-deb', '-x', $debs[-1], $root]);
    return (undef, "dpkg-deb -x $debs[-1] failed: $text") if $rc || !-e $path;
    return $path;
}

for my $r (@rivals) {
    my ($pkg, $modname, $so, $cname) = @$r;
    my ($path, $why) = rival_so($pkg, $so);
    SKIP: {
        skip("Debian's $pkg is not available here: $why", 2) unless $path;

        subtest "apache2 -t refuses mod_pywsgi beside ${pkg}'s $so" => sub {
            # Control: the rival alone is accepted.
            my ($rc, $text) = run(30, [$httpd, '-t', '-f',
                tiny_config("$modname-alone", "LoadModule $modname $path\n")]);
            is($rc, 0, "$so alone: Syntax OK") or diag($text);
            # [name, LoadModule lines in that order]
            for my $order (
                ['rival first', "LoadModule $modname $path\nLoadModule pywsgi_module $ours\n"],
                ['mod_pywsgi first', "LoadModule pywsgi_module $ours\nLoadModule $modname $path\n"],
            ) {
                ($rc, $text) = run(30, [$httpd, '-t', '-f',
                    tiny_config("$modname-$order->[0]" =~ s/ /-/gr, $order->[1])]);
                isnt($rc, 0, "$order->[0]: apache2 -t fails");
                like($text, qr/PW0002: \Q$cname\E is loaded too: two embedded Pythons cannot share one Apache process\. Remove its LoadModule \(a2dismod\)/,
                     "$order->[0]: PW0002 says why and what to do") or diag($text);
                unlike($text, qr/Syntax OK/, "$order->[0]: no Syntax OK");
            }
        };

        subtest "httpd does not start with mod_pywsgi beside $so" => sub {
            my $conf = tiny_config("$modname-start",
                "LoadModule pywsgi_module $ours\nLoadModule $modname $path\n");
            my ($rc, $text) = run(20, [$httpd, '-f', $conf, '-DFOREGROUND']);
            ok($rc > 0, "apache2 -DFOREGROUND exits (status $rc)") or diag($text);
            like($text . slurp($conf =~ s/httpd\.conf$/error_log/r), qr/PW0002: \Q$cname\E is loaded too/,
                 'PW0002 on the terminal or in the error log');
            (my $pidfile = $conf) =~ s/httpd\.conf$/httpd.pid/;
            ok(!-e $pidfile, 'no pid file: it never ran');
        };
    }
}

# ------------------------------------------------------------------ install

my $dest = "$tmp/dest";
my $libexec = `/usr/bin/apxs2 -q LIBEXECDIR`;
chomp $libexec;
my $scratch = "$tmp/scratch/etc/apache2";

subtest 'make -f Makefile.apxs install DESTDIR=<tmp>' => sub {
    # -o: never rebuild here (others may be editing the sources); the suite
    # runs on the module that is built.
    my ($rc, $text) = run(120, ['flock', '/tmp/pw-build.lock', 'make', '-C', $top,
        '-f', 'Makefile.apxs', '-o', $target, 'install',
        "DESTDIR=$dest", @build_args]);
    is($rc, 0, 'make install exits 0') or diag($text);
    ok(-f "$dest$libexec/mod_pywsgi.so", "the module is in \$(apxs2 -q LIBEXECDIR) ($libexec)");
    is(slurp("$dest$libexec/mod_pywsgi.so"), slurp($ours), '... and is the built one');
    if (@build_args) {
        (my $libdir = pw_python()) =~ s{/bin/[^/]+$}{/lib};
        like(scalar `readelf -d $dest$libexec/mod_pywsgi.so`,
             qr{\(RUNPATH\)\s+Library runpath: \[\Q$libdir\E\]},
             "its RUNPATH is $libdir, where its libpython is");
    }
    for my $f (qw(pywsgi.load pywsgi.conf)) {
        is(slurp("$dest/etc/apache2/mods-available/$f"), slurp("$top/conf/$f"),
           "mods-available/$f installed");
    }
    like(slurp("$dest/etc/apache2/mods-available/pywsgi.load"),
         qr{^LoadModule pywsgi_module \Q$libexec\E/mod_pywsgi\.so$}m,
         'pywsgi.load loads it from LIBEXECDIR');
};

subtest 'a2enmod pywsgi in a scratch copy of /etc/apache2; apache2 -t on it' => sub {
    my $machine_state = sub {
        [ map { "$_ " . (stat $_)[9] }
          sort glob('/etc/apache2/mods-enabled/* /var/lib/apache2/module/*/*') ];
    };
    my $machine_before = $machine_state->();
    mkdir "$tmp/scratch" and mkdir "$tmp/scratch/etc"
        or return fail("mkdir $tmp/scratch/etc: $!");
    my ($rc, $text) = run(60, ['cp', '-a', '/etc/apache2', "$tmp/scratch/etc/"]);
    is($rc, 0, 'copied /etc/apache2') or return diag($text);
    for my $f (qw(pywsgi.load pywsgi.conf)) {
        my $t = slurp("$dest/etc/apache2/mods-available/$f");
        # The installed module lives under DESTDIR in this test.
        $t =~ s{^(LoadModule pywsgi_module )\Q$libexec\E/}{$1$dest$libexec/}m;
        write_file("$scratch/mods-available/$f", $t);
    }
    my %env = (APACHE_CONFDIR => $scratch,
               APACHE_STATE_DIRECTORY => "$tmp/scratch/state");
    ($rc, $text) = run(60, ['a2enmod', 'pywsgi'], env => \%env);
    is($rc, 0, 'a2enmod pywsgi exits 0') or diag($text);
    like($text, qr/Enabling module pywsgi/, 'it says so');
    for my $f (qw(pywsgi.load pywsgi.conf)) {
        is(readlink("$scratch/mods-enabled/$f"), "../mods-available/$f",
           "mods-enabled/$f links to mods-available");
    }

    my $conf = tiny_config('a2enmod', "Include $scratch/mods-enabled/pywsgi.load\n"
                                       . "Include $scratch/mods-enabled/pywsgi.conf\n");
    ($rc, $text) = run(30, [$httpd, '-t', '-f', $conf]);
    is($rc, 0, 'apache2 -t on a config including them exits 0') or diag($text);
    like($text, qr/Syntax OK/, 'Syntax OK');
    ($rc, $text) = run(30, [$httpd, '-M', '-f', $conf]);
    like($text, qr/^\s*pywsgi_module \(shared\)$/m, 'apache2 -M lists pywsgi_module')
        or diag($text);

    ($rc, $text) = run(60, ['a2dismod', 'pywsgi'], env => \%env);
    is($rc, 0, 'a2dismod pywsgi exits 0') or diag($text);
    ok(!-e "$scratch/mods-enabled/pywsgi.load", 'and removes the link');
    is_deeply($machine_state->(), $machine_before,
              "the machine's own mods-enabled and /var/lib/apache2 state are untouched");
};

subtest 'PW0002 is not raised without a rival (control)' => sub {
    my ($rc, $text) = run(30, [$httpd, '-t', '-f',
        tiny_config('alone', "LoadModule pywsgi_module $ours\n")]);
    is($rc, 0, 'mod_pywsgi alone: exit 0') or diag($text);
    unlike($text, qr/PW0002/, 'no PW0002');
};
