# PEP 3333 through real HTTP into the real httpd (issue 3): the environ an
# app gets, wsgi.input operation by operation, start_response (exc_info,
# write()), a table of bad app behaviour (status and the one error-log line
# for each), Python's logging and print() in the error log, and every
# working app of the suite again inside wsgiref.validate.validator.
#
# Apps: t/apps/p3_{input,response,bad,log}.py, t/lib/pwtest/envdump.py and
# validated.py; mounts: t/conf/pep3333.conf.in (all under /p3/). Requests go
# over raw sockets (t/perl/PWRaw.pm) so the test knows its client port and
# sees the bytes as sent; every wait has a deadline.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use JSON::PP ();
use LWP::UserAgent ();
use Time::HiRes qw(time);
use PWTest qw(decode_json_body log_offset log_since wait_for_log venv_cannot_import);
use PWRaw qw(request_text chunk_body);

my $top  = Apache::Test::vars('top_dir');
my $port = Apache::Test::vars('port');
my $run  = "$$." . int(time);    # ids in log markers are unique per run

# One request on a fresh connection (kept alive: a server that read past
# the body would hang here until the deadline). fetch(method, path,
# headers => [[n, v]], body, chunked => chunk size, proto, host).
sub fetch {
    my (%a) = @_;
    my $c = PWRaw->new or return { status => 0, error => "connect: $!" };
    my @h = @{ $a{headers} || [] };
    my $body = $a{body};
    if (defined $body && $a{chunked}) {
        push @h, ['Transfer-Encoding', 'chunked'];
        $body = chunk_body($body, $a{chunked});
    }
    my $t0 = time;
    $c->send(request_text($a{method} || 'GET', $a{path}, \@h, $body,
                          proto => $a{proto}, host => $a{host}));
    my $res = $c->response(method => $a{method});
    $res->{elapsed} = time - $t0;
    $res->{local_port} = $c->local_port;
    $c->close;
    return $res;
}

sub show_res {
    my $res = shift;
    return "status $res->{status}, error " . ($res->{error} // 'none')
         . ", head:\n" . ($res->{head} // '') . "body: "
         . substr($res->{body} // '', 0, 300);
}

# Nothing of Python's or of the checkout may reach a client.
my $leak = qr/Traceback|File "|\.py\b|PWTEST|PW\d{4}|\Q$top\E/;

# ---------------------------------------------------------------------------
# environ. Expected values: a string must be equal, undef means absent, a
# code ref gets (value, response) and returns true when right.
my $auth = 'Basic dXNlcjpwYXNz';
my $is_local_port = sub { defined $_[0] && $_[0] eq $_[1]{local_port} };
my $empty_or_absent = sub { !defined $_[0] || $_[0] eq '' };

my @env_rows = (
    { name => 'PATH_INFO percent-decoded, REQUEST_URI raw',
      path => '/p3/env/caf%C3%A9/a%20b%2Bc%3Fd',
      env  => { SCRIPT_NAME => '/p3/env',
                PATH_INFO => "/caf\x{c3}\x{a9}/a b+c?d",
                REQUEST_URI => '/p3/env/caf%C3%A9/a%20b%2Bc%3Fd',
                QUERY_STRING => '' } },
    { name => 'raw UTF-8 in the path arrives as latin-1 decoded bytes',
      path => "/p3/env/caf\xc3\xa9?q=\xc3\xa9",
      env  => { PATH_INFO => "/caf\x{c3}\x{a9}",
                REQUEST_URI => "/p3/env/caf\x{c3}\x{a9}?q=\x{c3}\x{a9}",
                QUERY_STRING => "q=\x{c3}\x{a9}" } },
    { name => 'dot segments resolved in PATH_INFO, not in REQUEST_URI',
      path => '/p3/env/a/./b/../c',
      env  => { PATH_INFO => '/a/c', REQUEST_URI => '/p3/env/a/./b/../c' } },
    { name => 'QUERY_STRING is not decoded',
      path => '/p3/env/q?a=%20&b=caf%C3%A9&c&d=1+2',
      env  => { PATH_INFO => '/q', QUERY_STRING => 'a=%20&b=caf%C3%A9&c&d=1+2' } },
    { name => 'the mount point itself: SCRIPT_NAME is the mount, PATH_INFO empty',
      path => '/p3/env',
      env  => { SCRIPT_NAME => '/p3/env', PATH_INFO => $empty_or_absent } },
    { name => 'repeated request headers joined with ", "',
      path => '/p3/env/h',
      headers => [['X-Multi', 'a'], ['X-Multi', 'b'], ['X-Multi', 'c d']],
      env  => { HTTP_X_MULTI => 'a, b, c d' } },
    { name => 'a header httpd holds twice (RequestHeader add) is joined too',
      path => '/p3/env/dup', headers => [['X-Dup', 'first']],
      env  => { HTTP_X_DUP => 'first, second' } },
    { name => 'header names with "_" or "." are not passed (no spoofing)',
      path => '/p3/env/h',
      headers => [['X-Real', 'real'], ['X_Real', 'spoof'], ['X_Foo', '1'],
                  ['Content_Length', '5'], ['Content_Type', 'text/evil'],
                  ['X.Dot', '1']],
      env  => { HTTP_X_REAL => 'real', HTTP_X_FOO => undef,
                CONTENT_LENGTH => undef, CONTENT_TYPE => undef,
                HTTP_CONTENT_LENGTH => undef, HTTP_CONTENT_TYPE => undef,
                HTTP_X_DOT => undef, 'HTTP_X.DOT' => undef } },
    { name => 'X_Real alone does not become HTTP_X_REAL',
      path => '/p3/env/h', headers => [['X_Real', 'spoof']],
      env  => { HTTP_X_REAL => undef } },
    { name => 'empty and lower-case headers; latin-1 value',
      path => '/p3/env/h',
      headers => [['X-Empty', ''], ['x-lower-case', 'v'],
                  ['X-Latin', "caf\xe9"]],
      env  => { HTTP_X_EMPTY => '', HTTP_X_LOWER_CASE => 'v',
                HTTP_X_LATIN => "caf\x{e9}" } },
    { name => 'a long header value arrives whole',
      path => '/p3/env/h', headers => [['X-Long', 'v' x 7000]],
      env  => { HTTP_X_LONG => 'v' x 7000 } },
    { name => 'no HTTP_PROXY (httpoxy), no Authorization by default',
      path => '/p3/env/h',
      headers => [['Proxy', 'http://evil.example/'], ['Authorization', $auth]],
      env  => { HTTP_PROXY => undef, HTTP_AUTHORIZATION => undef } },
    { name => 'Authorization with PyWSGIPassAuthorization On',
      path => '/p3/env-auth/x',
      headers => [['Authorization', $auth], ['Proxy', 'http://evil.example/']],
      env  => { SCRIPT_NAME => '/p3/env-auth', HTTP_AUTHORIZATION => $auth,
                HTTP_PROXY => undef } },
    { name => 'PyWSGIPassAuthorization Off in a nested <Location>',
      path => '/p3/env-auth/off', headers => [['Authorization', $auth]],
      env  => { HTTP_AUTHORIZATION => undef } },
    { name => 'POST: CONTENT_TYPE and CONTENT_LENGTH, never HTTP_CONTENT_*',
      method => 'POST', path => '/p3/env/post',
      headers => [['Content-Type', 'application/x-www-form-urlencoded']],
      body => 'a=1&b=2',
      env  => { REQUEST_METHOD => 'POST',
                CONTENT_TYPE => 'application/x-www-form-urlencoded',
                CONTENT_LENGTH => '7', HTTP_CONTENT_TYPE => undef,
                HTTP_CONTENT_LENGTH => undef } },
    { name => 'REMOTE_ADDR and REMOTE_PORT are the client socket',
      path => '/p3/env/remote',
      env  => { REMOTE_ADDR => '127.0.0.1', REMOTE_PORT => $is_local_port } },
    { name => 'SERVER_NAME and SERVER_PORT from Host: localhost:PORT',
      path => '/p3/env/s', host => 0, headers => [['Host', "localhost:$port"]],
      env  => { SERVER_NAME => 'localhost', SERVER_PORT => "$port",
                HTTP_HOST => "localhost:$port" } },
    { name => 'SERVER_NAME from a Host without a port',
      path => '/p3/env/s', host => 0, headers => [['Host', 'example.test']],
      env  => { SERVER_NAME => 'example.test', SERVER_PORT => "$port" } },
    { name => 'HTTP/1.0 without Host: the server name, SERVER_PROTOCOL',
      path => '/p3/env/old', proto => 'HTTP/1.0', host => 0,
      env  => { SERVER_PROTOCOL => 'HTTP/1.0',
                SERVER_NAME => Apache::Test::vars('servername'),
                HTTP_HOST => undef } },
    { name => 'other methods reach the app as they are',
      method => 'PATCH', path => '/p3/env/m', body => '{}',
      env  => { REQUEST_METHOD => 'PATCH', CONTENT_LENGTH => '2' } },
    { name => 'plain http: wsgi.url_scheme http, no HTTPS',
      path => '/p3/env/scheme',
      env  => { 'wsgi.url_scheme' => 'http', HTTPS => undef } },
    # Refused by httpd before any app: an encoded NUL or '/' in the path.
    { name => '%00 in the path is refused (404)', path => '/p3/env/a%00b',
      status => 404 },
    { name => '%2F in the path is refused (404, AllowEncodedSlashes Off)',
      path => '/p3/env/a%2Fb', status => 404 },
);

# ---------------------------------------------------------------------------
# wsgi.input: [name, body, ops, expected results (one per op), validator-safe]
# Each row runs with Content-Length and chunked (3-byte chunks); the
# connection stays open, so an input that waited for more body would hang.
my $long = ('a' x 20000) . "\n";
my $binary = join('', map { chr } 0 .. 255) x 4;
my @input_rows = (
    ['read(n) in pieces, past the end', "hello world",
     'read:5,read:3,read:100,read:10', ['hello', ' wo', 'rld', ''], 1],
    ['read() to the end', "hello\nworld", 'read:2,read', ['he', "llo\nworld"], 0],
    ['read(None)', "hello\nworld", 'read:None', ["hello\nworld"], 1],
    ['read(-1)', "hello\nworld", 'read:-1,read:-1', ["hello\nworld", ''], 1],
    ['read(0)', "abc", 'read:0,read:3', ['', 'abc'], 1],
    ['readline()', "a\nbb\nccc", 'readline,readline,readline,readline',
     ["a\n", "bb\n", 'ccc', ''], 1],
    ['readline(n)', "abcd\nef", 'readline:2,readline:2,readline:2,readline:2,readline:2',
     ['ab', 'cd', "\n", 'ef', ''], 1],
    ['readline(0)', "abc\n", 'readline:0,readline', ['', "abc\n"], 1],
    ['readline() of a 20 000 byte line', $long . "tail", 'readline,readline',
     [$long, 'tail'], 1],
    ['readlines()', "a\nbb\nccc", 'readlines', [["a\n", "bb\n", 'ccc']], 1],
    ['readlines(hint)', "a\nbb\nccc\ndddd\n", 'readlines:3,readlines',
     [["a\n", "bb\n"], ["ccc\n", "dddd\n"]], 1],
    ['iteration', "x\ny\nz", 'iter', [["x\n", "y\n", 'z']], 1],
    ['next() line by line', "x\ny", 'next,next,next', ["x\n", 'y', ''], 1],
    ['mixed: readline, read(n), iteration', "line1\nabcdef\nlast",
     'readline,read:3,iter', ["line1\n", 'abc', ["def\n", 'last']], 1],
    ['every byte value survives', $binary, 'read:-1', [$binary], 1],
    ['empty body', '', 'read:10,readline,readlines,iter', ['', '', [], []], 1],
);

# Memory of wsgi.input (issue 12 item 9), measured by the app with
# tracemalloc: [name, body, ops, chunk size (0: Content-Length), expected
# result lengths, most bytes the reads may have allocated at their peak].
# One copy of a long line is the price of returning it; two were kept
# before; read(n) allocated n bytes whatever the body's size.
my $line4m = 'L' x 4_000_000;
my @input_mem_rows = (
    ['read(10**9) of a 10-byte body', 'x' x 10, 'read:1000000000', 0, [10],
     1_000_000],
    ['read(10**9) of a 10-byte chunked body', 'x' x 10, 'read:1000000000', 3,
     [10], 1_000_000],
    ['readline() of a 4 MB line', $line4m, 'readline', 0, [4_000_000],
     6_000_000],
    ['next() over a 4 MB line', $line4m, 'next', 0, [4_000_000], 6_000_000],
    ['readlines() of a 4 MB line', $line4m, 'readlines', 0, [[4_000_000]],
     6_000_000],
);

# ---------------------------------------------------------------------------
# start_response, exc_info and write() (t/apps/p3_response.py): [case,
# status, reason, body (string or qr//), complete, headers that must be
# there {name => value} or absent {name => undef}, log qr// or undef]
my @resp_rows = (
    ['excinfo_replace', 500, 'Replaced', "replaced\n", 1,
     { 'x-second' => '1', 'x-first' => undef }, undef],
    ['excinfo_first', 503, 'Busy', "busy\n", 1, {}, undef],
    ['excinfo_after_write', 200, 'OK', "partial body\n", 0, {},
     qr/PW0301: \/p3\/resp\/excinfo_after_write: application '[^']*' raised ValueError: PWTEST original after write/],
    ['excinfo_after_yield', 200, 'OK', "partial body\n", 0, {},
     qr/PW0302: \/p3\/resp\/excinfo_after_yield: application '[^']*' raised while producing its response: ValueError: PWTEST original after yield/],
    ['excinfo_reraise_identity', 200, 'OK',
     "partial body\nraised ValueError same=True\n", 1, {}, undef],
    ['writer', 200, 'OK', "one two three\n", 1, {}, undef],
    ['writer_only', 200, 'OK', "only w\n!", 1, { 'content-length' => '8' },
     undef],
    ['reason', 418, 'Short And Stout', "teapot\n", 1, {}, undef],
    ['latin1_header', 200, 'OK', "latin-1 header\n", 1,
     { 'x-latin' => "caf\xe9" }, undef],
);

# ---------------------------------------------------------------------------
# Bad apps (t/apps/p3_bad.py): [case, status, qr// for the one PW line, after
# "PWnnnn: /p3/bad/<case>: application '<target>' "]. Status 200 rows stay
# inside the rules; 'cut' means the headers went out and the response must be
# truncated.
my $sr = qr/raised (?:Type|Value)Error: start_response: /;
my @bad_rows = (
    # PEP 3333 wants "200 OK"; gunicorn and mod_wsgi take a bare code too,
    # and so does mod_pywsgi (src/pw_http.h): httpd adds the reason.
    ['status_no_reason',      200, undef],
    ['status_two_digits',     500, qr/${sr}status '20 OK' is not 'NNN Reason'/],
    ['status_no_space',       500, qr/${sr}status '200OK' is not/],
    ['status_four_digits',    500, qr/${sr}status '2000 OK' is not/],
    ['status_leading_space',  500, qr/${sr}status ' 200 OK' is not/],
    ['status_below_100',      500, qr/${sr}status '099 Low' is not/],
    # httpd escapes the log line: a backslash is doubled, non-ASCII is \xNN.
    ['status_crlf',           500, qr/${sr}status '200 OK\\{1,2}r\\{1,2}nX-Injected: 1' is not/],
    ['status_non_latin1',     500, qr/${sr}status '200 \S{1,12}' is not/],
    ['status_bytes',          500, qr/${sr}status must be str, not bytes/],
    ['status_int',            500, qr/${sr}status must be str, not int/],
    # RFC 9110 15.2: a 1xx is never the final response.
    ['status_100',            500, qr/${sr}status '100 Continue' is interim \(1xx\), not a final response/],
    ['status_102',            500, qr/${sr}status '102 Processing' is interim \(1xx\), not a final response/],
    ['status_199',            500, qr/${sr}status '199 Whatever' is interim/],
    ['name_space',            500, qr/${sr}header name 'X Bad' is not an HTTP token/],
    ['name_colon',            500, qr/${sr}header name 'X-Bad:' is not an HTTP token/],
    ['name_empty',            500, qr/${sr}header name '' is not an HTTP token/],
    ['name_non_latin1',       500, qr/${sr}header name 'X-\S{1,12}' is not an HTTP token/],
    ['value_cr',              500, qr/${sr}value of header 'X-Bad' contains a control character/],
    ['value_lf',              500, qr/${sr}value of header 'X-Bad' contains a control character/],
    ['value_nul',             500, qr/${sr}value of header 'X-Bad' contains a control character/],
    # RFC 9110 5.5: no control character but HTAB in a field value.
    ['value_ctl_01',          500, qr/${sr}value of header 'X-Bad' contains a control character/],
    ['value_ctl_1f',          500, qr/${sr}value of header 'X-Bad' contains a control character/],
    ['value_del',             500, qr/${sr}value of header 'X-Bad' contains a control character/],
    ['value_htab',            200, undef],
    ['value_non_latin1',      500, qr/${sr}value of header 'X-Bad' has characters outside latin-1/],
    ['value_int',             500, qr/${sr}header \('X-Bad', 1\): name and value must be str, not str and int/],
    ['value_bytes',           500, qr/${sr}header \('X-Bad', b'1'\): name and value must be str, not str and bytes/],
    ['hop_connection',        500, qr/${sr}'Connection' is a hop-by-hop header/],
    ['hop_keep_alive',        500, qr/${sr}'Keep-Alive' is a hop-by-hop header/],
    ['hop_transfer_encoding', 500, qr/${sr}'Transfer-Encoding' is a hop-by-hop header/],
    ['hop_upgrade',           500, qr/${sr}'Upgrade' is a hop-by-hop header/],
    ['hop_te',                500, qr/${sr}'TE' is a hop-by-hop header/],
    ['hop_trailers',          500, qr/${sr}'Trailers' is a hop-by-hop header/],
    ['hop_proxy_authenticate', 500, qr/${sr}'Proxy-Authenticate' is a hop-by-hop header/],
    ['hop_proxy_authorization', 500, qr/${sr}'Proxy-Authorization' is a hop-by-hop header/],
    ['hop_lowercase',         500, qr/${sr}'transfer-encoding' is a hop-by-hop header/],
    ['headers_dict',          500, qr/${sr}headers must be a list of \(name, value\) tuples, not dict/],
    ['headers_tuple',         500, qr/${sr}headers must be a list of \(name, value\) tuples, not tuple/],
    ['headers_lists',         500, qr/${sr}header 0 must be a \(name, value\) tuple, not \['Content-Type', 'text\/plain'\]/],
    ['headers_triple',        500, qr/${sr}header 0 must be a \(name, value\) tuple/],
    ['headers_none',          500, qr/${sr}headers must be a list of \(name, value\) tuples, not NoneType/],
    ['cl_two_different',      500, qr/${sr}Content-Length '5' is not one non-negative number/],
    ['cl_two_same',           200, undef],
    ['cl_negative',           500, qr/${sr}Content-Length '-1' is not one non-negative number/],
    ['cl_not_number',         500, qr/${sr}Content-Length '12abc' is not one non-negative number/],
    ['cl_empty',              500, qr/${sr}Content-Length '' is not one non-negative number/],
    ['returns_none',          500, qr/PW0302: .* returned a NoneType, which is not an iterable of bytes: TypeError/],
    ['returns_int',           500, qr/PW0302: .* returned a int, which is not an iterable of bytes: TypeError/],
    ['returns_str',           500, qr/PW0305: .* returned an item of type str, expected bytes/],
    ['returns_bytes',         500, qr/PW0305: .* returned an item of type int, expected bytes/],
    ['yields_str',            500, qr/PW0305: .* returned an item of type str, expected bytes/],
    ['yields_none',           500, qr/PW0305: .* returned an item of type NoneType, expected bytes/],
    ['yields_int',            'cut', qr/PW0305: .* returned an item of type int, expected bytes/],
    ['iter_raises',           500, qr/PW0302: .* returned a RaisingIter, which is not an iterable of bytes: RuntimeError: PWTEST __iter__ failed/],
    ['close_raises',          200, qr/PW0309: .*close\(\) of the response of application '[^']*' raised RuntimeError: PWTEST close failed/],
    ['no_start_response_gen', 500, qr/PW0306: .* produced body data before calling start_response/],
    ['twice',                 500, qr/raised RuntimeError: start_response: called a second time without exc_info/],
    ['bad_exc_info',          500, qr/raised TypeError: start_response: exc_info must be a \(type, value, traceback\) tuple or None/],
    ['write_str',             500, qr/raised TypeError: write\(\) argument must be bytes, not str/],
    ['raises_after_start',    500, qr/raised LookupError: PWTEST raised after start_response/],
);

# ---------------------------------------------------------------------------
# Logging (t/apps/p3_log.py): [mount, case, [[level, suffix], ...] expected
# lines (level undef: the marker must not be logged at all)]. Every line
# must carry this request's client address and port.
my @log_rows = (
    ['/p3/log', 'warning',            [['warn', '']]],
    ['/p3/log', 'error',              [['error', '']]],
    ['/p3/log', 'info',               [['info', '']]],
    ['/p3/log', 'info_default_level', [[undef, '']]],
    ['/p3/log', 'debug',              [[undef, '']]],
    ['/p3/log-debug', 'debug',        [['debug', '']]],
    ['/p3/log', 'exception',          [['error', ''], ['error', qr/^Traceback/],
                                       ['error', qr/^\s+raise KeyError/],
                                       ['error', qr/^KeyError: 'PWTEST logged exception'/]]],
    ['/p3/log', 'multiline',          [['warn', ' first'], ['warn', ' second']]],
    ['/p3/log', 'print',              [['warn', '']]],
    ['/p3/log', 'stdout',             [['warn', '']]],
    ['/p3/log', 'stderr',             [['error', '']]],
    ['/p3/log', 'wsgi_errors',        [['error', '']]],
    ['/p3/log', 'wsgi_errors_writelines', [['error', ' one'], ['error', ' two']]],
);

# ---------------------------------------------------------------------------
# wsgiref.validate: every working app of the suite through pwtest.validated
# (t/conf/pep3333.conf.in). [path, method, body, status, body qr// or
# undef or a code ref given the body]. A validator complaint is an AssertionError (500, logged) or a
# WSGIWarning in the log.
my $pep3333_src = do {
    open my $fh, '<', "$top/t/apps/pep3333.py" or die "pep3333.py: $!";
    local $/; <$fh>;
};
my @validated_rows = (
    # envdump reads wsgi.input with read() when there is no Content-Length,
    # which the validator rejects (PEP 3333 has read(size)): give one.
    ['/p3/v/envdump/x?y=1', 'POST', '', 200, qr/"app": "module"/],
    ['/p3/v/env/sub', 'POST', 'a=1', 200, qr/"SCRIPT_NAME": "\/p3\/v\/env"/],
    ['/p3/v/env-alt/x', 'POST', "body\n", 200, qr/"app": "script-alt"/],
    ['/p3/v/venv', 'GET', undef, 200, qr/^venvonly-marker prefix=/],
    ['/p3/v/sleep', 'GET', undef, 200, qr/^slept pid=\d+/],
    ['/p3/v/flask-basic/', 'GET', undef, 200, qr/^flask index\n\z/],
    ['/p3/v/flask-basic/hello/x', 'GET', undef, 200, qr/^hello x\n\z/],
    ['/p3/v/flask-basic/query?a=1&b=2', 'GET', undef, 200, qr/"args"/],
    ['/p3/v/flask-basic/urlfor', 'GET', undef, 200, qr{^/p3/v/flask-basic/hello/x\z}],
    ['/p3/v/flask-basic/no/such', 'GET', undef, 404, undef],
    ['/p3/v/pep3333/filewrap', 'GET', undef, 200, qr/\A\Q$pep3333_src\E\z/],
    ['/p3/v/pep3333/writer', 'GET', undef, 200,
     qr/^written by write\(\)\nand returned\n\z/],
    ['/p3/v/pep3333/generator', 'GET', undef, 200, qr/^line 0\n.*line 4\n\z/s],
    ['/p3/v/pep3333/script_dir', 'GET', undef, 200, qr{/}],
    ['/p3/v/pep3333/headers', 'GET', undef, 201, qr/^created\n\z/],
    ['/p3/v/chatty', 'GET', undef, 200, qr/^chatty ok\n\z/],
    ['/p3/v/input?ops=read:3,readline,readlines,iter', 'POST',
     "abc\nline\nrest\n", 200, qr/"results"/],
    ['/p3/v/resp/fixed', 'GET', undef, 200, qr/^fixed body\n\z/],
    ['/p3/v/resp/listed', 'GET', undef, 200, qr/^one\ntwo\nthree\n\z/],
    ['/p3/v/resp/gen', 'GET', undef, 200, qr/^alpha\nbeta\ngamma\n\z/],
    ['/p3/v/resp/big_list', 'GET', undef, 200,
     sub { length($_[0]) == 1048576 }],
    ['/p3/v/resp/no_content', 'GET', undef, 204, qr/^\z/],
    ['/p3/v/resp/not_modified', 'GET', undef, 304, qr/^\z/],
    ['/p3/v/resp/latin1_header', 'GET', undef, 200, qr/^latin-1 header\n\z/],
    ['/p3/v/resp/reason', 'GET', undef, 418, qr/^teapot\n\z/],
    ['/p3/v/resp/stream?sleep=0', 'GET', undef, 200, qr/^chunk 0 .*chunk 2 /s],
    ['/p3/v/resp/writer', 'GET', undef, 200, qr/^one two three\n\z/],
    ['/p3/v/resp/writer_only', 'GET', undef, 200, qr/^only w\n!\z/],
    ['/p3/v/resp/excinfo_replace', 'GET', undef, 500, qr/^replaced\n\z/],
    ['/p3/v/resp/excinfo_first', 'GET', undef, 503, qr/^busy\n\z/],
    ['/p3/v/resp/excinfo_reraise_identity', 'GET', undef, 200,
     qr/same=True/],
    ['/p3/v/resp/close_normal', 'GET', undef, 200, qr/^a\nb\nc\n\z/],
    ['/p3/v/resp/file_plain', 'GET', undef, 200, qr/^"""Response framing/],
    ['/p3/v/resp/file_offset', 'GET', undef, 200, qr/./],
    ['/p3/v/resp/file_bytesio', 'GET', undef, 200, qr/^line 00000\n.*line 04999\n\z/s],
    ['/p3/v/resp/echo', 'POST', 'x' x 5000, 200, qr/"length": 5000/],
    ['/p3/v/log/warning', 'GET', undef, 200, qr/^logged warning\n\z/],
    ['/p3/v/log/wsgi_errors_writelines', 'GET', undef, 200, qr/^logged/],
    # Other areas' apps (t/metrics.t, t/hostile.t, t/deploy.t, t/lifecycle.t):
    # only that they pass the validator.
    ['/p3/v/metrics-app/ok', 'GET', undef, 200, qr/^ok\n\z/],
    ['/p3/v/metrics-app/missing', 'GET', undef, 404, qr/^missing\n\z/],
    ['/p3/v/metrics-app/echo', 'POST', "echo me\n", 200, qr/^echo me\n\z/],
    ['/p3/v/hostile/x', 'POST', 'body', 200, undef],
    ['/p3/v/whoami', 'GET', undef, 200, qr/"uid"/],
    ['/p3/v/deploy/ping', 'GET', undef, 200, qr/^pid=\d+\n\z/],
    ['/p3/v/deploy/site_a', 'GET', undef, 200, undef],
    ['/p3/v/deploy/site_b', 'GET', undef, 200, undef],
    ['/p3/v/deploy/common', 'GET', undef, 200, undef],
    ['/p3/v/deploy/version', 'GET', undef, 200, undef],
);
# Debian's Flask on the Python under test (t/run-pythons): its rows only
# where it imports (t/frameworks.t says why when it does not).
@validated_rows = grep { $_->[0] !~ m{^/p3/v/flask} } @validated_rows
    if venv_cannot_import('flask');
my $validator_complaint =
    qr/WSGIWarning|AssertionError|validate\.py|garbage collected without being closed/;

plan tests => @env_rows + 1 + 2 * @input_rows + 1 + @input_mem_rows
            + @resp_rows + @bad_rows
            + @log_rows + 1 + 1 + @validated_rows;

# ---------------------------------------------------------------------------
for my $row (@env_rows) {
    subtest "environ: $row->{name}" => sub {
        my $res = fetch(method => $row->{method}, path => $row->{path},
                        headers => $row->{headers}, body => $row->{body},
                        proto => $row->{proto}, host => $row->{host});
        my $want_status = $row->{status} || 200;
        is($res->{status}, $want_status, 'status') or diag(show_res($res));
        return if $want_status != 200;
        my $data = decode_json_body($res->{body});
        ok($data, 'JSON answer') or return;
        my $env = $data->{environ};
        for my $key (sort keys %{ $row->{env} }) {
            my $exp = $row->{env}{$key};
            my $got = $env->{$key};
            if (!defined $exp) {
                ok(!exists $env->{$key}, "$key absent")
                    or diag("$key = '$got'");
            }
            elsif (ref $exp eq 'CODE') {
                ok($exp->($got, $res), "$key right")
                    or diag("$key = " . ($got // 'absent')
                            . ", client port $res->{local_port}");
            }
            else {
                is($got, $exp, $key);
            }
        }
        my @not_str = grep { /^[A-Z_]+$/ && $data->{types}{$_} ne 'str' }
                      sort keys %{ $data->{types} };
        is("@not_str", '', 'every CGI key is a str');
    };
}

subtest 'environ behind mod_ssl: HTTPS on, wsgi.url_scheme https' => sub {
    my $tls_port = Apache::Test::vars('pep3333_tls_port');
    ok($tls_port, "the TLS virtual host has a port") or return;
    my $ua = LWP::UserAgent->new(timeout => 10, ssl_opts => {
        verify_hostname => 0, SSL_verify_mode => 0 });
    my $res = $ua->get("https://127.0.0.1:$tls_port/p3/env/tls?x=1");
    is($res->code, 200, 'status') or return diag($res->as_string);
    my $env = (decode_json_body($res->content) || {})->{environ} || {};
    is($env->{HTTPS}, 'on', 'HTTPS');
    is($env->{'wsgi.url_scheme'}, 'https', 'wsgi.url_scheme');
    is($env->{SERVER_PORT}, "$tls_port", 'SERVER_PORT');
    is($env->{SCRIPT_NAME}, '/p3/env', 'SCRIPT_NAME');
    is($env->{PATH_INFO}, '/tls', 'PATH_INFO');
};

# ---------------------------------------------------------------------------
for my $row (@input_rows) {
    my ($name, $body, $ops, $want) = @$row;
    for my $chunked (0, 3) {
        my $how = $chunked ? 'chunked' : 'Content-Length';
        subtest "wsgi.input: $name ($how)" => sub {
            my $res = fetch(method => 'POST', path => "/p3/input?ops=$ops",
                            body => $body, chunked => $chunked);
            is($res->{status}, 200, 'status') or return diag(show_res($res));
            ok($res->{elapsed} < 3, 'answered at once (no read past the body)')
                or diag("took $res->{elapsed} s");
            my $data = decode_json_body($res->{body}) or return fail('JSON');
            my @got = map { $_->[1] } @{ $data->{results} };
            is_deeply(\@got, $want, "results of $ops")
                or diag(JSON::PP->new->ascii->encode(\@got));
            ok($data->{input_terminated}, 'wsgi.input_terminated');
            # Chunked: read before the app runs, so its size is known
            # (issue 11; PyWSGIChunkedRequest Stream keeps it unknown).
            is($data->{content_length}, length($body), 'CONTENT_LENGTH');
        };
    }
}

subtest 'wsgi.input: GET without a body reads as empty at once' => sub {
    my $res = fetch(path => '/p3/input?ops=read:None,readline,read:10,iter');
    is($res->{status}, 200, 'status') or return diag(show_res($res));
    ok($res->{elapsed} < 3, 'no wait for a body that does not exist');
    my $data = decode_json_body($res->{body}) or return fail('JSON');
    is_deeply([map { $_->[1] } @{ $data->{results} }], ['', '', '', []],
              'all empty');
};

for my $row (@input_mem_rows) {
    my ($name, $body, $ops, $chunked, $want, $most) = @$row;
    subtest "wsgi.input memory: $name" => sub {
        my $res = fetch(method => 'POST', path => "/p3/input?trace=1&ops=$ops",
                        body => $body, chunked => $chunked);
        is($res->{status}, 200, 'status') or return diag(show_res($res));
        my $data = decode_json_body($res->{body}) or return fail('JSON');
        is_deeply([map { $_->[1] } @{ $data->{results} }], $want,
                  'result lengths');
        ok(defined $data->{peak} && $data->{peak} <= $most,
           "tracemalloc peak " . ($data->{peak} // "none") . " <= $most bytes");
    };
}

# ---------------------------------------------------------------------------
for my $row (@resp_rows) {
    my ($case, $status, $reason, $body, $complete, $headers, $log) = @$row;
    subtest "start_response: $case" => sub {
        my $offset = log_offset();
        my $res = fetch(path => "/p3/resp/$case");
        is($res->{status}, $status, 'status') or diag(show_res($res));
        is($res->{reason}, $reason, 'reason phrase');
        is($res->{body}, $body, 'body');
        is($res->{complete}, $complete,
           $complete ? 'response complete' : 'response truncated');
        for my $h (sort keys %$headers) {
            is($res->{headers}{$h}, $headers->{$h},
               defined $headers->{$h} ? "header $h" : "no header $h");
        }
        if ($log) {
            like(wait_for_log($offset, $log), $log, 'error log');
        }
    };
}

# ---------------------------------------------------------------------------
for my $row (@bad_rows) {
    my ($case, $status, $cause) = @$row;
    my $path = "/p3/bad/$case";
    subtest "bad app: $case -> " . ($status eq 'cut' ? 'truncated' : $status) => sub {
        my $offset = log_offset();
        my $res = fetch(path => $path);
        my $pw = qr/PW\d{4}: \Q$path\E: /;
        my $log = $cause ? wait_for_log($offset, $cause) : log_since($offset);
        if ($status eq 'cut') {
            is($res->{status}, 200, 'headers went out with 200');
            ok(!$res->{complete}, 'then the response was cut off');
        }
        else {
            is($res->{status}, $status, 'status') or diag(show_res($res));
            ok($res->{complete}, 'response complete');
        }
        if ($status eq '500') {
            like($res->{body}, qr/Internal Server Error/, "Apache's 500 page");
            unlike($res->{body}, $leak, 'no traceback or path to the client');
            is($res->{headers}{'x-leak'}, undef, "no header of the app's");
        }
        if ($cause) {
            my @lines = grep { /$pw/ && !/PW0303:/ } split /\n/, $log;
            is(scalar @lines, 1, 'one PW line for the request (besides traceback lines)')
                or diag("log since the request:\n$log");
            like($lines[0] // '', qr/application '[^']*p3_bad\.py'/,
                 'the line names the app');
            like($lines[0] // '', $cause, 'the line names the cause');
            like($lines[0] // '', qr/\[pywsgi:error\]/, 'at error level');
        }
        else {
            unlike($log, $pw, 'nothing logged: the app is within the rules');
        }
    };
}

# ---------------------------------------------------------------------------
for my $row (@log_rows) {
    my ($mount, $case, $want) = @$row;
    subtest "logging: $case at $mount" => sub {
        my $id = "$run." . $case;
        my $marker = "PWTEST-log-$case-$id";
        my $offset = log_offset();
        my $res = fetch(path => "$mount/$case?id=$id");
        is($res->{status}, 200, 'status') or diag(show_res($res));
        my $expect_any = grep { defined $_->[0] } @$want;
        my $log = $expect_any
            ? wait_for_log($offset, qr/\Q$marker\E$want->[-1][1]/)
            : do { Time::HiRes::sleep(0.3); log_since($offset) };
        my @lines = grep { /\Q$marker\E|Traceback|PWTEST logged exception/ }
                    split /\n/, $log;
        unless ($expect_any) {
            is(scalar @lines, 0, 'not logged (below the level)')
                or diag(join "\n", @lines);
            return;
        }
        is(scalar @lines, scalar @$want, 'number of lines')
            or diag(join "\n", @lines);
        for my $i (0 .. $#$want) {
            my ($level, $suffix) = @{ $want->[$i] };
            my $line = $lines[$i] // '';
            like($line, qr/\[pywsgi:\Q$level\E\]/, "line $i at $level");
            like($line, qr/\[client 127\.0\.0\.1:\Q$res->{local_port}\E\]/,
                 "line $i carries this request's client");
            my ($msg) = $line =~ /\] (?:PW0303: )?([^\]]*)$/;
            if (ref $suffix) {
                like($msg // '', $suffix, "line $i text");
            }
            else {
                is($msg, "$marker$suffix", "line $i text");
            }
        }
    };
}

# With %L in ErrorLogFormat (the pep3333_logid virtual host): every line of
# one request, the app's own and mod_pywsgi's, carries the same request log
# id, and another request another one.
subtest 'logging: every line of a request carries its log id (%L)' => sub {
    my $logid_port = Apache::Test::vars('pep3333_logid_port');
    ok($logid_port, 'the %L virtual host has a port') or return;
    my %ids;
    for my $path ('/p3/log/multiline', '/p3/bad/raises_after_start') {
        my $offset = log_offset();
        my $c = PWRaw->new(port => $logid_port) or return fail("connect: $!");
        $c->send(request_text('GET', "$path?id=$run.logid",
                              [['Host', "127.0.0.1:$logid_port"]], undef,
                              host => 0));
        my $res = $c->response;
        my $client = qr/\[client 127\.0\.0\.1:\Q${\ $c->local_port}\E\]/;
        my $last = $path =~ /multiline/ ? qr/ second$/m : qr/PW0303: LookupError/;
        my @lines = grep { /$client/ } split /\n/,
                    wait_for_log($offset, $last);
        ok(@lines >= 2, "$path: " . scalar(@lines) . ' lines logged') or next;
        my %here = map { /\[logid ([^\]]*)\]/ ? ($1 => 1) : ('(none)' => 1) } @lines;
        my @here = keys %here;
        ok(@here == 1 && $here[0] ne '(none)' && $here[0] ne '-',
           "$path: one log id on all its lines (@here)")
            or diag(join "\n", @lines);
        $ids{$here[0]}++;
    }
    is(scalar keys %ids, 2, 'two requests, two log ids');
};

# ---------------------------------------------------------------------------
# The control: the validator is live and its complaints reach the log.
# envdump reads a GET's (absent) body with read(), no size: rejected.
subtest 'wsgiref.validate is live: a violation is a 500 and logged' => sub {
    my $offset = log_offset();
    my $res = fetch(path => '/p3/v/envdump/control');
    is($res->{status}, 500, 'status');
    like(wait_for_log($offset, qr/AssertionError/), $validator_complaint,
         'AssertionError from wsgiref/validate.py in the log');
};

for my $row (@validated_rows) {
    my ($path, $method, $body, $status, $want) = @$row;
    subtest "wsgiref.validate: $method $path" => sub {
        my $offset = log_offset();
        my $res = fetch(method => $method, path => $path, body => $body);
        is($res->{status}, $status, 'status') or diag(show_res($res));
        ok($res->{complete}, 'response complete');
        if (ref $want eq 'CODE') {
            ok($want->($res->{body}), 'body')
                or diag('got ' . length($res->{body}) . ' bytes');
        }
        elsif ($want) {
            like($res->{body}, $want, 'body');
        }
        # The validator's IteratorWrapper checks close() when collected:
        # give the server a moment to finish the request.
        Time::HiRes::sleep(0.05);
        my @complaints = grep { /$validator_complaint/ }
                         split /\n/, log_since($offset);
        is(scalar @complaints, 0, 'no validator warning or assertion')
            or diag(join "\n", @complaints[0 .. ($#complaints < 20 ? $#complaints : 20)]);
    };
}
