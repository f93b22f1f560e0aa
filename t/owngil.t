# PyWSGIOwnGIL (PEP 684, issue 13): named sub-interpreters with a GIL of
# their own.  configtest refuses it where CPython cannot have it (before
# 3.12; for main; for a per-host or per-file interpreter), naming the
# directive and the fix.  With a Python 3.12+ build (the version matrix,
# t/run-pythons), a private server (t/perl/PWPrivate.pm) with two own-GIL
# interpreters serves requests in both (environ, wsgi.input, the response's
# paths, wsgi.errors and logging, wsgi.file_wrapper, a preloaded app, the
# request timeout's watchdog), refuses a single-phase C extension there with
# a 500 and one PW0110 line (the same file loads in a shared-GIL
# interpreter), shows its figures on the status page, and survives a
# graceful restart and a stop with nothing crashing.  Under Debian's 3.11
# only the refusal runs: the rest is skipped, loudly.  The parallelism
# itself is measured, not tested: bench/owngil.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm is_threaded_mpm pw_module python_version configtest);
use PWServer ();
use PWPrivate ();

my $top   = Apache::Test::vars('top_dir');
my $mpm   = mpm() || 'event';
my $tmp   = File::Temp->newdir('pywsgi-owngil-XXXXXX', TMPDIR => 1);
my $app   = "$top/t/apps/owngil.py";
my $pyv   = python_version();
my ($major, $minor) = split /\./, $pyv;
my $own   = $major > 3 || ($major == 3 && $minor >= 12);

# [name, config lines, expected exit, qr// the output must match]
my @rows = $own ? (
    ['two own-GIL interpreters', <<"EOF2", 0, qr/Syntax OK/],
PyWSGIOwnGIL alpha beta
PyWSGIScriptAlias /a $app interpreter=alpha
PyWSGIScriptAlias /b $app interpreter=beta
EOF2
    ['main cannot have its own GIL', "PyWSGIOwnGIL main\n", 'non-zero',
     qr/PyWSGIOwnGIL main: main always shares its GIL.*name a sub-interpreter/],
    ['%{GLOBAL} is main', "PyWSGIOwnGIL %{GLOBAL}\n", 'non-zero',
     qr/PyWSGIOwnGIL %\{GLOBAL\}: main always shares its GIL/],
    ['%{SERVER} is not a name', "PyWSGIOwnGIL %{SERVER}\n", 'non-zero',
     qr/PyWSGIOwnGIL: '%\{SERVER\}' is made per host or per file; name an interpreter/],
    ['not in a virtual host',
     "<VirtualHost 127.0.0.1:8599>\n    PyWSGIOwnGIL alpha\n</VirtualHost>\n",
     'non-zero', qr/PyWSGIOwnGIL\b.*cannot occur within <VirtualHost> section/],
) : (
    ['before Python 3.12: refused, with the reason and the fix',
     "PyWSGIOwnGIL alpha\nPyWSGIScriptAlias /a $app interpreter=alpha\n",
     'non-zero',
     qr/PyWSGIOwnGIL alpha: interpreters with their own GIL need Python 3\.12 or later \(PEP 684\); this mod_pywsgi is built for Python \Q$pyv\E: remove PyWSGIOwnGIL/],
);

plan tests => @rows + ($own ? 8 : 1);


my $n = 0;
for my $row (@rows) {
    my ($name, $extra, $want_exit, $want_text) = @$row;
    subtest "configtest: $name" => sub {
        my ($exit, $text) = configtest("$tmp/" . ++$n, $extra);
        if ($want_exit eq '0') {
            is($exit, 0, 'exit status 0') or diag($text);
        }
        else {
            isnt($exit, 0, 'exit status non-zero') or diag($text);
            unlike($text, qr/Syntax OK/, 'no "Syntax OK"');
        }
        like($text, $want_text, 'output') or diag($text);
    };
}

unless ($own) {
    diag('!' x 72);
    diag("!!! t/owngil.t: Python $pyv has no interpreters with their own GIL");
    diag('!!! (PEP 684 is 3.12): only the configtest refusal ran; the own-GIL');
    diag('!!! serving tests run in the version matrix (t/run-pythons 3.12 3.13)');
    diag('!!! with PW_MATRIX_TESTS including t/owngil.t, or make test-pythons.');
    diag('!' x 72);
    SKIP: { skip "Python $pyv: no own GIL (PEP 684 needs 3.12+)", 1 }
    exit 0;
}

my $TIMEOUT = 2;
my $extra = <<'EOF2';
PyWSGIOwnGIL alpha beta
PyWSGIRequestTimeout 2
PyWSGIShutdownTimeout 5
PyWSGIScriptAlias /a/files @TOP@/t/apps/owngil.py interpreter=alpha callable=files
PyWSGIScriptAlias /a/stream @TOP@/t/apps/owngil.py interpreter=alpha callable=stream
PyWSGIScriptAlias /a/spin @TOP@/t/apps/owngil.py interpreter=alpha callable=spin
PyWSGIScriptAlias /a/ext @TOP@/t/apps/owngil_ext.py interpreter=alpha
PyWSGIScriptAlias /a/lazyext @TOP@/t/apps/owngil.py interpreter=alpha callable=lazy_ext
PyWSGIScriptAlias /a/race @TOP@/t/apps/owngil.py interpreter=alpha callable=race
PyWSGIScriptAlias /b/race @TOP@/t/apps/owngil.py interpreter=beta callable=race
PyWSGIScriptAlias /a @TOP@/t/apps/owngil.py interpreter=alpha
PyWSGIScriptAlias /b @TOP@/t/apps/owngil.py interpreter=beta
PyWSGIPreload @TOP@/t/apps/owngil.py interpreter=beta
PyWSGIScriptAlias /shared/ext @TOP@/t/apps/owngil_ext.py interpreter=shared
PyWSGIScriptAlias /main @TOP@/t/apps/owngil.py
<Location /pywsgi-status>
    SetHandler pywsgi-status
    PyWSGIStatus On
</Location>
EOF2
# worker/event: one child, its threads spread over the interpreters.
my $procs = is_threaded_mpm() ? 1 : 2;
my $srv = PWPrivate->new(mpm => $mpm, procs => $procs, threads => 4,
                         extra => $extra);
$srv->start or BAIL_OUT($srv->{error});
my $start_off = 0;
my $CRASH = qr/exit signal|still did not exit|Fatal Python error|PW0102|PW0003|PW0105|PW0101/;

sub json_of {
    my $res = shift;
    my %h = ($res->{body} // '') =~ /"(\w+)": ("[^"]*"|[\w.]+)/g;
    s/^"|"$//g for values %h;
    return \%h;
}

subtest 'own-GIL interpreters serve: environ, input, response, logging' => sub {
    my $c = $srv->conn or return fail('connect');
    my (%mods, %hits);
    for my $i (1 .. 3) {
        for my $p ('/a', '/b', '/main') {
            my $res = $c->request("$p/x?t$i", method => 'POST',
                                  body => "payload-$p-$i");
            is($res->{status}, 200, "POST $p/x: 200") or diag($res->{body});
            my $j = json_of($res);
            is($j->{body}, "payload-$p-$i", "$p: wsgi.input read the body");
            is($j->{input}, 'Input', "$p: wsgi.input is mod_pywsgi's");
            is($j->{errors}, 'LogSink', "$p: wsgi.errors is the log sink");
            is($j->{script_name}, $p, "$p: SCRIPT_NAME");
            is($j->{path_info}, '/x', "$p: PATH_INFO");
            $mods{$p}{$j->{modules}} = 1;
            $hits{$p} = $j->{hits};
        }
    }
    if ($procs == 1) {
        my %all = map { %{ $mods{$_} } } keys %mods;
        is(scalar(keys %all), 3, 'alpha, beta and main: three sys.modules');
        is($hits{'/a'}, 3, 'alpha counted its own 3 requests');
        is($hits{'/b'}, 3, 'beta counted its own 3 requests');
    }
    my $log = $srv->log_text($start_off);
    for my $w ('errors', 'stdout', 'logging') {
        like($log, qr/owngil-$w t3/, "$w line logged from an own-GIL interpreter");
    }
};

# Two interpreters with their own GILs run at once in one child (worker,
# event): every object the module keeps must be of the interpreter using it.
# A type shared by both (a static PyTypeObject) has its method
# descriptors' reference counts changed under two GILs: they drift (and
# the type ends up freed into the wrong allocator: a crash).
subtest 'two own-GIL interpreters use the module\'s types at the same time' => sub {
    for my $round (1 .. 2) {
        my @c = map { $srv->conn(timeout => 30) } 1 .. 2;
        return fail('connect') if grep { !$_ } @c;
        $c[0]->send('/a/race?1.5');
        $c[1]->send('/b/race?1.5');
        for my $i (0, 1) {
            my $res = $c[$i]->response(timeout => 30);
            my $p = $i ? '/b' : '/a';
            unless (is($res->{status}, 200, "round $round: $p/race: 200")) {
                diag($res->{error} // $res->{body});
                diag($srv->log_text($start_off) =~ /^(.*(?:exit signal|Fatal|PW0003).*)$/mg);
                return;
            }
            my $j = json_of($res);
            is($j->{after}, $j->{before},
               "round $round: $p: the types' descriptors kept their "
               . "reference counts ($j->{before} -> $j->{after}, "
               . ($j->{loops} // 0) . "k loops)");
        }
        $_->close for @c;
    }
    is($srv->get('/a/x')->{status}, 200, 'alpha serves on');
    is($srv->get('/b/x')->{status}, 200, 'beta serves on');
    unlike($srv->log_text($start_off), $CRASH, 'nothing crashed');
};

subtest 'wsgi.file_wrapper, write() and a generator in an own-GIL interpreter' => sub {
    my $res = $srv->get('/a/files');
    is($res->{status}, 200, 'file_wrapper: 200');
    like($res->{body}, qr/^"""Apps for t\/owngil\.t/, 'the file itself');
    is(length($res->{body}), -s $app, 'all of it');
    $res = $srv->get('/a/stream');
    is($res->{status}, 200, 'stream: 200');
    is($res->{body}, "one\ntwo\nthree\n", 'write() and the generator');
};

subtest 'the request timeout reaches an own-GIL interpreter' => sub {
    my $t0 = time;
    my $res = $srv->get('/a/spin?30', timeout => 20);
    is($res->{status}, 504, 'a 30 s CPU loop: 504');
    cmp_ok(time - $t0, '<', 15, 'cut by PyWSGIRequestTimeout');
    is($srv->get('/a/x')->{status}, 200, 'the interpreter serves on');
};

subtest 'a single-phase C extension: 500 and one PW0110 line' => sub {
    my $off = $srv->log_offset;
    my $res = $srv->get('/a/ext');
    is($res->{status}, 500, 'own-GIL interpreter: 500');
    my $log = $srv->log_text($off);
    my @lines = grep { /\S/ } split /\n/, $log;
    is(scalar(@lines), 1, 'one log line') or diag($log);
    like($lines[0] // '', qr/PW0110: \/a\/ext: application '[^']*owngil_ext\.py' imports the C extension module '_testsinglephase', which does not support interpreters with their own GIL \(single-phase init\): put this app in a shared-GIL interpreter \(remove 'alpha' from PyWSGIOwnGIL\)/,
         'names the module, the interpreter and the fix');
    # The same import while serving: the app's own exception (PW0301 and
    # its traceback), the fix on its first line.
    $off = $srv->log_offset;
    $res = $srv->get('/a/lazyext');
    is($res->{status}, 500, 'an import while serving: 500');
    like($srv->log_text($off), qr/PW0301: \/a\/lazyext: application '[^']*' raised ImportError: module _testsinglephase does not support loading in subinterpreters \(PW0110: a C extension with single-phase init: put this app in a shared-GIL interpreter, remove its interpreter from PyWSGIOwnGIL\)/,
         'its first line names the module and the fix');
    $res = $srv->get('/shared/ext');
    is($res->{status}, 200, 'a shared-GIL sub-interpreter loads it: 200')
        or diag($srv->log_text($off));
    like($res->{body}, qr/imported _testsinglephase/, 'and runs it');
};

subtest 'status page and metrics after requests to own-GIL interpreters' => sub {
    my $res = $srv->get('/pywsgi-status?format=json');
    is($res->{status}, 200, 'json: 200');
    like($res->{body}, qr/owngil\.py/, 'names the app');
    $res = $srv->get('/pywsgi-status?format=prometheus');
    is($res->{status}, 200, 'prometheus: 200');
    like($res->{body}, qr/pywsgi_requests_total\{[^}]*owngil\.py[^}]*\} [1-9]/,
         'counts its requests');
    $res = $srv->get('/pywsgi-status');
    is($res->{status}, 200, 'html: 200');
};

subtest 'graceful restart with own-GIL interpreters' => sub {
    my @old = $srv->children;
    my $off = $srv->log_offset;
    $srv->graceful;
    my $t0 = time;
    sleep 0.1 while grep({ PWServer::process_alive($_) } @old) && time - $t0 < 15;
    ok(!grep({ PWServer::process_alive($_) } @old), 'old children gone');
    my @kids = $srv->wait_children($procs, 15, @old);
    ok(@kids >= $procs, "a new generation: @kids");
    for my $p ('/a/x', '/b/x', '/main/x') {
        is($srv->get($p)->{status}, 200, "$p serves after the restart");
    }
    unlike($srv->log_text($off), $CRASH, 'nothing crashed');
};

subtest 'a clean stop' => sub {
    my $off = $srv->log_offset;
    my @left = $srv->stop;
    is(scalar(@left), 0, 'nobody had to be killed');
    my $log = $srv->log_text($off);
    unlike($log, $CRASH, 'nothing crashed at exit') or diag($log);
    unlike($srv->log_text(0), $CRASH, 'nor anywhere in the log');
};
