# ASGI apps in sub-interpreters (issue 17, "one event loop per interpreter
# per child"): from Python 3.12 on asyncio keeps its running loop per
# interpreter, so interface=asgi may name an interpreter, a shared-GIL or an
# own-GIL one (PyWSGIOwnGIL): each gets a loop thread of its own, its own
# copy of the app and its own lifespan; at the child's exit each loop ends
# (lifespan shutdown) before its interpreter does, with no thread left
# behind (PW0106) and nothing crashing.  Before 3.12 configtest refuses it
# (t/config.t); this file then says loudly that it skipped, and t/run-pythons
# runs it for 3.12 and 3.13.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use PWTest qw(mpm is_threaded_mpm python_version);
use PWPrivate ();

my $mpm = mpm() || 'event';
my $pyv = python_version();
my ($major, $minor) = split /\./, $pyv;

if ($major == 3 && $minor < 12) {
    diag('!' x 72);
    diag("!!! t/asgi_interp.t: Python $pyv runs ASGI in the main interpreter only");
    diag('!!! (asyncio shares its loop state before 3.12; t/config.t checks the');
    diag('!!! refusal): ASGI in sub-interpreters runs in the version matrix');
    diag('!!! (t/run-pythons: 3.12 and 3.13).');
    diag('!' x 72);
    plan skip_all => "Python $pyv: ASGI in sub-interpreters needs 3.12+";
}

my $extra = <<'EOF2';
PyWSGIOwnGIL beta
PyWSGIShutdownTimeout 5
PyWSGIScriptAlias /m interp_app:app interface=asgi python-path=@TOP@/t/apps/asgi
PyWSGIScriptAlias /a interp_app:app interface=asgi interpreter=alpha python-path=@TOP@/t/apps/asgi
PyWSGIScriptAlias /b interp_app:app interface=asgi interpreter=beta python-path=@TOP@/t/apps/asgi
PyWSGIScriptAlias /asgi/ws ws_app:app interface=asgi interpreter=beta python-path=@TOP@/t/apps/asgi
EOF2
# One child under worker/event (its threads reach all three interpreters).
my $procs = is_threaded_mpm() ? 1 : 2;
my $srv = PWPrivate->new(mpm => $mpm, procs => $procs, threads => 4, extra => $extra);
$srv->start or BAIL_OUT($srv->{error});

my (%token, %loop);
for my $p ('/m', '/a', '/b') {
    my $res = $srv->get("$p/x");
    is($res->{status}, 200, "ASGI app at $p (main, alpha, own-GIL beta): 200")
        or diag($res->{body} // $res->{error});
    my ($tok, $started, $thread, $lp) = split ' ', $res->{body} // '';
    is($started, $tok, "$p: the lifespan state of its own copy");
    like($thread // '', qr/mod_pywsgi-asyncio/, "$p: run by a loop thread");
    $token{$p} = $tok;
    $loop{$p} = $lp;
}
if ($procs == 1) {
    my %seen = map { ($token{$_} // '') => 1 } keys %token;
    is(scalar(keys %seen), 3, 'three copies of the app: one per interpreter');
}

# The three loops wait at the same time: three 0.5 s awaits in parallel.
{
    my @c = map { $srv->conn(timeout => 10) } 1 .. 3;
    my $i = 0;
    $_->send(('/m', '/a', '/b')[$i++] . '/wait') for @c;
    my @st = map { $_->response(timeout => 10)->{status} // 0 } @c;
    is("@st", '200 200 200', 'awaits in three interpreters at once: all 200');
}

# A websocket in the own-GIL interpreter (t/tools/ws_client: Debian's
# python3-websockets).
SKIP: {
    skip 'python3-websockets missing (./dev installs it)', 1
        unless system('/usr/bin/python3', '-c', 'import websockets') == 0;
    local $ENV{PATH} = '/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin';
    my $url = 'ws://127.0.0.1:' . $srv->port;
    my $out = `/usr/bin/python3 $FindBin::Bin/tools/ws_client $url echo 2>&1`;
    is($out, "text hello \x{c3}\x{a9}\nbytes bytes 76800 True\npong\n",
       'a websocket echoes in an own-GIL interpreter');
}

my $off = $srv->log_offset;
$srv->stop;
my $log = $srv->log_text;
my @down = $log =~ /asgi-interp shutdown (\w+)/g;
my %down = map { $_ => 1 } @down;
for my $p ('/m', '/a', '/b') {
    ok($down{$token{$p} // 'none'}, "$p: its lifespan shutdown ran at the child's exit");
}
unlike($log, qr/PW0106/, 'no interpreter left with a thread running (PW0106)');
unlike($log, qr/exit signal|Fatal Python error|PW0003|PW0102|PW0805/,
       'nothing crashed or hung at exit');
done_testing();
