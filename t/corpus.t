# A corpus of real applications driven by their real clients (issue 11,
# item 6), each run twice: under waitress (Debian's python3-waitress, the
# reference) and under mod_pywsgi in a private httpd with the MPM of this
# run; every step must succeed under both and give the same value.
#
# The apps and their clients are ordinary files under t/apps/corpus/<name>/
# (app.py or a Django project, and client.py printing one JSON line per
# step: {step, ok, value, error}); a reader can run any of them by hand:
#   cd t/apps/corpus/git_dulwich
#   PYTHONPATH=.. python3 -m waitress --listen=127.0.0.1:8080 \
#       --url-prefix=/corpus/git app:application &
#   python3 client.py http://127.0.0.1:8080/corpus/git
#
# A step that fails today because of a known defect of issue 11 runs in a
# TODO block naming it (grep "issue 11"): the suite stays green, and the
# TODO passes (Test::More says "TODO passed") once the defect is fixed.
#
# The mod_pywsgi server is private (PWServer), not the shared Apache::Test
# one: the Django project needs the main interpreter to itself (one
# DJANGO_SETTINGS_MODULE per interpreter), and the apps find their data
# directory through CORPUS_DATA in the server's environment (a directory
# nobody, httpd's user, can write).
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm);
use PWServer qw(free_port);

my $top    = Apache::Test::vars('top_dir');
my $mpm    = mpm();
my $corpus = "$top/t/apps/corpus";
my $PYTHON = '/usr/bin/python3';
my $CLIENT_TIMEOUT = 150;    # seconds for one client run (they take 1-10)

# Clients and waitress run with Debian's tools only (never a pyenv python).
$ENV{PATH} = '/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin';
delete @ENV{qw(PYTHONHOME PYTHONPATH PYTHONSTARTUP PYTHONUSERBASE
               VIRTUAL_ENV)};
# waitress and the clients run as root from the checkout: no root-owned
# __pycache__ left in t/apps.
$ENV{PYTHONDONTWRITEBYTECODE} = 1;

# A step may carry { mpm => TODO reason } for a known defect; none is left
# (issue 11.1 and 11.2 are fixed: chunked bodies are read before the app,
# sys.stdout/sys.stderr are real text streams).

# Each app: name; dir under t/apps/corpus; mount (the same URL prefix under
# both servers); mod_pywsgi's target and extra config lines; waitress's
# module:callable (run from dir); init => a command to run first in the
# data directory's environment; steps => [step name, { mpm => TODO reason }]
# in the order the client prints them ('*' = every MPM).
my @apps = (
    { name => 'git smart HTTP (dulwich.web) with git',
      dir => 'git_dulwich', mount => '/corpus/git',
      target => "$corpus/git_dulwich/app.py", waitress => 'app:application',
      steps => [
          ['clone empty repository'],
          ['push a small commit'],
          ['push 2 MiB with http.postBuffer=65536 (chunked)'],
          ['clone again and verify'],
      ] },
    # Mercurial's import reads sys.stdout.buffer (mercurial/utils/
    # procutil.py): every request is a 500, under every MPM.
    { name => 'Mercurial hgweb with hg',
      dir => 'hg_web', mount => '/corpus/hg',
      target => "$corpus/hg_web/app.py", waitress => 'app:application',
      steps => [
          ['clone empty repository'],
          ['commit and push 1 MiB'],
          ['clone again and verify'],
          ['hgweb log page'],
      ] },
    { name => 'Radicale CalDAV with python3-caldav',
      dir => 'radicale_dav', mount => '/corpus/dav',
      target => "$corpus/radicale_dav/app.py", waitress => 'app:application',
      # Radicale reads the user from Authorization (as under mod_wsgi).
      conf => "<Location /corpus/dav>\n    PyWSGIPassAuthorization On\n"
            . "</Location>\n",
      steps => [
          ['find the principal'],
          ['MKCALENDAR'],
          ['PUT three events'],
          ['REPORT a time range'],
          ['change one event, delete one'],
          # Radicale reads CONTENT_LENGTH bytes: the chunked body is read
          # before the app runs, so they are announced (issue 11.1).
          ['PUT with a chunked body (curl -T -)'],
          ['another user and a wrong password are denied'],
      ] },
    { name => 'Django admin with python3-requests',
      dir => 'django_admin', mount => '/corpus/django',
      target => 'corpussite.wsgi:application '
              . "python-path=$corpus/django_admin:$corpus",
      conf => "<Location /corpus/django>\n    Require all granted\n"
            . "</Location>\n",
      waitress => 'corpussite.wsgi:application',
      init => [$PYTHON, "$corpus/django_admin/manage.py", 'corpus_init'],
      steps => [
          ['login without the CSRF token: 403'],
          ['login (CSRF, session cookie)'],
          ['admin add form: 20 MiB upload'],
          ['change list shows it, spooled to disk'],
          ['stored and served bytes match'],
          ['logout ends the session'],
      ] },
    { name => 'Bottle app with python3-requests',
      dir => 'bottle_app', mount => '/corpus/bottle',
      target => "$corpus/bottle_app/app.py", waitress => 'app:application',
      steps => [
          ['index'],
          ['a page that needs login redirects'],
          ['wrong password: 403'],
          ['login: signed cookie, 303 redirect'],
          ['notes in SQLite (form POST, redirect)'],
          ['multipart upload'],
          ['logout clears the cookie'],
          ['404'],
      ] },
    # WebOb reads a body without CONTENT_LENGTH to its end when
    # wsgi.input_terminated is true (PEP 3333's later flag): its chunked
    # POST passes today, unlike dulwich's and Radicale's.
    { name => 'Pyramid app with python3-requests and curl',
      dir => 'pyramid_app', mount => '/corpus/pyramid',
      target => "$corpus/pyramid_app/app.py", waitress => 'app:application',
      steps => [
          ['form POST without the CSRF token: 400'],
          ['form POSTs with CSRF: redirect, flash, session'],
          ['JSON POST'],
          ['JSON POST streamed chunked (curl -T -)'],
          ['FileResponse: whole file and a Range'],
      ] },
    { name => 'runtime: subprocess, numpy, Pillow, asyncio, stdio',
      dir => 'runtime', mount => '/corpus/runtime',
      target => "$corpus/runtime/app.py", waitress => 'app:application',
      steps => [
          ['subprocess with sys.executable'],
          ['numpy'],
          ['Pillow'],
          ['asyncio.run() in a request'],
          ['sys.stdout/sys.stderr as libraries use them'],
          ['numpy, Pillow, asyncio from 6 threads'],
      ] },
);

my $nsteps = 0;
$nsteps += @{ $_->{steps} } for @apps;
# Per step: waitress ok, mod_pywsgi ok, same value. Per app: the client
# printed exactly the listed steps, under each server (2). Then: the
# mod_pywsgi server started, and its log shows no crash.
plan tests => 3 * $nsteps + 2 * @apps + 2;

my $json = JSON::PP->new->canonical;
my ($nobody_uid, $nogroup_gid) = ((getpwnam 'nobody')[2],
                                  (getgrnam 'nogroup')[2]);

# A fresh data directory for one server, writable by $uid.
sub data_root {
    my ($parent, $uid, $gid) = @_;
    my $d = "$parent/data";
    mkdir $d or die "mkdir $d: $!";
    chown $uid, $gid, $d;
    return $d;
}

# Runs an app's init command with CORPUS_DATA=$data (as root), then hands
# the data directory to $uid.
sub init_app {
    my ($app, $data, $uid, $gid) = @_;
    return 1 unless $app->{init};
    local $ENV{CORPUS_DATA} = $data;
    my $rc = system(@{ $app->{init} });
    system('chown', '-R', "$uid:$gid", $data) == 0 or return 0;
    return $rc == 0;
}

# Runs the app's client against $base; returns a list of step records (or
# one record with step '(client)' saying why it did not run).
sub run_client {
    my ($app, $base, $label) = @_;
    my $t0 = time;
    my $pid = open(my $fh, '-|');
    return ({ step => '(client)', ok => 0, error => "fork: $!" })
        unless defined $pid;
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        chdir "$corpus/$app->{dir}";
        exec('timeout', '-k', '5', $CLIENT_TIMEOUT, $PYTHON, 'client.py',
             $base) or POSIX::_exit(127);
    }
    my @recs;
    my $other = '';
    while (my $line = <$fh>) {
        my $rec = $line =~ /^\{/ ? eval { $json->decode($line) } : undef;
        if ($rec) { push @recs, $rec } else { $other .= $line }
    }
    close $fh;
    my $rc = $? >> 8;
    if ($rc != 0 || $other ne '') {
        push @recs, { step => '(client)', ok => 0,
                      error => "exit $rc" . ($rc == 124 ? ' (timeout)' : '')
                               . ($other ne '' ? ": $other" : '') };
    }
    $app->{elapsed}{$label} = time - $t0;
    return @recs;
}

# Starts waitress for one app (as root: a reference, not a deployment);
# returns (pid, port) once it accepts connections, or () after 15 s.
sub start_waitress {
    my ($app, $data, $log) = @_;
    my $port = free_port(8650 .. 8659) or return;
    my $pid = fork;
    return unless defined $pid;
    if ($pid == 0) {
        POSIX::setsid();
        chdir "$corpus/$app->{dir}";
        $ENV{CORPUS_DATA} = $data;
        $ENV{PYTHONPATH} = "$corpus/$app->{dir}:$corpus";
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec($PYTHON, '-m', 'waitress', "--listen=127.0.0.1:$port",
             "--url-prefix=$app->{mount}", '--threads=6', $app->{waitress})
            or POSIX::_exit(127);
    }
    my $deadline = time + 15;
    while (time < $deadline) {
        last if waitpid($pid, POSIX::WNOHANG()) == $pid;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp');
        if ($s) { close $s; return ($pid, $port) }
        sleep 0.1;
    }
    stop_waitress($pid);
    return;
}

sub stop_waitress {
    my $pid = shift or return;
    kill 'TERM', -$pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.05;
    }
    kill 'KILL', -$pid;
    waitpid($pid, 0);
}

sub slurp {
    my $file = shift;
    open my $fh, '<', $file or return '';
    local $/;
    my $text = <$fh>;
    return $text // '';
}

sub tail_lines {
    my ($text, $n) = @_;
    my @l = split /\n/, $text;
    @l = @l[-$n .. -1] if @l > $n;
    return join "\n", @l;
}

# ------------------------------------------------------------- mod_pywsgi
# The test venv (t/run-mpms makes it; --system-site-packages, so the same
# Debian packages) as a deployment would have one: sys.executable must then
# still be a Python a subprocess can run.
my $conf = -e "$top/t/venv/pyvenv.cfg" ? "PyWSGIVirtualEnv $top/t/venv\n" : '';
for my $app (@apps) {
    $conf .= "PyWSGIScriptAlias $app->{mount} $app->{target}"
           . ($app->{target} =~ /python-path=/ ? '' : " python-path=$corpus")
           . "\n" . ($app->{conf} // '');
}
my $srv = PWServer->new(name => 'corpus', mpm => $mpm, top => $top,
                        processes => $mpm eq 'prefork' ? 3 : 2,
                        threads => 4, conf => $conf);
my $pw_data = data_root($srv->dir, $nobody_uid, $nogroup_gid);
my $started = do {
    local $ENV{CORPUS_DATA} = $pw_data;
    $srv->start;
};
ok($started, "mod_pywsgi ($mpm) serves the corpus")
    or diag($srv->{error});
my $pw_base = $started ? 'http://127.0.0.1:' . $srv->port : undef;

my $ref_tmp = File::Temp->newdir('pw-corpus-waitress-XXXXXX', TMPDIR => 1);
my $ref_data = data_root($ref_tmp->dirname, 0, 0);

for my $app (@apps) {
    my $name = $app->{name};

    # The reference: waitress.
    my @ref;
    if (init_app($app, $ref_data, 0, 0)) {
        my $log = $ref_tmp->dirname . "/$app->{dir}.log";
        my ($wpid, $wport) = start_waitress($app, $ref_data, $log);
        if ($wpid) {
            @ref = run_client($app, "http://127.0.0.1:$wport$app->{mount}",
                             'waitress');
            stop_waitress($wpid);
        }
        else {
            @ref = ({ step => '(client)', ok => 0,
                      error => "waitress did not start:\n"
                               . tail_lines(slurp($log), 10) });
        }
    }
    else {
        @ref = ({ step => '(client)', ok => 0, error => 'init failed' });
    }

    # mod_pywsgi.
    my @got;
    my $offset = $started ? $srv->log_offset : 0;
    if (!$started) {
        @got = ({ step => '(client)', ok => 0, error => 'no server' });
    }
    elsif (!init_app($app, $pw_data, $nobody_uid, $nogroup_gid)) {
        @got = ({ step => '(client)', ok => 0, error => 'init failed' });
    }
    else {
        @got = run_client($app, $pw_base . $app->{mount}, 'mod_pywsgi');
    }
    my $log = $started ? $srv->log_text($offset) : '';

    my @want = map { $_->[0] } @{ $app->{steps} };
    is_deeply([map { $_->{step} } @ref], \@want,
              "waitress: $name: the client ran every step")
        or diag(join "\n", map { "$_->{step}: " . ($_->{error} // 'ok') } @ref);
    is_deeply([map { $_->{step} } @got], \@want,
              "mod_pywsgi ($mpm): $name: the client ran every step")
        or diag(join "\n", map { "$_->{step}: " . ($_->{error} // 'ok') } @got);

    my $log_shown = 0;
    my %ref = map { $_->{step} => $_ } @ref;
    my %got = map { $_->{step} => $_ } @got;
    for my $row (@{ $app->{steps} }) {
        my ($step, $todo) = @$row;
        my $r = $ref{$step} // { ok => 0, error => 'not run' };
        my $g = $got{$step} // { ok => 0, error => 'not run' };
        ok($r->{ok}, "waitress: $name: $step")
            or diag("client: " . ($r->{error} // ''));
        TODO: {
            local $TODO = $todo && ($todo->{$mpm} // $todo->{'*'});
            ok($g->{ok}, "mod_pywsgi ($mpm): $name: $step")
                or diag("client: " . ($g->{error} // '')
                        . ($log_shown++ ? '' : "\nerror_log (the app's "
                           . "last lines):\n" . tail_lines($log, 12)));
            is($json->encode([$g->{value}]), $json->encode([$r->{value}]),
               "mod_pywsgi ($mpm): $name: $step: same value as waitress");
        }
    }
    note(sprintf "%s: client %.1f s under waitress, %.1f s under mod_pywsgi",
         $name, map { $app->{elapsed}{$_} // 0 } qw(waitress mod_pywsgi));
}

# Crashes are not something a client always notices.
my $all_log = $started ? $srv->log_text(0) : '';
unlike($all_log, qr/exit signal|Segmentation fault|Fatal Python error/,
       "mod_pywsgi ($mpm): no child crashed")
    or diag(tail_lines($all_log, 20));
$srv->stop if $started;
