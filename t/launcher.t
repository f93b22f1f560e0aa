# bin/pywsgi-run as a new user meets it (issue 4): start it on the example
# Flask app with the MPM under test, curl it, stop it with SIGINT -> exit
# status 0, no httpd left, its temporary directory gone. Then the mistakes a
# new user makes: each gives a clear message on stderr and a non-zero exit.
# Ports: 8650-8699 (t/perl/PWServer.pm); everything bounded in time.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use POSIX ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm decode_json_body pw_module pw_venv pw_python
              python_version);
use PWServer qw(free_port proc_children process_alive);

my $top = Apache::Test::vars('top_dir');
my $mpm = mpm() || 'event';
my $run = "$top/bin/pywsgi-run";
my $tmp = File::Temp->newdir('pw-launcher-XXXXXX', TMPDIR => 1);
chmod 0755, $tmp;    # pywsgi-run's import check runs as the User

# The module under test when it is not the checkout's default (t/run-pythons),
# and then the test venv: another Python sees Debian's Flask only through it.
my @under_test;
push @under_test, '--module', pw_module()
    if pw_module() ne "$top/.libs/mod_pywsgi.so";
push @under_test, '--venv', pw_venv() if pw_python() ne '/usr/bin/python3';

# [name, arguments, expected exit status, qr// stderr must match]
my @mistakes = (
    ['an app file that does not exist', ['/nonexistent/app.py'], 2,
     qr{pywsgi-run: error: no such application file: /nonexistent/app\.py}],
    ['an unknown option', ['--no-such-option', 'examples/hello.py'], 2,
     qr/usage: pywsgi-run .*\n.*unrecognized arguments: --no-such-option/],
    ['an unknown MPM', ['--mpm', 'bogus', 'examples/hello.py'], 2,
     qr/argument --mpm: invalid choice: 'bogus'/],
    ['--threads with prefork', ['--mpm', 'prefork', '--threads', '4', 'examples/hello.py'], 2,
     qr/--threads needs --mpm worker or event/],
    ['a malformed module:callable', ['not a module'], 2,
     qr/TARGET 'not a module' is neither an existing \.py file nor 'package\.module\[:callable\]'/],
    ['an app that fails to import', ['-b', 'PORT', 't/apps/err_import.py'], 1,
     qr/cannot load t\/apps\/err_import\.py(?s:.*)RuntimeError: PWTEST import failure/],
);

plan tests => 1 + @mistakes + 3;

# Runs pywsgi-run to completion (at most $secs); returns (exit, stdout+stderr).
sub run_launcher {
    my ($secs, @args) = @_;
    my $out = "$tmp/out-" . int(rand(1e9));
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        chdir $top;
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        exec($run, @under_test, @args) or POSIX::_exit(127);
    }
    my $deadline = time + $secs;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        if (time > $deadline) {
            kill 'KILL', -$pid;
            waitpid($pid, 0);
            return (-1, slurp($out) . "\n(killed after $secs s)");
        }
        sleep 0.05;
    }
    return ($? >> 8, slurp($out));
}

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    my $t = <$fh> // '';
    close $fh;
    return $t;
}

sub curl {
    my ($url) = @_;
    my $body = "$tmp/curl-body";
    unlink $body;
    my $code = `curl -sS --max-time 10 -o '$body' -w '%{http_code}' '$url' 2>&1`;
    return ($code, slurp($body));
}

subtest "a new user: pywsgi-run --mpm $mpm examples/flask_app.py, curl, Ctrl-C" => sub {
    my $port = free_port() or return fail('a free port');
    my $out = "$tmp/run.out";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        chdir $top;
        POSIX::setsid();    # as in a terminal of its own: SIGINT only from us
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        exec($run, @under_test, '-b', "127.0.0.1:$port", '--mpm', $mpm,
             'examples/flask_app.py') or POSIX::_exit(127);
    }
    my $deadline = time + 30;
    until (slurp($out) =~ /serving/ || time > $deadline
           || waitpid($pid, POSIX::WNOHANG()) == $pid) {
        sleep 0.1;
    }
    my $text = slurp($out);
    like($text, qr{pywsgi-run: serving examples/flask_app\.py on http://127\.0\.0\.1:$port \($mpm, },
         'it says where it serves, with which MPM') or diag($text);

    # httpd is pywsgi-run's child; its own children serve.
    my ($httpd) = proc_children($pid);
    ok($httpd, 'an httpd runs under it') or diag("children of $pid: none");
    my @workers = $httpd ? proc_children($httpd) : ();
    my ($conf) = $httpd ? (slurp("/proc/$httpd/cmdline") =~ m{-f\0(/[^\0]+/httpd\.conf)}) : ();
    my $confdir = $conf ? ($conf =~ s{/httpd\.conf$}{}r) : undef;

    my ($code, $body) = curl("http://127.0.0.1:$port/");
    is($code, '200', 'curl / : 200');
    like($body, qr{<h1>Served by mod_pywsgi</h1>}, 'the Flask page');
    like($body, qr/Server model: \Q@{[ $mpm eq 'prefork'
        ? 'prefork MPM' : 'worker or event MPM' ]}\E/, 'naming the process model');
    ($code, $body) = curl("http://127.0.0.1:$port/hello/world");
    is("$code $body", "200 <p>Hello, world!</p>", 'curl /hello/world');
    ($code, $body) = curl("http://127.0.0.1:$port/api/info");
    my $info = decode_json_body($body);
    ok($code eq '200' && $info && $info->{pid}, 'curl /api/info: JSON');

    kill 'INT', $pid;
    my $t0 = time;
    my $status;
    while (time - $t0 < 25) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) { $status = $?; last }
        sleep 0.05;
    }
    unless (defined $status) {
        kill 'KILL', -$pid;
        waitpid($pid, 0);
    }
    ok(defined $status, sprintf('SIGINT: pywsgi-run exited after %.1f s', time - $t0));
    is(defined $status ? $status >> 8 : 'none', 0, 'exit status 0');
    is(defined $status ? $status & 127 : 'none', 0, 'not killed by a signal');
    my @left = grep { process_alive($_) } grep { defined } $httpd, @workers;
    ok(!@left, 'no httpd process left') or do {
        diag("still running: @left");
        kill 'KILL', @left;
    };
    ok($confdir && !-e $confdir, 'its temporary directory is gone')
        or diag('config dir: ' . ($confdir // 'not found'));
    unlike(slurp($out), qr/Traceback|error/i, 'no error or traceback on the terminal')
        or diag(slurp($out));
};

for my $row (@mistakes) {
    my ($name, $args, $want_exit, $want_text) = @$row;
    subtest "pywsgi-run with $name" => sub {
        my $port = free_port();
        my @args = map { $_ eq 'PORT' ? $port : $_ } @$args;
        unshift @args, '--mpm', $mpm unless grep { $_ eq '--mpm' } @args;
        my ($exit, $text) = run_launcher(30, @args);
        is($exit, $want_exit, "exit status $want_exit");
        like($text, $want_text, 'a message that says what is wrong') or diag($text);
        unlike($text, qr/serving/, 'it did not serve');
    };
}

subtest 'pywsgi-run --print-config maps the gunicorn options to directives' => sub {
    my ($exit, $text) = run_launcher(30, '--mpm', $mpm, '--print-config',
        '--timeout', '7', '--max-requests', '100', '--reload', '-w', '3',
        'examples/hello.py');
    is($exit, 0, 'exit status 0');
    like($text, qr/^PyWSGIRequestTimeout 7$/m, '--timeout 7');
    like($text, qr/^PyWSGIMaxRequests 100$/m, '--max-requests 100');
    like($text, qr/^PyWSGIReload On$/m, '--reload');
    like($text, qr/^LoadModule mpm_${mpm}_module /m, "--mpm $mpm");
    like($text, qr/^\s*StartServers 3$/m, '-w 3');
    like($text, qr{^PyWSGIScriptAlias / "\Q$top\E/examples/hello\.py"$}m, 'the app at /');
};

subtest 'pywsgi-run --workers auto: 2 x cores + 1 under prefork, one per core otherwise' => sub {
    my $cores = () = grep { /^processor\s*:/ } do {
        open my $fh, '<', '/proc/cpuinfo' or die; <$fh> };
    my $affinity = qx(/usr/bin/python3 -c 'import os; print(len(os.sched_getaffinity(0)))');
    chomp $affinity;
    $cores = $affinity if $affinity =~ /^\d+$/;
    my $want = $mpm eq 'prefork' ? 2 * $cores + 1 : $cores;
    my ($exit, $text) = run_launcher(30, '--mpm', $mpm, '--print-config',
        '--workers', 'auto', 'examples/hello.py');
    is($exit, 0, 'exit status 0');
    like($text, qr/^\s*StartServers $want$/m, "--workers auto under $mpm: $want processes ($cores cores)");
    ($exit, $text) = run_launcher(30, '--mpm', $mpm, '--print-config',
        '--workers', 'many', 'examples/hello.py');
    isnt($exit, 0, '--workers many: refused');
    like($text, qr/--workers.*'many' is not a number/, 'saying why');
};

# The import check runs the module's own Python (src/pw_build.c records it
# in the .so), not Debian's python3 whatever the module embeds: an app that
# imports only on the version under test passes the check.
subtest "pywsgi-run's import check uses the module's Python (${\ python_version()})" => sub {
    my $want = python_version();
    my $app = "$tmp/needs_version.py";
    open my $fh, '>', $app or die "$app: $!";
    print $fh <<"EOF";
import sys
if "%d.%d" % sys.version_info[:2] != "$want":
    raise ImportError("this app needs Python $want, not %d.%d"
                      % sys.version_info[:2])
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
EOF
    close $fh;
    chmod 0644, $app;
    my ($exit, $text) = run_launcher(30, '--mpm', $mpm, '--check-config', $app);
    is($exit, 0, 'exit status 0') or diag($text);
    like($text, qr/imports and provides a callable/, 'the import check passed')
        or diag($text);
    ($exit, $text) = run_launcher(30, '--mpm', $mpm, '--print-config', $app);
    like($text, qr/^# The module embeds \S*python\Q$want\E /m,
         "the configuration names Python $want") or diag($text);
};
