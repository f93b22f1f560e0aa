# ASGI websockets (issue 17): the `websocket` scope over an HTTP/1.1
# Upgrade on an interface=asgi mount, driven by a real client (Debian's
# python3-websockets, t/tools/ws_client).  Mount: /asgi/ws in
# t/conf/asgi.conf.in (t/apps/asgi/ws_app.py) and Starlette's
# WebSocketRoute at /asgi/star/ws.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use PWTest qw(raw_request log_offset log_since wait_for_log mpm);
use PWServer ();

my $port   = Apache::Test::vars('port');
our $base   = "ws://127.0.0.1:$port";
my $client = "$FindBin::Bin/tools/ws_client";

plan skip_all => 'python3-websockets missing (./dev installs it)'
    unless system('/usr/bin/python3', '-c', 'import websockets') == 0;

sub run_client {
    my ($scenario, $url, $ca) = @_;
    local $ENV{PATH} = '/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin';
    $url //= $base;
    $ca //= '';
    my $out = `/usr/bin/python3 $client $url $scenario $ca 2>&1`;
    return $out;
}

my $out;

$out = run_client('echo');
is($out, "text hello \x{c3}\x{a9}\nbytes bytes 76800 True\npong\n",
   'echo: text, 75 KiB of bytes, ping answered');

$out = run_client('subproto');
is($out, "subprotocol x-b\nheader yes\nscope ws x-a,x-b /asgi/ws a=1\n",
   'subprotocol chosen by the app, extra header, the scope');

$out = run_client('refuse');
is($out, "status 403\n", 'websocket.close before accept: 403');

my $off = log_offset();
$out = run_client('clientclose');
is($out, "closed 4001\n", 'the client closes with 4001');
like(wait_for_log($off, qr/asgi-ws disconnect \d+/, 10),
     qr/asgi-ws disconnect 4001/, 'the app saw websocket.disconnect 4001');
unlike(log_since($off), qr/\[pywsgi:(?:warn|error|crit)\][^\n]*PW\d{4}/,
       'a client close is not an error (no PW warning or error)');

$out = run_client('appclose');
is($out, "text bye\nclosed 4002\n", 'the app closes with 4002');

$off = log_offset();
$out = run_client('boom');
is($out, "closed 1011\n", 'an app raising after accept: close 1011');
my $log = wait_for_log($off, qr/websocket boom/, 10);
my @lines = grep { /PW08\d\d/ && /websocket boom/ } split /\n/, $log;
is(scalar(@lines), 1, 'one PW08xx line names the exception');
like($lines[0] // '', qr/PW0800: \/asgi\/ws\/boom: .*raised on a websocket: RuntimeError: websocket boom/,
     'PW0800 (its traceback follows as PW0303)');

$off = log_offset();
$out = run_client('badsend');
is($out, "closed 1011\n", 'an app sending a wrong message after accept: close 1011');
$log = wait_for_log($off, qr/PW0809/, 10);
# A prefork child new to this app first says (info) that it takes no
# lifespan, PW0803: not a line about this request.
@lines = grep { /PW\d{4}/ && !/PW0803:/ } split /\n/, $log;
is(scalar(@lines), 1, 'one log line');
like($lines[0] // '', qr/PW0809: \/asgi\/ws\/badsend: .*websocket\.send needs text/,
     'PW0809 says what the app sent');

$out = run_client('starlette');
is($out, "text hello \x{c3}\x{a9}\nbytes bytes 76800 True\npong\n",
   'Starlette WebSocketRoute echoes');

$out = run_client('many');
is($out, "many 20\n", '20 concurrent websockets echo');

# PyWSGIRequestTimeout (1 s on this virtual host) does not cut a
# websocket: the client waits 2 s between two echoes.
{
    my $vport = Apache::Test::vars('pywsgi_asgi_port');
    local $base = "ws://127.0.0.1:$vport";
    $off = log_offset();
    $out = run_client('slow');
    is($out, "text one\ntext two\n", 'a websocket outlives PyWSGIRequestTimeout');
    unlike(log_since($off), qr/PW0401/, 'no timeout logged');
}

# Unchanged: a WSGI mount sees the Upgrade headers as before (no 101), and
# an Upgrade on a POST to an ASGI mount is plain http.
my @up = (['Upgrade', 'websocket'], ['Connection', 'Upgrade'],
          ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
          ['Sec-WebSocket-Version', '13']);
my $res = raw_request(path => '/env', headers => \@up);
is($res->{status}, 200, 'WSGI mount with Upgrade: websocket: a plain 200');
like($res->{body}, qr/HTTP_UPGRADE\W+websocket/, 'the WSGI app sees HTTP_UPGRADE');
$res = raw_request(method => 'POST', path => '/asgi/star/echo', headers => \@up,
                   body => 'plain');
is($res->{status}, 200, 'POST with Upgrade on an ASGI mount: http');
is($res->{body}, 'plain', 'its body echoed');

# wss: the same websocket through mod_ssl (t/pep3333.t's TLS virtual host,
# which inherits the main server's mounts); the scope says wss.
{
    my $tls_port = Apache::Test::vars('pep3333_tls_port');
    my $ca = "$FindBin::Bin/conf/pep3333-tls/cert.pem";
    $out = run_client('echo', "wss://127.0.0.1:$tls_port", $ca);
    is($out, "text hello \x{c3}\x{a9}\nbytes bytes 76800 True\npong\n",
       'wss: echo through mod_ssl');
    $out = run_client('subproto', "wss://127.0.0.1:$tls_port", $ca);
    like($out, qr/^scope wss x-a,x-b \/asgi\/ws a=1$/m, 'wss: scope scheme is wss');
}

# A child with many descriptors open (a busy one has a connection each):
# the bridge's own descriptors then number past 1,023, where select()
# cannot wait (it failed: 500, "filedescriptor out of range in select()").
# A private server with one child, so both websockets meet the same one.
{
    my $top = Apache::Test::vars('top_dir');
    my $m = mpm() || 'event';
    # Both websockets at once in one child: a thread each.
    $m = 'event' if $m eq 'prefork';
    my $srv = PWServer->new(name => 'wsfd', mpm => $m, top => $top,
        conf => "PyWSGIScriptAlias /asgi/ws ws_app:app interface=asgi "
              . "python-path=$top/t/apps/asgi\n");
    if ($srv->start) {
        my $pbase = 'ws://127.0.0.1:' . $srv->port;
        my $out = run_client('fill', $pbase);
        SKIP: {
            skip "the child may not open 1,400 descriptors (hard limit)", 1
                if $out =~ /closed 4003/;
            is($out, "filled\ntext hello \x{c3}\x{a9}\nbytes bytes 76800 True\npong\n",
               'a websocket whose descriptors number past 1,023 echoes');
            unlike($srv->log_text, qr/PW0806/, 'no bridge failure logged');
        }
        $srv->stop;
    }
    else {
        fail("private server: $srv->{error}");
    }
}

# A handshake this server cannot accept (RFC 6455 4.2.1, 4.2.2): another
# protocol version gets 426 naming the one it speaks; no version, no key or
# a key that is not 16 bytes in base64 get 400.  The app never sees them.
my @hs = (['Upgrade', 'websocket'], ['Connection', 'Upgrade']);
$off = log_offset();
$res = raw_request(path => '/asgi/ws/echo', headers => [@hs,
    ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ['Sec-WebSocket-Version', '8']]);
is($res->{status}, 426, 'Sec-WebSocket-Version 8: 426 Upgrade Required');
is($res->{headers}{'sec-websocket-version'}, '13', '... naming version 13');
like($res->{headers}{'upgrade'} // '', qr/websocket/i, '... and Upgrade: websocket');
for my $case (['no version', ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']],
              ['no key', ['Sec-WebSocket-Version', '13']],
              ['a 3-byte key', ['Sec-WebSocket-Key', 'YWJj'],
               ['Sec-WebSocket-Version', '13']],
              ['a key that is not base64',
               ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ!!'],
               ['Sec-WebSocket-Version', '13']]) {
    my ($what, @h) = @$case;
    $res = raw_request(path => '/asgi/ws/echo', headers => [@hs, @h]);
    is($res->{status}, 400, "websocket handshake with $what: 400");
}
unlike(log_since($off), qr/PW08(?!03)/, 'a bad handshake is the client\'s error: no PW08xx line');

# The server still serves plain HTTP afterwards.
is(raw_request(path => '/asgi/star/')->{status}, 200, 'HTTP still served');
done_testing();
