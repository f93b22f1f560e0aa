# Working apps: environ contents (PEP 3333 and the spec's mount rules), both
# TARGET forms, the virtualenv, request bodies, and a few PEP 3333 paths.
# Apps: t/lib/pwtest/envdump.py (through t/apps/env.py too), t/apps/*.py;
# mounts: t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use JSON::PP ();
use PWTest qw(raw_request decode_json_body is_threaded_mpm mpm pw_venv);

my $top  = Apache::Test::vars('top_dir');
my $port = Apache::Test::vars('port');
my $venv = pw_venv();

my $auth = 'Basic dXNlcjpwYXNz';
my $binary = join('', map { chr } 0 .. 255) x 400;    # ~100 KiB, every byte

# Expected environ values: a string must be equal, undef means "absent",
# a qr// must match, a code ref gets the value (or undef) and returns true.
my $empty_or_absent = sub { !defined $_[0] || $_[0] eq '' };

my @env_rows = (
    { name => 'script file: SCRIPT_NAME, PATH_INFO, QUERY_STRING split',
      path => '/env/sub/path?x=1', app => 'script',
      env  => { SCRIPT_NAME => '/env', PATH_INFO => '/sub/path',
                QUERY_STRING => 'x=1', REQUEST_METHOD => 'GET',
                REQUEST_URI => '/env/sub/path?x=1',
                PWTEST_SETENV => 'from-setenv', CONTENT_LENGTH => undef } },
    { name => 'the mount point itself: PATH_INFO empty',
      path => '/env', app => 'script',
      env  => { SCRIPT_NAME => '/env', PATH_INFO => $empty_or_absent,
                QUERY_STRING => $empty_or_absent } },
    { name => 'module target at /: SCRIPT_NAME ""',
      path => '/', app => 'module',
      env  => { SCRIPT_NAME => '', PATH_INFO => '/' } },
    { name => 'unmounted URL goes to the / app',
      path => '/some/where?y=2', app => 'module',
      env  => { SCRIPT_NAME => '', PATH_INFO => '/some/where',
                QUERY_STRING => 'y=2' } },
    { name => '/envelope does not match /env (segment boundary)',
      path => '/envelope', app => 'module',
      env  => { SCRIPT_NAME => '', PATH_INFO => '/envelope' } },
    { name => 'longest URL-PATH wins (/env/nested over /env), factory target',
      path => '/env/nested/deep', app => 'factory',
      env  => { SCRIPT_NAME => '/env/nested', PATH_INFO => '/deep' } },
    { name => 'callable= option',
      path => '/env-alt/x', app => 'script-alt',
      env  => { SCRIPT_NAME => '/env-alt', PATH_INFO => '/x' } },
    { name => 'package.module target means callable application',
      path => '/mod/a/b', app => 'module',
      env  => { SCRIPT_NAME => '/mod', PATH_INFO => '/a/b' } },
    { name => 'module:create_app() factory target',
      path => '/factory', app => 'factory',
      env  => { SCRIPT_NAME => '/factory' } },
    { name => 'trailing / of URL-PATH dropped (/trailing/x)',
      path => '/trailing/x', app => 'module',
      env  => { SCRIPT_NAME => '/trailing', PATH_INFO => '/x' } },
    { name => 'trailing / of URL-PATH dropped (/trailing)',
      path => '/trailing', app => 'module',
      env  => { SCRIPT_NAME => '/trailing',
                PATH_INFO => $empty_or_absent } },
    { name => 'PATH_INFO is decoded (bytes as latin-1), REQUEST_URI is not',
      path => '/env/caf%C3%A9/a%20b?q=%20', app => 'script',
      env  => { PATH_INFO => "/caf\x{c3}\x{a9}/a b",
                QUERY_STRING => 'q=%20',
                REQUEST_URI => '/env/caf%C3%A9/a%20b?q=%20' } },
    { name => 'HTTP_* passing; X_Foo, Proxy, Authorization not passed',
      path => '/env', app => 'script',
      headers => [['X-Foo-Bar', '1'], ['X_Foo', 'spoof'],
                  ['Proxy', 'http://evil.example/'],
                  ['Authorization', $auth], ['X-Latin', "caf\xe9"]],
      env  => { HTTP_X_FOO_BAR => '1', HTTP_X_FOO => undef,
                HTTP_PROXY => undef, HTTP_AUTHORIZATION => undef,
                HTTP_X_LATIN => "caf\x{e9}",
                HTTP_HOST => "127.0.0.1:$port" } },
    { name => 'X-Foo is passed, X_Foo: spoof does not override it',
      path => '/env', app => 'script',
      headers => [['X-Foo', 'bar'], ['X_Foo', 'spoof']],
      env  => { HTTP_X_FOO => 'bar' } },
    { name => 'PyWSGIPassAuthorization On passes Authorization, not Proxy',
      path => '/auth/x', app => 'module',
      headers => [['Authorization', $auth],
                  ['Proxy', 'http://evil.example/']],
      env  => { HTTP_AUTHORIZATION => $auth, HTTP_PROXY => undef,
                SCRIPT_NAME => '/auth' } },
    { name => 'POST body through wsgi.input (Content-Length)',
      method => 'POST', path => '/env/post', app => 'script',
      headers => [['Content-Type', 'text/plain; charset=utf-8']],
      body => "hello=world&x=1\n",
      env  => { REQUEST_METHOD => 'POST', PATH_INFO => '/post',
                CONTENT_TYPE => 'text/plain; charset=utf-8',
                CONTENT_LENGTH => '16', HTTP_CONTENT_TYPE => undef,
                HTTP_CONTENT_LENGTH => undef } },
    { name => 'binary POST body of ~100 KiB arrives intact',
      method => 'POST', path => '/env', app => 'script',
      headers => [['Content-Type', 'application/octet-stream']],
      body => $binary,
      env  => { CONTENT_LENGTH => length($binary) } },
    { name => 'chunked POST body read to EOF (wsgi.input_terminated)',
      method => 'POST', path => '/env', app => 'script', chunked => 1,
      headers => [['Content-Type', 'text/plain']],
      body => "chunked body " x 1000,
      # Read before the app runs (PyWSGIChunkedRequest Buffer, issue 11):
      # CONTENT_LENGTH is the size of the de-chunked body.
      env  => { CONTENT_LENGTH => length("chunked body " x 1000),
                HTTP_TRANSFER_ENCODING => undef,
                'wsgi.input_terminated' => sub { $_[0] && JSON::PP::is_bool($_[0]) } } },
    { name => 'other methods reach the app',
      method => 'DELETE', path => '/mod/thing', app => 'module',
      env  => { REQUEST_METHOD => 'DELETE' } },
);

# Plain responses: [name, path, status, body (string or qr//), headers]
my $pep3333_src = do {
    open my $fh, '<', "$top/t/apps/pep3333.py" or die "pep3333.py: $!";
    local $/; <$fh>;
};
my @response_rows = (
    ['import from the venv only', '/venv', 200,
     qr{^venvonly-marker prefix=\Q$venv\E\n\z}],
    ['wsgi.file_wrapper', '/pep3333/filewrap', 200, $pep3333_src],
    ['write() callable then iterable', '/pep3333/writer', 200,
     "written by write()\nand returned\n"],
    ['generator body', '/pep3333/generator', 200,
     join('', map { "line $_\n" } 0 .. 4)],
    ["script's directory first on sys.path", '/pep3333/script_dir', 200,
     "$top/t/apps\n"],
    ['status and headers from the app', '/pep3333/headers', 201,
     "created\n", { 'X-Pwtest' => 'yes' }],
);

plan tests => 2 + @env_rows + @response_rows;

sub check_env {
    my ($env, $want) = @_;
    for my $key (sort keys %$want) {
        my $exp = $want->{$key};
        my $got = $env->{$key};
        if (!defined $exp) {
            ok(!exists $env->{$key}, "$key absent")
                or diag("$key = " . (defined $got ? "'$got'" : 'null'));
        }
        elsif (ref $exp eq 'Regexp') {
            like($got, $exp, $key);
        }
        elsif (ref $exp eq 'CODE') {
            ok($exp->($got), "$key acceptable")
                or diag("$key = " . (defined $got ? "'$got'" : 'absent'));
        }
        else {
            is($got, $exp, $key);
        }
    }
}

for my $row (@env_rows) {
    subtest $row->{name} => sub {
        my $res = raw_request(method  => $row->{method} || 'GET',
                              path    => $row->{path},
                              headers => $row->{headers},
                              body    => $row->{body},
                              chunked => $row->{chunked});
        is($res->{status}, 200, "$row->{path} status")
            or diag($res->{error} || substr($res->{raw} || '', 0, 500));
        my $data = decode_json_body($res->{body});
        ok($data, 'JSON answer') or return;
        is($data->{app}, $row->{app}, 'served by the expected mount');
        check_env($data->{environ}, $row->{env});
        # PEP 3333: CGI variables are native strings.
        my @not_str = grep { /^[A-Z_]+$/ && $data->{types}->{$_} ne 'str' }
                      sort keys %{ $data->{types} };
        is("@not_str", '', 'every CGI key is a str');
        if (defined $row->{body}) {
            ok($data->{body} eq $row->{body}, 'body read from wsgi.input')
                or diag('got ' . length($data->{body}) . ' bytes, sent '
                        . length($row->{body}));
        }
    };
}

subtest 'constant environ entries' => sub {
    my $res = raw_request(path => '/env/const');
    is($res->{status}, 200, 'status');
    my $data = decode_json_body($res->{body}) or return fail('JSON answer');
    my ($env, $types) = @$data{qw(environ types)};
    is($env->{SERVER_PROTOCOL}, 'HTTP/1.1', 'SERVER_PROTOCOL');
    is($env->{SERVER_PORT}, "$port", 'SERVER_PORT');
    ok(length($env->{SERVER_NAME} // ''), 'SERVER_NAME set');
    is($env->{REMOTE_ADDR}, '127.0.0.1', 'REMOTE_ADDR');
    like($env->{REMOTE_PORT} // '', qr/^\d+$/, 'REMOTE_PORT');
    is($env->{'wsgi.url_scheme'}, 'http', 'wsgi.url_scheme');
    is_deeply($env->{'wsgi.version'}, [1, 0], 'wsgi.version value');
    is($types->{'wsgi.version'}, 'tuple', 'wsgi.version is a tuple');
    for my $obj (qw(wsgi.input wsgi.errors wsgi.file_wrapper)) {
        ok($types->{$obj}, "$obj present");
    }
    # Apache::Test allows several children under every MPM (prefork
    # MaxClients 8; worker/event 30 threads / 10 per child).
    my %bools = ('wsgi.multithread'      => is_threaded_mpm(),
                 'wsgi.multiprocess'     => 1,
                 'wsgi.run_once'         => 0,
                 'wsgi.input_terminated' => 1);
    for my $key (sort keys %bools) {
        my $got = $env->{$key};
        ok(defined $got && JSON::PP::is_bool($got), "$key is a bool");
        is($got ? 1 : 0, $bools{$key}, "$key under " . mpm());
    }
};

subtest 'Python runs as the virtualenv' => sub {
    my $res = raw_request(path => '/mod/prefix');
    my $data = decode_json_body($res->{body}) or return fail('JSON answer');
    is($data->{sys_prefix}, $venv, 'sys.prefix is PyWSGIVirtualEnv');
    ok((grep { $_ eq "$top/t/lib" } @{ $data->{sys_path} }),
       'PyWSGIPythonPath on sys.path');
};

for my $row (@response_rows) {
    my ($name, $path, $status, $body, $headers) = @$row;
    subtest $name => sub {
        my $res = GET $path;
        is($res->code, $status, "$path status");
        if (ref $body) {
            like($res->content, $body, 'body');
        }
        else {
            ok($res->content eq $body, 'body')
                or diag('got: ' . substr($res->content, 0, 300));
        }
        for my $h (sort keys %{ $headers || {} }) {
            is($res->header($h), $headers->{$h}, "header $h");
        }
    };
}
