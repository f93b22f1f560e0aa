# HTTP/1.1 framing on the wire (issue 3), over raw sockets (t/perl/PWRaw.pm),
# never an HTTP client library that would hide it: Content-Length, chunked
# and close-delimited bodies; an app's Content-Length shorter or longer than
# its body; HEAD; 204/304; keep-alive under 1.0 and 1.1; pipelining; chunked
# request bodies, malformed ones included; Expect: 100-continue;
# LimitRequestBody; a streamed response seen before it is finished; an
# exception after the first chunk; close() of the response exactly once,
# also when the client goes away.
#
# Apps: t/apps/p3_response.py (one case per first PATH_INFO segment);
# mounts: t/conf/pep3333.conf.in (/p3/resp, /p3/limit with LimitRequestBody
# 100). Every socket wait has a deadline (PWRaw: 10 s).
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(time sleep);
use PWTest qw(decode_json_body log_offset log_since wait_for_log);
use PWRaw qw(request_text chunk_body);

my $top = Apache::Test::vars('top_dir');
my $run = "$$." . int(time);
my $src = do {
    open my $fh, '<', "$top/t/apps/p3_response.py" or die "p3_response.py: $!";
    binmode $fh;
    local $/; <$fh>;
};

sub show {
    my $res = shift;
    return "status $res->{status}, error " . ($res->{error} // 'none')
         . "\n" . ($res->{head} // '') . 'body: '
         . substr($res->{body} // $res->{partial} // '', 0, 200);
}

# After a response: is the connection still usable? A second request on it
# must be answered (kept alive), or the server must close it at once.
sub still_alive {
    my $c = shift;
    $c->send(request_text('GET', '/p3/resp/fixed', [])) or return 0;
    my $res = $c->response;
    return $res->{status} == 200 && $res->{body} eq "fixed body\n";
}

# ---------------------------------------------------------------------------
# Framing: [name, case path, {proto, headers}, expected {status, framing
# ('length', 'chunked', 'close'), body, complete, after => 'alive' or
# 'closed', headers => {name => value or undef}, log => qr//}]
my %alive  = (after => 'alive');
my %closed = (after => 'closed');
my @framing_rows = (
    ['declared Content-Length', 'fixed', {},
     { framing => 'length', body => "fixed body\n", %alive }],
    ['list without Content-Length: computed', 'listed', {},
     { framing => 'length', body => "one\ntwo\nthree\n", %alive,
       headers => { 'content-length' => '14' } }],
    ['generator on HTTP/1.1: chunked', 'gen', {},
     { framing => 'chunked', body => "alpha\nbeta\ngamma\n", %alive }],
    # Content-Length or chunked: both are right for a big item.
    ['1 MiB list item', 'big_list', {},
     { body => join('', map { chr } 0 .. 255) x 4096, %alive }],
    ['HTTP/1.1 Connection: close', 'fixed',
     { headers => [['Connection', 'close']] },
     { framing => 'length', body => "fixed body\n", %closed }],
    ['HTTP/1.0: closed after the response', 'fixed', { proto => 'HTTP/1.0' },
     { framing => 'length', body => "fixed body\n", %closed }],
    ['HTTP/1.0 keep-alive with a Content-Length: kept', 'fixed',
     { proto => 'HTTP/1.0', headers => [['Connection', 'keep-alive']] },
     { framing => 'length', body => "fixed body\n", %alive,
       headers => { connection => qr/^keep-alive$/i } }],
    ['generator on HTTP/1.0: close-delimited', 'gen', { proto => 'HTTP/1.0' },
     { framing => 'close', body => "alpha\nbeta\ngamma\n", %closed,
       headers => { 'transfer-encoding' => undef } }],
    ['generator on HTTP/1.0 keep-alive: still close-delimited', 'gen',
     { proto => 'HTTP/1.0', headers => [['Connection', 'keep-alive']] },
     { framing => 'close', body => "alpha\nbeta\ngamma\n", %closed,
       headers => { 'transfer-encoding' => undef } }],
    ['Content-Length longer than the body (list): truncated, closed',
     'cl_short', {},
     { framing => 'length', body => '0123456789', complete => 0, %closed,
       headers => { 'content-length' => '100' },
       log => qr/PW0307: \/p3\/resp\/cl_short: application '[^']+' declared Content-Length 100 but sent 10 bytes; connection closed/ }],
    ['Content-Length longer than the body (generator): truncated, closed',
     'cl_short_gen', {},
     { framing => 'length', body => '0123456789', complete => 0, %closed,
       log => qr/PW0307: \/p3\/resp\/cl_short_gen: .*declared Content-Length 100 but sent 10 bytes/ }],
    ['Content-Length shorter than the body (list): cut, logged, kept alive',
     'cl_long', {},
     { framing => 'length', body => '01234', %alive,
       log => qr/PW0308: \/p3\/resp\/cl_long: application '[^']+' sent more than its Content-Length of 5 bytes; the rest is dropped/ }],
    ['Content-Length shorter than the body (generator): cut, logged',
     'cl_long_gen', {},
     { framing => 'length', body => '01234', %alive,
       log => qr/PW0308: \/p3\/resp\/cl_long_gen: .*Content-Length of 5 bytes/ }],
    ['204 carries no body', 'no_content', {},
     { status => 204, body => '', %alive,
       headers => { 'transfer-encoding' => undef, 'content-length' => undef } }],
    ['204 with a body from the app: body dropped', 'no_content_body', {},
     { status => 204, body => '', %alive,
       headers => { 'transfer-encoding' => undef } }],
    ['304 carries no body', 'not_modified', {},
     { status => 304, body => '', %alive, headers => { etag => '"pwtest"' } }],
    ['304 with a body from the app: body dropped', 'not_modified_body', {},
     { status => 304, body => '', %alive }],
    # Issue 12 item 8: a 304 may carry the representation's length (RFC
    # 9110 8.6); a 204's stray Content-Length is no reason to fail.
    ["304 with the representation's Content-Length: headers, no body",
     'not_modified_cl', {},
     { status => 304, body => '', %alive, headers => { etag => '"pwtest"' } }],
    ['204 with a Content-Length: no body, no failure', 'no_content_cl', {},
     { status => 204, body => '', %alive,
       headers => { 'transfer-encoding' => undef } }],
    ['the same Content-Length twice, streamed: sent once', 'cl_twice', {},
     { framing => 'length', body => '01234', %alive,
       headers => { 'content-length' => '5' } }],
    ['exception after the first chunk: no last chunk, closed',
     'fail_after_chunk', {},
     { framing => 'chunked', body => "first chunk\n", complete => 0, %closed,
       log => qr/PW0302: \/p3\/resp\/fail_after_chunk: .*RuntimeError: PWTEST failure after the first chunk/ }],
    ['exception after the first chunk with a Content-Length: truncated',
     'fail_after_chunk_cl', {},
     { framing => 'length', body => "first chunk\n", complete => 0, %closed,
       log => qr/PW0302: \/p3\/resp\/fail_after_chunk_cl: .*RuntimeError/ }],
    ['wsgi.file_wrapper, real file (FILE bucket)', 'file_plain', {},
     { body => $src, %alive, headers => { 'content-length' => length $src } }],
    ['wsgi.file_wrapper from the position tell() gives', 'file_offset', {},
     { body => substr($src, 100), %alive }],
    # PEP 3333: send no more than Content-Length (a way to send part of a
    # file, so not necessarily an app error: not required in the log).
    ['wsgi.file_wrapper, Content-Length smaller than the file: cut',
     'file_cl_small', {},
     { framing => 'length', body => substr($src, 0, 100), %alive }],
    ['wsgi.file_wrapper, Content-Length beyond the file: truncated, closed',
     'file_cl_big', {},
     { framing => 'length', body => $src, complete => 0, %closed,
       log => qr/PW0307: \/p3\/resp\/file_cl_big: .*declared Content-Length \d+ but sent \d+ bytes/ }],
    ['wsgi.file_wrapper over a BytesIO (no file): iterated', 'file_bytesio', {},
     { body => join('', map { sprintf "line %05d\n", $_ } 0 .. 4999), %alive }],
);

# HEAD: [case]. HEAD must bring the headers GET brings, with no body (the GET
# pipelined right behind it would not parse otherwise). Transfer-Encoding
# may go: RFC 9110 9.3.2 lets a server omit what only the content decides.
my @head_cases = qw(fixed listed gen big_list file_plain reason latin1_header);

# Chunked request bodies to the echo app (reads all, answers length and
# md5): [name, raw body after the headers, extra headers, expected status,
# expected length or undef]. A malformed body is a 400 and the connection is
# closed: the server cannot know where the next request would start.
my $data = join '', map { chr(($_ * 7) % 256) } 0 .. 99_999;
my @chunked_rows = (
    ['one-byte chunks', chunk_body('hello world', 1), 200, 11],
    ['4 KiB chunks of binary data', chunk_body($data, 4096), 200, length $data],
    ['chunk extensions and a trailer',
     "3;ext=1;q=\"x\"\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", 200, 3],
    ['upper-case hex and leading zeros', "00A\r\n0123456789\r\n0\r\n\r\n", 200, 10],
    ['empty chunked body', "0\r\n\r\n", 200, 0],
    ['chunk size not hex', "zz\r\nabc\r\n0\r\n\r\n", 400, undef],
    ['negative chunk size', "-3\r\nabc\r\n0\r\n\r\n", 400, undef],
    ['chunk data longer than its size', "3\r\nabcX\r\n0\r\n\r\n", 400, undef],
    ['chunk size that overflows', "ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
     413, undef],
    ['body cut off by the client (half close)', "a\r\n01234", 400, undef],
);

# Chunked request bodies as apps see them (issue 11 item 1): [name, mount,
# case, body size, chunk size, expected environ: CONTENT_LENGTH defined,
# HTTP_TRANSFER_ENCODING passed, a temporary file held]. /p3/spool buffers
# 64 KiB in memory and spools the rest to /var/tmp; /p3/chunk-stream
# streams (PyWSGIChunkedRequest Stream).
my @spool_rows = (
    ['an app that de-chunks when it sees Transfer-Encoding', '/p3/resp',
     'dechunk_self', 100_000, 4096, {}],
    ['an app that reads exactly CONTENT_LENGTH', '/p3/resp', 'cl_reader',
     100_000, 4096, {}],
    ['an app that reads exactly CONTENT_LENGTH, body spooled to a file',
     '/p3/spool', 'cl_reader', 3_000_000, 65536, {}],
    ['in memory: CONTENT_LENGTH, no Transfer-Encoding, no file', '/p3/spool',
     'spool_probe', 60_000, 1000,
     { cl => 1, te => 0, held => 0 }],
    ['beyond the bound: an unlinked file in PyWSGIRequestBodyTempDir',
     '/p3/spool', 'spool_probe', 3_000_000, 65536,
     { cl => 1, te => 0, held => 1 }],
    ['PyWSGIChunkedRequest Stream: as it arrives', '/p3/chunk-stream',
     'spool_probe', 3_000_000, 65536, { cl => 0, te => 1, held => 0 }],
);

my @limit_rows = (
    # [name, body, chunk size (0: Content-Length), status, app runs]
    ['Content-Length 50: within the limit', 'y' x 50, 0, 200, 1],
    ['Content-Length 1000: 413 before the app runs', 'y' x 1000, 0, 413, 0],
    ['chunked 50: within the limit', 'y' x 50, 10, 200, 1],
    # Issue 11: a chunked body is read before the app runs, so its limit is
    # enforced before the app too (the app read past 100 and saw 413 before).
    ['chunked 1000: 413 before the app runs', 'y' x 1000, 100, 413, 0],
);

# close() of the returned iterable: [case, what the client does, qr// for
# the items produced before close()]
my @close_rows = (
    ['close_normal', 'read all', qr/^3$/],
    ['close_exception', 'read all', qr/^2$/],
    ['close_exception_first', 'read all', qr/^0$/],
    ['close_str_item', 'read all', qr/^\d$/],
    # Issue 12 item 3: the first item completes Content-Length: no further
    # item is asked for (PEP 3333 "stop iterating").
    ['cl_stop_gen', 'read all', qr/^1$/],
    ['close_disconnect', 'leave after 64 KiB', qr/^([0-9]|[1-9][0-9]|[12][0-9][0-9]|3[0-8][0-9])$/],
);

plan tests => @framing_rows + @head_cases + 1 + 3 + @chunked_rows + 4
            + @limit_rows + 2 + @close_rows + 1 + 2 + 2 + @spool_rows + 3;

# ---------------------------------------------------------------------------
for my $row (@framing_rows) {
    my ($name, $case, $req, $want) = @$row;
    subtest "framing: $name" => sub {
        my $offset = log_offset();
        my $c = PWRaw->new or return fail("connect: $!");
        $c->send(request_text('GET', "/p3/resp/$case", $req->{headers}, undef,
                              proto => $req->{proto}));
        my $res = $c->response;
        is($res->{status}, $want->{status} || 200, 'status')
            or diag(show($res));
        is($res->{framing}, $want->{framing}, "framing: $want->{framing}")
            if $want->{framing};
        ok($res->{body} eq $want->{body}, 'body')
            or diag('got ' . length($res->{body}) . ' bytes: '
                    . substr($res->{body}, 0, 100));
        my $complete = exists $want->{complete} ? $want->{complete} : 1;
        is($res->{complete}, $complete,
           $complete ? 'complete' : 'incomplete (the client can tell)');
        for my $h (sort keys %{ $want->{headers} || {} }) {
            my $exp = $want->{headers}{$h};
            if (!defined $exp) {
                ok(!exists $res->{headers}{$h}, "no $h header")
                    or diag("$h: $res->{headers}{$h}");
            }
            elsif (ref $exp) {
                like($res->{headers}{$h} // '', $exp, "header $h");
            }
            else {
                is($res->{headers}{$h}, $exp, "header $h");
            }
        }
        if ($want->{after} eq 'closed') {
            ok($c->closed_within(3), 'server closed the connection');
        }
        else {
            is($c->leftover, '', 'no stray bytes after the response');
            ok(still_alive($c), 'connection kept alive: a second request works');
        }
        if ($want->{log}) {
            like(wait_for_log($offset, $want->{log}), $want->{log}, 'error log');
        }
    };
}

# ---------------------------------------------------------------------------
for my $case (@head_cases) {
    subtest "HEAD /p3/resp/$case: GET's headers, no body" => sub {
        my $c = PWRaw->new or return fail("connect: $!");
        $c->send(request_text('HEAD', "/p3/resp/$case", [])
               . request_text('GET', "/p3/resp/$case", []));
        my $head = $c->response(method => 'HEAD');
        my $get = $c->response;
        is($head->{status}, $get->{status}, 'same status');
        ok($get->{status} >= 200 && $get->{complete},
           'the GET behind the HEAD parses: HEAD sent no body')
            or diag(show($get));
        my %skip = map { $_ => 1 } qw(date connection keep-alive transfer-encoding);
        my %h = map { $_ => $head->{headers}{$_} }
                grep { !$skip{$_} } keys %{ $head->{headers} };
        my %g = map { $_ => $get->{headers}{$_} }
                grep { !$skip{$_} } keys %{ $get->{headers} };
        is_deeply(\%h, \%g, 'same headers (Content-Length included)')
            or diag("HEAD:\n$head->{head}GET:\n$get->{head}");
        is($c->leftover, '', 'nothing after the GET response');
    };
}

subtest 'close() is called for HEAD too, and exactly once' => sub {
    my $id = "$run.head";
    my $offset = log_offset();
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('HEAD', "/p3/resp/close_head?id=$id", []));
    my $res = $c->response(method => 'HEAD');
    is($res->{status}, 200, 'status');
    my $re = qr/PWTEST-close case=close_head \S+ id=\Q$id\E/;
    my $log = wait_for_log($offset, $re);
    sleep 0.3;
    $log = log_since($offset);
    is(scalar(() = $log =~ /$re/g), 1, 'close() logged once');
};

# ---------------------------------------------------------------------------
subtest 'pipelining: four requests in one write, four responses in order' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('GET', '/p3/resp/fixed', [])
           . request_text('GET', '/p3/resp/gen', [])
           . request_text('POST', "/p3/resp/echo?id=$run.pipe", [], 'x' x 1000)
           . request_text('GET', '/p3/resp/listed', [['Connection', 'close']]));
    my @res = map { $c->response } 1 .. 4;
    is_deeply([map { $_->{status} } @res], [200, 200, 200, 200], 'statuses');
    is($res[0]{body}, "fixed body\n", '1: fixed');
    is($res[1]{body}, "alpha\nbeta\ngamma\n", '2: generator, chunked');
    is($res[1]{framing}, 'chunked', '2: chunked framing');
    my $echo = decode_json_body($res[2]{body}) || {};
    is($echo->{length}, 1000, '3: POST body read');
    is($res[3]{body}, "one\ntwo\nthree\n", '4: list');
    ok($c->closed_within(3), 'closed after the Connection: close request');
};

subtest 'pipelining on HTTP/1.0 keep-alive' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    my @ka = (['Connection', 'keep-alive']);
    $c->send(request_text('GET', '/p3/resp/fixed', \@ka, undef, proto => 'HTTP/1.0')
           . request_text('GET', '/p3/resp/listed', \@ka, undef, proto => 'HTTP/1.0')
           . request_text('GET', '/p3/resp/fixed', [], undef, proto => 'HTTP/1.0'));
    my @res = map { $c->response } 1 .. 3;
    is_deeply([map { $_->{body} } @res],
              ["fixed body\n", "one\ntwo\nthree\n", "fixed body\n"],
              'three responses in order');
    is($res[0]{proto}, 'HTTP/1.1', 'httpd answers as HTTP/1.1');
    ok($c->closed_within(3), 'closed after the request without keep-alive');
};

subtest 'keep-alive across many requests on one connection' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    my $ok = 0;
    for my $i (1 .. 20) {
        my $case = (qw(fixed gen listed))[$i % 3];
        $c->send(request_text('GET', "/p3/resp/$case", [])) or last;
        my $res = $c->response;
        $ok++ if $res->{status} == 200 && $res->{complete};
    }
    is($ok, 20, '20 requests answered on one connection');
};

# ---------------------------------------------------------------------------
for my $row (@chunked_rows) {
    my ($name, $raw, $status, $length) = @$row;
    subtest "chunked request body: $name -> $status" => sub {
        my $offset = log_offset();
        my $c = PWRaw->new or return fail("connect: $!");
        my $head = request_text('POST', "/p3/resp/echo?id=$run.chunked", [
            ['Transfer-Encoding', 'chunked'],
            ['Content-Type', 'application/octet-stream']]);
        if ($name =~ /half close/) {
            $c->send($head . $raw);
            shutdown($c->{sock}, 1);
        }
        else {
            # A valid request behind it: answered only if the body was.
            $c->send($head . $raw . request_text('GET', '/p3/resp/fixed', []));
        }
        my $res = $c->response;
        is($res->{status}, $status, 'status') or diag(show($res));
        if ($status == 200) {
            my $echo = decode_json_body($res->{body}) || {};
            is($echo->{length}, $length, 'body length read by the app');
            is($echo->{content_length}, $length,
               'CONTENT_LENGTH: the size of the de-chunked body');
            is($echo->{md5}, md5_hex(substr($data, 0, $length)),
               'body md5') if $name =~ /binary/;
            my $next = $c->response;
            is($next->{body}, "fixed body\n", 'the request behind it is answered');
            return;
        }
        like($res->{headers}{connection} // '', qr/close/i,
             'Connection: close');
        ok($c->closed_within(3), 'connection closed');
        my $log = wait_for_log($offset, qr/PW0311:/);
        like($log, qr/PW0311: \/p3\/resp\/echo: reading the request body failed \(HTTP $status\)/,
             "PW0311 names the status ($status)");
    };
}

# ---------------------------------------------------------------------------
subtest 'Expect: 100-continue: 100 when the app reads, then the response' => sub {
    my $id = "$run.expect";
    my $offset = log_offset();
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('POST', "/p3/resp/echo?id=$id",
                          [['Expect', '100-continue'],
                           ['Content-Length', 11]]));
    my $interim = $c->response(keep_1xx => 1);
    is($interim->{status}, 100, 'HTTP/1.1 100 Continue before any body was sent')
        or diag(show($interim));
    like(log_since($offset), qr/PWTEST-echo-called id=\Q$id\E/,
         'the app was already running (reading) when 100 came');
    $c->send('hello world');
    my $res = $c->response;
    is($res->{status}, 200, 'final status');
    is((decode_json_body($res->{body}) || {})->{length}, 11, 'body read');
};

# Issue 12 item 8: the app's status stays off request_rec until the headers
# go out, or HTTP_IN would skip the 100 and hand the app an empty body.
subtest 'Expect: 100-continue and start_response(303) before reading: body read' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('POST', "/p3/resp/early_303?id=$run.e303",
                          [['Expect', '100-continue'],
                           ['Content-Length', 11]]));
    my $res = $c->response(keep_1xx => 1);
    is($res->{status}, 100, '100 Continue first') or diag(show($res));
    if ($res->{status} == 100) {
        $c->send('hello world');
        $res = $c->response;
    }
    is($res->{status}, 303, 'the final status is the app\'s 303');
    is((decode_json_body($res->{body}) || {})->{length}, 11,
       'the app read the 11-byte body');
};

subtest 'Expect: 100-continue and an app that never reads: no 100' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('POST', "/p3/resp/noread?id=$run.noread",
                          [['Expect', '100-continue'], ['Content-Length', 11]]));
    my $res = $c->response(keep_1xx => 1);
    is($res->{status}, 200, 'the final response comes first');
    is($res->{body}, "did not read the body\n", 'body');
};

subtest 'Expect: 100-continue beyond LimitRequestBody: 413, no 100, app not run' => sub {
    my $id = "$run.expect413";
    my $offset = log_offset();
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('POST', "/p3/limit/echo?id=$id",
                          [['Expect', '100-continue'], ['Content-Length', 1000]]));
    my $res = $c->response(keep_1xx => 1);
    is($res->{status}, 413, '413 straight away');
    sleep 0.2;
    unlike(log_since($offset), qr/PWTEST-echo-called id=\Q$id\E/, 'app not run');
};

# ---------------------------------------------------------------------------
# LimitRequestBody 100 on /p3/limit.
for my $row (@limit_rows) {
    my ($name, $body, $chunked, $status, $runs) = @$row;
    subtest "LimitRequestBody: $name" => sub {
        my $id = "$run.limit." . length($body) . ".$chunked";
        my $offset = log_offset();
        my $c = PWRaw->new or return fail("connect: $!");
        my @h = $chunked ? (['Transfer-Encoding', 'chunked']) : ();
        $c->send(request_text('POST', "/p3/limit/echo?id=$id", \@h,
                              $chunked ? chunk_body($body, $chunked) : $body));
        my $res = $c->response;
        is($res->{status}, $status, 'status') or diag(show($res));
        if ($status == 200) {
            is((decode_json_body($res->{body}) || {})->{length}, length $body,
               'body read');
        }
        else {
            ok($c->closed_within(3), 'connection closed');
        }
        my $called = qr/PWTEST-echo-called id=\Q$id\E/;
        my $log = $runs ? wait_for_log($offset, $called) : do { sleep 0.2; log_since($offset) };
        is(scalar(() = $log =~ /$called/g), $runs,
           $runs ? 'the app ran' : 'the app did not run');
    };
}

# ---------------------------------------------------------------------------
subtest 'streaming: the first chunk arrives before the last is made' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    my $t0 = time;
    $c->send(request_text('GET', '/p3/resp/stream?sleep=0.5', []));
    my $res = $c->response;
    is($res->{status}, 200, 'status');
    is(scalar @{ $res->{chunks} }, 3, 'three chunks') or return;
    my ($first_at) = $res->{chunks}[0][1];
    my ($last_made) = $res->{chunks}[2][0] =~ /made ([\d.]+)/;
    ok(defined $last_made && $first_at < $last_made,
       sprintf('chunk 0 arrived %.2f s before chunk 2 was made',
               ($last_made // 0) - $first_at));
    ok($res->{chunks}[2][1] - $t0 >= 0.9, 'the whole response took the sleeps');
};

subtest 'streaming with write(): each write() goes out at once' => sub {
    # writer: write, write, return [..]: three pieces, chunked.
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('GET', '/p3/resp/writer', []));
    my $res = $c->response;
    is($res->{framing}, 'chunked', 'chunked');
    is($res->{body}, "one two three\n", 'body');
};

# ---------------------------------------------------------------------------
# close() of the returned iterable: exactly once, whatever happened.
for my $row (@close_rows) {
    my ($case, $client, $produced) = @$row;
    subtest "close() once: $case ($client)" => sub {
        my $id = "$run.$case";
        my $offset = log_offset();
        my $c = PWRaw->new or return fail("connect: $!");
        $c->send(request_text('GET', "/p3/resp/$case?id=$id", []));
        if ($case eq 'close_disconnect') {
            $c->_fill while length($c->leftover) < 65536 && !$c->{eof};
            ok(length($c->leftover) >= 65536, 'got the first 64 KiB');
            $c->close;
        }
        else {
            my $res = $c->response;
            ok($res->{status}, "response $res->{status}");
        }
        my $re = qr/PWTEST-close case=\Q$case\E produced=(\d+) id=\Q$id\E/;
        wait_for_log($offset, $re, 8);
        sleep 0.3;
        my $log = log_since($offset);
        my @n = $log =~ /$re/g;
        is(scalar @n, 1, 'close() called exactly once') or diag($log);
        like($n[0] // '', $produced, 'items produced before close(): ' . ($n[0] // '?'));
        if ($case eq 'close_disconnect') {
            like($log, qr/PW0310: \/p3\/resp\/close_disconnect: client closed the connection/,
                 'PW0310: the client went away (info)');
            unlike($log, qr/\[pywsgi:error\].*PW\d{4}: \/p3\/resp\/close_disconnect/,
                   'not logged as a server error');
        }
    };
}

subtest 'wsgi.file_wrapper: the file is closed exactly once' => sub {
    my $id = "$run.file";
    my $offset = log_offset();
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('GET', "/p3/resp/file_plain?id=$id", []));
    my $res = $c->response;
    ok($res->{body} eq $src, 'file content');
    my $re = qr/PWTEST-file-close id=\Q$id\E/;
    wait_for_log($offset, $re);
    sleep 0.3;
    is(scalar(() = log_since($offset) =~ /$re/g), 1, 'filelike.close() once');
};

# ---------------------------------------------------------------------------
# Issue 12 item 10: the GIL is released while Apache writes.
subtest 'a list emptied by another thread while it is sent: no crash' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('GET', "/p3/resp/list_mutated", []));
    sleep 1;    # the server blocks in its write; the app's thread clears
    my $res = $c->response;
    is($res->{status}, 200, 'status') or diag(show($res));
    ok($res->{complete}, 'a complete response');
    my $body = $res->{body} // '';
    my $want = join '', map { chr(65 + $_) x 1048576 } 0 .. 23;
    ok(length($body) > 0 && $body eq substr($want, 0, length $body),
       'the body is a prefix of the items as they were: '
       . length($body) . ' bytes');
    my $c2 = PWRaw->new or return fail("connect: $!");
    $c2->send(request_text('GET', '/p3/resp/fixed', []));
    is($c2->response->{body}, "fixed body\n", 'the server still answers');
};

subtest 'write() from two threads of one request at once: RuntimeError' => sub {
    my $id = "$run.twowriters";
    my $offset = log_offset();
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('GET', "/p3/resp/write_two_threads?id=$id", []));
    sleep 0.5;  # both writers block on the full socket
    my $res = $c->response;
    is($res->{status}, 200, 'status') or diag(show($res));
    my $re = qr/PWTEST-two-writers (.*) id=\Q$id\E/;
    my ($line) = wait_for_log($offset, $re, 20) =~ $re;
    like($line // '', qr/RuntimeError: write\(\) called from two threads at once/,
         'one writer got RuntimeError');
    my $body = $res->{body} // '';
    my @bad = grep { !/^(?:a+|b+)$/ } unpack '(a1048576)*', $body;
    ok(length($body) % 1048576 == 0 && !@bad,
       'the body is whole writes, never interleaved: ' . length($body)
       . ' bytes');
};

# ---------------------------------------------------------------------------
# Issue 12 item 4: wsgi.file_wrapper and descriptors, sendfile, mmap.
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF pack_sockaddr_in
              inet_aton);

my $big_name = "pw-big-$$.bin";
my $big_path = "$top/t/logs/$big_name";
my $big_size = 20 * 1048576;
{
    open my $fh, '>', $big_path or die "$big_path: $!";
    binmode $fh;
    my $block = join '', map { chr(($_ * 13) % 256) } 0 .. 65535;
    print $fh $block for 1 .. $big_size / 65536;
    close $fh;
    chmod 0644, $big_path;
}
END { unlink $big_path if $big_path }

# The pids of httpd's children (the parent's pid from t/logs/httpd.pid).
sub child_pids {
    open my $fh, '<', "$top/t/logs/httpd.pid" or return ();
    chomp(my $parent = <$fh> // '');
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $s, '<', $stat or next;
        my $line = <$s> // next;
        my ($pid, $ppid) = $line =~ /^(\d+) \(.*\) \S+ (\d+)/ or next;
        push @kids, $pid if $ppid == $parent;
    }
    return @kids;
}

sub fd_count {
    my $n = 0;
    for my $pid (@_) {
        opendir my $d, "/proc/$pid/fd" or next;
        $n += grep { /^\d+$/ } readdir $d;
    }
    return $n;
}

# A client with a 4 KiB receive buffer that sends its request and reads
# nothing yet: the server's last write of the response has to wait.
sub slow_client {
    my ($path) = @_;
    socket(my $s, PF_INET, SOCK_STREAM, 0) or return;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    connect($s, pack_sockaddr_in(Apache::Test::vars('port'),
                                 inet_aton('127.0.0.1'))) or return;
    binmode $s;
    syswrite($s, "GET $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return $s;
}

# Reads every socket to its end (deadline 60 s); returns the byte counts.
sub drain {
    my @socks = @_;
    my %left = map { fileno($_) => $_ } @socks;
    my %got = map { fileno($_) => 0 } @socks;
    my $sel = IO::Select->new(@socks);
    my $deadline = time + 60;
    while (%left && time < $deadline) {
        for my $s ($sel->can_read(1)) {
            my $n = sysread($s, my $buf, 262144);
            if (!$n) {
                $sel->remove($s);
                delete $left{fileno $s};
                next;
            }
            $got{fileno $s} += $n;
        }
    }
    my @n = map { $got{fileno $_} } @socks;
    close $_ for @socks;
    return @n;
}

subtest 'wsgi.file_wrapper: 100 slow downloads of 20 MiB leak no descriptor' => sub {
    my $path = "/p3/resp/file_big?name=$big_name";
    drain(map { slow_client($path) } 1 .. 4);    # warm every path up
    sleep 0.5;
    my @kids = child_pids();
    ok(@kids, 'children found: ' . scalar @kids) or return;
    my %before = map { $_ => fd_count($_) } @kids;
    # Under prefork, fewer at once than it keeps idle children (4): more
    # would make it start children and then stop the spare ones, and the
    # children measured would be gone.
    my $at_once = PWTest::is_threaded_mpm() ? 10 : 3;
    my ($ok, $done) = (0, 0);
    while ($done < 100) {
        my @socks = grep { defined } map { slow_client($path) } 1 .. $at_once;
        sleep 0.3;    # the handler returns with most of the file unsent
        for my $n (drain(@socks)) {
            $done++;
            $ok++ if $n > $big_size;
        }
    }
    is($ok, $done, "$done downloads complete");
    sleep 1;
    my @still = grep { -d "/proc/$_" } @kids;
    ok(scalar @still, scalar(@still) . ' of ' . scalar(@kids)
                      . ' children are still there (prefork may stop a spare one)');
    my $before = 0;
    $before += $before{$_} for @still;
    my $after = fd_count(@still);
    ok(@still && $after - $before <= 5,
       "descriptors of the children: $before before, $after after");
};

# strace -f on every child counts sendfile() calls while 3 downloads run.
sub sendfile_calls {
    my ($mount) = @_;
    my @kids = child_pids();
    my $out = "$top/t/logs/strace-$$.out";
    unlink $out;
    my $pid = fork // return -1;
    if (!$pid) {
        open STDERR, '>', '/dev/null';
        exec '/usr/bin/strace', '-f', '-qq', '-e', 'trace=sendfile',
            '-o', $out, map { ('-p', $_) } @kids;
        exit 127;
    }
    sleep 1.5;    # attached
    my @n = drain(map { slow_client("$mount/file_big?name=$big_name") } 1 .. 3);
    sleep 0.5;
    kill 'INT', $pid;
    waitpid $pid, 0;
    open my $fh, '<', $out or return -1;
    my $calls = grep { /\bsendfile(?:64)?\(/ } <$fh>;
    unlink $out;
    return (scalar(grep { $_ > $big_size } @n) == 3) ? $calls : -1;
}

subtest 'wsgi.file_wrapper: sendfile with EnableSendfile On, not Off' => sub {
    my $on = sendfile_calls('/p3/sendfile-on');
    ok($on > 0, "EnableSendfile On: $on sendfile() calls");
    my $off = sendfile_calls('/p3/sendfile-off');
    is($off, 0, 'EnableSendfile Off: no sendfile() (downloads complete)');
};

# ---------------------------------------------------------------------------
# Issue 11 item 1: chunked request bodies.
my $spool_data = join '', map { chr(($_ * 31 + 7) % 256) } 0 .. 65535;
sub spool_body {
    my $n = shift;
    my $d = $spool_data x (int($n / 65536) + 1);
    return substr($d, 0, $n);
}

for my $row (@spool_rows) {
    my ($name, $mount, $case, $size, $chunk, $want) = @$row;
    subtest "chunked request body: $name" => sub {
        my $body = spool_body($size);
        my $c = PWRaw->new or return fail("connect: $!");
        $c->send(request_text('POST', "$mount/$case?dir=/var/tmp",
                              [['Transfer-Encoding', 'chunked']],
                              chunk_body($body, $chunk)));
        my $res = $c->response;
        is($res->{status}, 200, 'status') or return diag(show($res));
        my $got = decode_json_body($res->{body}) || {};
        is($got->{length}, $size, 'the whole body reached the app');
        is($got->{md5}, md5_hex($body), 'body md5');
        return unless %$want;
        is(defined $got->{content_length} ? 1 : 0, $want->{cl},
           'CONTENT_LENGTH ' . ($want->{cl} ? 'set' : 'absent'));
        is($got->{content_length}, $size, 'CONTENT_LENGTH is the size')
            if $want->{cl};
        is(defined $got->{transfer_encoding} ? 1 : 0, $want->{te},
           'HTTP_TRANSFER_ENCODING ' . ($want->{te} ? 'passed' : 'not passed'));
        ok($got->{input_terminated}, 'wsgi.input_terminated');
        is(scalar @{ $got->{held} || [] }, $want->{held},
           $want->{held} ? 'the app\'s process holds one body file'
                         : 'no body file') or diag("@{ $got->{held} || [] }");
        like($_, qr{^/var/tmp/pywsgi-body\S* \(deleted\)$},
             "$_: in the directory configured, unlinked")
            for @{ $got->{held} || [] };
        is_deeply($got->{in_dir}, [], 'no body file in the directory while the app runs');
    };
}

subtest 'chunked request body: a temporary directory User cannot write to' => sub {
    my $id = "$run.spoolro";
    my $offset = log_offset();
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('POST', "/p3/spool-ro/echo?id=$id",
                          [['Transfer-Encoding', 'chunked']],
                          chunk_body(spool_body(5000), 1000)));
    my $res = $c->response;
    is($res->{status}, 500, '500') or diag(show($res));
    my $log = wait_for_log($offset, qr/PW0315:/);
    like($log, qr/\[pywsgi:error\].*PW0315: \/p3\/spool-ro\/echo: cannot create a temporary file for the chunked request body in \/usr\/share: give PyWSGIRequestBodyTempDir a directory User can write to/,
         'PW0315 names the directory and the directive');
    unlike($log, qr/PWTEST-echo-called id=\Q$id\E/, 'the app did not run');
};

subtest 'chunked request body: no body file left behind' => sub {
    opendir my $d, '/var/tmp' or return fail("/var/tmp: $!");
    my @left = grep { /^pywsgi-body/ } readdir $d;
    is_deeply(\@left, [], 'no pywsgi-body file in /var/tmp');
    opendir $d, '/tmp' or return fail("/tmp: $!");
    @left = grep { /^pywsgi-body/ } readdir $d;
    is_deeply(\@left, [], 'none in /tmp');
};

# 200 MiB, chunked, on the connection of a first small request (so the
# same child serves both); the child's peak RSS is reset in between
# (clear_refs 5) and read by the app at its end.
subtest 'chunked request body of 200 MiB: the child\'s memory stays bounded' => sub {
    my $c = PWRaw->new or return fail("connect: $!");
    $c->send(request_text('POST', '/p3/resp/spool_probe',
                          [['Transfer-Encoding', 'chunked']],
                          chunk_body('hello', 5)));
    my $first = decode_json_body($c->response->{body}) || {};
    my $pid = $first->{pid} or return fail('no pid from the first request');
    open my $cr, '>', "/proc/$pid/clear_refs" or return fail("clear_refs: $!");
    print $cr "5\n";
    close $cr;
    my $rss0 = $first->{after}{VmRSS};
    $c->send(request_text('POST', '/p3/resp/spool_probe',
                          [['Transfer-Encoding', 'chunked']])) or return fail('send');
    my $chunk = sprintf("%x\r\n", 65536) . ($spool_data) . "\r\n";
    my $sent = 0;
    for (1 .. 3200) {
        $c->send($chunk) or return fail('send: ' . ($c->{error} // '?'));
        $sent += 65536;
    }
    $c->send("0\r\n\r\n");
    my $res = $c->response;
    is($res->{status}, 200, 'status') or return diag(show($res));
    my $got = decode_json_body($res->{body}) || {};
    is($got->{pid}, $pid, 'the same child served both');
    is($got->{length}, 200 * 1048576, '200 MiB read by the app');
    is($got->{content_length}, 200 * 1048576, 'CONTENT_LENGTH');
    my $growth = ($got->{after}{VmHWM} // 0) - ($rss0 // 0);
    my $most = 1048576 + 8 * 1048576;
    ok($growth <= $most,
       sprintf('peak RSS grew %.1f MiB (at most %.1f: the 1 MiB bound + 8)',
               $growth / 1048576, $most / 1048576));
    diag(sprintf('RSS before %.1f MiB, peak during %.1f MiB',
                 ($rss0 // 0) / 1048576, ($got->{after}{VmHWM} // 0) / 1048576));
};
