# ASGI applications (issue 17): PyWSGIScriptAlias ... interface=asgi serves
# ASGI 3 apps through real HTTP, with real frameworks from Debian
# (Starlette, FastAPI, Django's async views) and plain apps written against
# the spec (t/apps/asgi/raw_app.py).  Each row is one request; rows with
# `log` also check the one error-log line the request must cause.  The
# last subtest makes a graceful restart and checks lifespan.shutdown.
# Mounts: t/conf/asgi.conf.in.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use IO::Socket::INET ();
use PWTest qw(raw_request decode_json_body log_offset log_since wait_for_log);

my $t_logs = Apache::Test::vars('t_logs');
my $port   = Apache::Test::vars('port');
my $upload = join('', map { chr } 0 .. 255) x 800;    # 200 KiB, every byte

# {name, method, path, headers => [[n, v]], body, chunked, status,
#  body_is => string, body_like => qr//, json => sub($data) for more tests,
#  header => {lc name => qr//}, complete => 0 (a truncated response),
#  log => qr// (one matching line must appear), nolog => qr// (must not)}
my @rows = (
    # --- Starlette ---------------------------------------------------------
    { name => 'starlette: a route', path => '/asgi/star/', status => 200,
      body_is => "starlette index\n",
      header => { 'content-type' => qr{^text/plain}, 'content-length' => qr/^16$/ } },
    { name => 'starlette: the http scope', method => 'GET',
      path => '/asgi/star/scope/caf%C3%A9/x?a=1&b=%20',
      headers => [['X-Multi', 'one'], ['Authorization', 'Basic eDp5']],
      status => 200,
      json => sub {
          my $d = shift;
          is($d->{type}, 'http', 'type');
          is_deeply($d->{asgi}, { version => '3.0', spec_version => '2.3' }, 'asgi');
          is($d->{http_version}, '1.1', 'http_version');
          is($d->{method}, 'GET', 'method');
          is($d->{scheme}, 'http', 'scheme');
          # (raw_request's body is octets: the JSON decodes to UTF-8 bytes)
          is($d->{path}, "/scope/caf\xc3\xa9/x", 'path: decoded, below root_path');
          is($d->{raw_path}, '/asgi/star/scope/caf%C3%A9/x', 'raw_path: as sent');
          is($d->{query_string}, 'a=1&b=%20', 'query_string: as sent');
          is($d->{root_path}, '/asgi/star', 'root_path = SCRIPT_NAME');
          my %h = map { $_->[0] => $_->[1] } @{ $d->{headers} };
          is($h{'x-multi'}, 'one', 'headers: lower-case names');
          ok(!exists $h{authorization}, 'Authorization withheld (PyWSGIPassAuthorization Off)');
          is_deeply($d->{client}[0], '127.0.0.1', 'client ip');
          ok($d->{client}[1] > 0, 'client port');
          is_deeply($d->{server}, ['127.0.0.1', $port], 'server');
          ok($d->{state}{started_pid}, 'state: a copy of the lifespan state');
          like($d->{url}, qr{^http://127\.0\.0\.1:\d+/asgi/star/scope/}, 'request.url');
      } },
    { name => 'starlette: HTTP/1.0', path => '/asgi/star/scope', proto => '1.0',
      status => 200, json => sub { is($_[0]{http_version}, '1.0', 'http_version 1.0') } },
    { name => 'starlette: body echo (Content-Length, 200 KiB)', method => 'POST',
      path => '/asgi/star/echo', body => $upload, status => 200,
      body_is => $upload, header => { 'x-chunks' => qr/^[4-9]$/ } },
    { name => 'starlette: body echo (chunked upload)', method => 'PUT',
      path => '/asgi/star/echo', body => $upload, chunked => 1, status => 200,
      body_is => $upload },
    { name => 'starlette: empty POST', method => 'POST', path => '/asgi/star/echo',
      body => '', status => 200, body_is => '' },
    { name => 'starlette: streaming response', path => '/asgi/star/stream',
      status => 200, body_is => "part 0\npart 1\npart 2\n",
      header => { 'transfer-encoding' => qr/chunked/ } },
    { name => 'starlette: exception -> 500 and PW0800 with the traceback',
      path => '/asgi/star/boom', status => 500,
      log => qr/PW0800: \/asgi\/star\/boom: ASGI application 'starlette_app:app' raised:? RuntimeError: starlette boom/,
      log2 => qr/PW0303:.*starlette_app\.py", line \d+, in boom/ },
    { name => 'starlette: 404 of its router', path => '/asgi/star/nothing',
      status => 404 },
    { name => 'starlette: HEAD', method => 'HEAD', path => '/asgi/star/', status => 200,
      body_is => '' },

    # --- FastAPI -----------------------------------------------------------
    { name => 'fastapi: JSON with a path parameter', path => '/asgi/fast/items/42?q=x',
      status => 200, header => { 'content-type' => qr{^application/json} },
      json => sub { is_deeply($_[0], { item_id => 42, q => 'x' }, 'item') } },
    { name => 'fastapi: a path parameter that is not an int: 422',
      path => '/asgi/fast/items/abc', status => 422,
      json => sub { like($_[0]{detail}[0]{msg}, qr/integer/, 'validation message') } },
    { name => 'fastapi: HTTPException 404', path => '/asgi/fast/items/404',
      status => 404, json => sub { is($_[0]{detail}, 'no such item', 'detail') } },
    { name => 'fastapi: JSON body (pydantic)', method => 'POST', path => '/asgi/fast/items',
      headers => [['Content-Type', 'application/json']],
      body => qq({"name": "caf\xc3\xa9", "price": 2.5}), status => 200,
      json => sub { is_deeply($_[0], { name => "caf\xc3\xa9", price => 2.5, total => 5 }, 'item') } },

    # --- Django (async view through django.core.asgi) ----------------------
    { name => 'django: an async view', path => '/asgi/django/async/?n=3', status => 200,
      body_like => qr/^async django n=3 path=\/asgi\/django\/async\/$/ },

    # --- plain ASGI: the protocol's edges -----------------------------------
    { name => 'raw: hello, headers as bytes', path => '/asgi/raw/hello', status => 200,
      body_is => "hello asgi\n", header => { 'x-raw' => qr/^yes$/ } },
    { name => 'raw: 201 with Location', path => '/asgi/raw/201', status => 201,
      header => { location => qr{/x$} } },
    { name => 'raw: receive() events, then http.disconnect after the response',
      method => 'POST', path => '/asgi/raw/events', body => 'x' x 70000,
      status => 200, body_is => "http.request:65536:True http.request:4464:False\n",
      log => qr/asgi-after-response http\.disconnect/ },
    { name => 'raw: class form (lifespan complete, then served)',
      path => '/asgi/class/', status => 200, body_is => "class app started\n" },
    { name => 'raw: a body over LimitRequestBody: 413, not an app error',
      method => 'POST', path => '/asgi/limit/events', body => 'y' x 500, status => 413,
      nolog => qr/PW080[01]/ },
    { name => 'raw: returns without a response: 500, PW0801',
      path => '/asgi/raw/nostart', status => 500,
      log => qr/PW0801: \/asgi\/raw\/nostart: ASGI application 'raw_app:app' broke the protocol: returned without sending http\.response\.start/ },
    { name => 'raw: a final 1xx status: 500, PW0801', path => '/asgi/raw/1xx', status => 500,
      log => qr/PW0801: .* final status 103 is informational/ },
    { name => 'raw: str header names: 500, PW0801', path => '/asgi/raw/strheader',
      status => 500, log => qr/PW0801: .*name and value must be bytes/ },
    { name => 'raw: CR LF in a header value: 500, PW0801 (the WSGI check)',
      path => '/asgi/raw/badheader', status => 500,
      log => qr/PW0801: .*start_response.*x-bad/ },
    { name => 'raw: http.response.start twice: 500, PW0801', path => '/asgi/raw/twice',
      status => 500, log => qr/PW0801: .*http\.response\.start twice/ },
    { name => 'raw: raises before the response: 500, PW0800 + traceback',
      path => '/asgi/raw/raise-early', status => 500,
      log => qr/PW0800: \/asgi\/raw\/raise-early: ASGI application 'raw_app:app' raised:? KeyError: 'raw early'/,
      log2 => qr/PW0303:.*raw_app\.py", line \d+, in raise_early/ },
    { name => 'raw: raises after the response started: truncated, PW0800',
      path => '/asgi/raw/raise-late', status => 200, complete => 0,
      body_like => qr/^first part\n/,
      log => qr/PW0800: .*raised:? KeyError: 'raw late'/ },
    { name => 'raw: returns with more_body still set: truncated, PW0801',
      path => '/asgi/raw/incomplete', status => 200, complete => 0,
      log => qr/PW0801: .*returned before its response was complete/ },
    { name => 'raw: PyWSGIInterpreter NAME over an ASGI mount: 500, PW0808',
      path => '/asgi/iso/hello', status => 500,
      log => qr/PW0808: \/asgi\/iso\/hello: ASGI application 'raw_app:app' runs in the main interpreter only/ },
    { name => 'raw: main still serves after that', path => '/asgi/raw/hello',
      status => 200, body_is => "hello asgi\n" },
    { name => 'raw: lifespan startup failed: 500, PW0804',
      path => '/asgi/failing/', status => 500,
      log => qr/PW0804: \/asgi\/failing\/: ASGI application 'raw_app:failing_app' is not serving/ },
);

plan tests => scalar(@rows) + 7;

for my $row (@rows) {
    subtest $row->{name} => sub {
        my $off = log_offset();
        my $res = request($row);
        is($res->{error}, undef, 'no client error');
        is($res->{status}, $row->{status}, "status $row->{status}");
        is($res->{body}, $row->{body_is}, 'body') if defined $row->{body_is};
        like($res->{body}, $row->{body_like}, 'body') if $row->{body_like};
        for my $h (sort keys %{ $row->{header} || {} }) {
            like($res->{headers}{$h} // '', $row->{header}{$h}, "header $h");
        }
        if (defined $row->{complete}) {
            is($res->{complete}, $row->{complete}, 'a truncated response') ;
        }
        if ($row->{json}) {
            my $d = decode_json_body($res->{body});
            ok($d, 'JSON body') or diag($res->{body});
            $row->{json}->($d) if $d;
        }
        for my $k (qw(log log2)) {
            next unless $row->{$k};
            like(wait_for_log($off, $row->{$k}), $row->{$k}, "error log: $k");
        }
        if ($row->{nolog}) {
            select(undef, undef, undef, 0.3);
            unlike(log_since($off), $row->{nolog}, 'no app error logged');
        }
    };
}

# The scope's http_version comes from the request line: HTTP/1.0 above;
# Apache::Test has no HTTP/2 here (mod_http2 is not in the base config).
sub request {
    my $row = shift;
    if (($row->{proto} // '') eq '1.0') {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                         Timeout => 15) or return { error => "$!" };
        print $sock "GET $row->{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        local $/;
        my $text = <$sock> // '';
        my ($head, $body) = split /\r\n\r\n/, $text, 2;
        my ($status) = $head =~ m{^HTTP/\S+ (\d+)};
        return { status => $status // 0, body => $body // '', headers => {},
                 error => undef, complete => 1 };
    }
    return raw_request(method => $row->{method} || 'GET', path => $row->{path},
                       headers => $row->{headers}, body => $row->{body},
                       chunked => $row->{chunked});
}

subtest 'lifespan startup ran once per child, before the first request' => sub {
    my $log = log_since(0);
    my %startups;
    $startups{$1}++ while $log =~ /asgi-lifespan startup pid (\d+)/g;
    ok(scalar(keys %startups) >= 1, 'at least one child started the app');
    ok(!(grep { $_ > 1 } values %startups), 'never twice in one child')
        or diag(explain(\%startups));
    like($log, qr/PW0803: ASGI application 'raw_app:app' does not take the lifespan protocol/,
         'an app without lifespan support is served without it (PW0803)');
    like($log, qr/PW0802: ASGI application 'raw_app:failing_app' answered lifespan\.startup\.failed in pid \d+: no database/,
         'a failed startup is logged (PW0802)');
};

subtest 'the server keeps serving ASGI after the failures' => sub {
    my $res = raw_request(path => '/asgi/raw/hello');
    is($res->{status}, 200, 'status');
    is($res->{body}, "hello asgi\n", 'body');
};

subtest 'concurrent requests: each gets its own body back (one loop, many threads)' => sub {
    # Eight connections open at once, each with a body of its own: the
    # hand-over between Apache threads and the loop must not mix them.
    my @socks;
    for my $i (1 .. 8) {
        my $body = sprintf("%02d", $i) x 10000;    # 20 KB: fits the buffers
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Timeout => 15) or die "connect: $!";
        binmode $s;
        print $s "POST /asgi/star/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               . "Connection: close\r\nContent-Length: " . length($body)
               . "\r\n\r\n" . $body;
        push @socks, [$s, $body];
    }
    my $good = 0;
    for my $p (@socks) {
        local $/;
        my $s = $p->[0];
        my $text = <$s> // '';
        my (undef, $got) = split /\r\n\r\n/, $text, 2;
        $good++ if $text =~ m{^HTTP/1\.1 200 } && defined $got && $got eq $p->[1];
    }
    is($good, 8, 'eight 200s, each with its own body');
};

subtest 'a client that leaves mid-stream is not a server error' => sub {
    my $off = log_offset();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 15) or die "connect: $!";
    print $s "GET /asgi/star/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    my $got = '';
    while ($got !~ /part 0/) {
        my $n = sysread($s, $got, 4096, length $got);
        last unless $n;
    }
    like($got, qr/part 0/, 'the first part arrived');
    close $s;
    select(undef, undef, undef, 1.2);    # the app tries to send parts 1, 2
    unlike(log_since($off), qr/PW080[0-8]|PW0303/, 'nothing logged as an error');
    is(raw_request(path => '/asgi/raw/hello')->{status}, 200, 'serving on');
};

subtest 'PyWSGIRequestTimeout stops an awaiting ASGI request: 504, PW0401' => sub {
    my $off = log_offset();
    my $vport = Apache::Test::vars('pywsgi_asgi_port');
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $vport,
                                     Timeout => 15) or die "connect: $!";
    print $sock "GET /asgi/star/sleep?s=6 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              . "Connection: close\r\n\r\n";
    local $/;
    my $text = <$sock> // '';
    like($text, qr{^HTTP/1\.1 504 }, 'answered 504');
    my $log = wait_for_log($off, qr/PW0401/, 5);
    like($log, qr/PW0401: \/asgi\/star\/sleep: application 'starlette_app:app' stopped after 1 s/,
         'PW0401 names the app');
    like($log, qr/PW0800: .*RequestTimeout/, 'the timeout as the app saw it (PW0800)');
    my $res = raw_request(path => '/asgi/star/sleep?s=0');
    is($res->{body}, "slept\n", 'the loop serves on');
};

subtest 'metrics count ASGI requests like WSGI ones' => sub {
    my $res = raw_request(path => '/pywsgi-status?format=prometheus');
    like($res->{body}, qr/^pywsgi_requests_total\{[^}]*app="starlette_app:app"[^}]*status_class="2xx"[^}]*\} [1-9]/m,
         'pywsgi_requests_total for the Starlette app, 2xx');
    like($res->{body}, qr/^pywsgi_requests_total\{[^}]*app="raw_app:app"[^}]*status_class="5xx"[^}]*\} [1-9]/m,
         '... and the 5xx of the raw app');
};

subtest 'graceful restart: lifespan.shutdown in each child that started' => sub {
    my $log = log_since(0);
    my %pids;
    $pids{$1} = 1 while $log =~ /asgi-lifespan startup pid (\d+)/g;
    my $off = log_offset();
    open my $fh, '<', "$t_logs/httpd.pid" or die "httpd.pid: $!";
    chomp(my $ppid = <$fh>);
    kill 'USR1', $ppid or die "kill: $!";
    my $want = join '|', keys %pids;
    my $text = wait_for_log($off, qr/asgi-lifespan shutdown pid ($want)\b/, 10);
    like($text, qr/asgi-lifespan shutdown pid ($want)\b/,
         'a child that ran the app ran its shutdown');
    unlike($text, qr/PW0102|PW0805/, 'no stuck finalisation, no shutdown failure');
    # The server answers again (new children).
    my $res;
    for (1 .. 50) {
        $res = raw_request(path => '/asgi/star/');
        last if $res->{status} == 200;
        select(undef, undef, undef, 0.1);
    }
    is($res->{status}, 200, 'serving again after the restart');
};
