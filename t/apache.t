# Apache's own machinery around an app (issue 11, items 3-5): what
# Apache's authentication gives an app (REMOTE_USER, AUTH_TYPE), mod_ssl's
# variables, SetEnv/SetEnvIf/RewriteRule [E=], mod_pywsgi as Apache's
# authentication provider (PyWSGIAuthScript: Basic, Digest, groups) in
# front of static files and of an app, an app as the ErrorDocument
# (REDIRECT_*), mod_rewrite, mod_include, mod_deflate, mod_cache with
# mod_expires, mod_remoteip. Real HTTP through curl, one table per part.
#
# Mounts: t/conf/features.conf.in (virtual hosts pw_features and
# pw_features_tls); apps: t/lib/pwtest/envdump.py, t/apps/features.py,
# t/apps/auth_script.py; files: t/apps/features/.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use IO::Uncompress::Gunzip ();
use JSON::PP ();
use Time::HiRes qw(time);
use PWTest qw(decode_json_body log_offset log_since wait_for_log);

my $top      = Apache::Test::vars('top_dir');
my $port     = Apache::Test::vars('pw_features_port');
my $tls_port = Apache::Test::vars('pw_features_tls_port');
my $run      = "$$" . int(time);    # unique per run (cache keys, markers)
my $tmp      = File::Temp->newdir;

# One request with curl. curl(path, user, pass, digest, tls, headers =>
# [...], data, interface). Returns { status, headers => {lc name => value}
# (of the last response, after a Digest challenge), body, error }.
sub curl {
    my (%a) = @_;
    my ($hfile, $bfile) = ("$tmp/h", "$tmp/b");
    unlink $hfile, $bfile;
    my $url = ($a{tls} ? "https://127.0.0.1:$tls_port" : "http://127.0.0.1:$port")
            . $a{path};
    my @cmd = ('curl', '-sS', '--max-time', '15', '-D', $hfile, '-o', $bfile,
               '-w', '%{http_code}');
    push @cmd, '-k' if $a{tls};
    push @cmd, '--cert', "$top/t/conf/features-tls/client.pem",
               '--key', "$top/t/conf/features-tls/client-key.pem" if $a{cert};
    push @cmd, '--digest' if $a{digest};
    push @cmd, '-u', "$a{user}:$a{pass}" if defined $a{user};
    push @cmd, '-H', $_ for @{ $a{headers} || [] };
    push @cmd, '--data-binary', $a{data} if defined $a{data};
    push @cmd, '--interface', $a{interface} if $a{interface};
    push @cmd, $url;
    open my $out, '-|', @cmd or return { status => 0, error => "curl: $!" };
    my $code = do { local $/; <$out> };
    close $out;
    my $res = { status => ($code // '') =~ /^(\d{3})$/ ? $1 : 0,
                headers => {}, body => '' };
    if (open my $fh, '<', $hfile) {
        local $/;
        my @blocks = grep { /\S/ } split /\r\n\r\n/, <$fh> // '';
        for my $line (split /\r\n/, $blocks[-1] // '') {
            my ($k, $v) = split /:\s*/, $line, 2;
            next unless defined $v;
            $res->{headers}{lc $k} = $res->{headers}{lc $k}
                                   ? "$res->{headers}{lc $k}, $v" : $v;
        }
    }
    if (open my $fh, '<', $bfile) {
        binmode $fh;
        local $/;
        $res->{body} = <$fh> // '';
    }
    return $res;
}

sub env_of {
    my $data = decode_json_body(shift->{body}) || {};
    return $data->{environ} || {};
}

# Compare an environ with what a row expects: a string must be equal,
# undef means absent, a Regexp must match.
sub check_env {
    my ($env, $want) = @_;
    for my $k (sort keys %$want) {
        my $exp = $want->{$k};
        if (!defined $exp) {
            ok(!exists $env->{$k}, "$k absent")
                or diag("$k = " . ($env->{$k} // 'undef'));
        }
        elsif (ref $exp eq 'Regexp') {
            like($env->{$k} // '', $exp, $k);
        }
        else {
            is($env->{$k}, $exp, $k);
        }
    }
}

# ---------------------------------------------------------------------------
# What an app sees of Apache's configuration (items 3 and 5).
my @env_rows = (
    { name => 'Basic auth by an htpasswd file: REMOTE_USER, AUTH_TYPE',
      path => '/feat/env/basic/x', user => 'alice', pass => 'alicepw',
      env => { REMOTE_USER => 'alice', AUTH_TYPE => 'Basic',
               PATH_INFO => '/basic/x', HTTP_AUTHORIZATION => undef } },
    { name => 'Basic auth, wrong password: 401, the app is not called',
      path => '/feat/env/basic/x', user => 'alice', pass => 'nope',
      status => 401 },
    { name => 'Digest auth by an htdigest file: REMOTE_USER, AUTH_TYPE',
      path => '/feat/env/digest/x', user => 'bob', pass => 'bobpw',
      digest => 1,
      env => { REMOTE_USER => 'bob', AUTH_TYPE => 'Digest' } },
    { name => 'no authentication: no REMOTE_USER, no AUTH_TYPE',
      path => '/feat/env/plain',
      env => { REMOTE_USER => undef, AUTH_TYPE => undef } },
    { name => 'SetEnv and SetEnvIf',
      path => '/feat/env/setenv', headers => ['User-Agent: pwfeat-agent/1'],
      env => { PWFEAT_SETENV => 'from-setenv',
               PWFEAT_SETENVIF => 'matched' } },
    { name => 'SetEnv cannot pass for REMOTE_USER',
      path => '/feat/env/setenv',
      env => { REMOTE_USER => undef } },
    { name => 'RewriteRule [E=]',
      path => '/feat/env/rwenv',
      env => { PWFEAT_REWRITE => 'from-rewrite' } },
    { name => 'RewriteRule [PT] to an app: the new URL split at the mount',
      path => '/feat/old/a/b?q=1',
      env => { SCRIPT_NAME => '/feat/env', PATH_INFO => '/new/a/b',
               QUERY_STRING => 'q=1', REQUEST_URI => '/feat/old/a/b?q=1',
               PWFEAT_RW_OLD => 'yes', REDIRECT_URL => undef } },
    { name => 'per-directory RewriteRule: an internal redirect to an app',
      path => '/feat/rwdir/some/file?q=2',
      env => { SCRIPT_NAME => '/feat/env', PATH_INFO => '/fromdir/some/file',
               REDIRECT_URL => '/feat/rwdir/some/file',
               REDIRECT_QUERY_STRING => 'q=2', REDIRECT_STATUS => '200',
               REDIRECT_PWFEAT_DIRVAR => 'yes' } },
    { name => 'ErrorDocument 404 served by an app: REDIRECT_*',
      path => '/feat/static/missing.txt?a=1', status => 404,
      env => { SCRIPT_NAME => '/feat/env', PATH_INFO => '/errdoc',
               REDIRECT_STATUS => '404',
               REDIRECT_URL => '/feat/static/missing.txt',
               REDIRECT_QUERY_STRING => 'a=1',
               REQUEST_METHOD => 'GET' } },
    { name => 'ErrorDocument with QualifyRedirectURL On: REDIRECT_URL in full',
      path => '/feat/static-q/missing.txt', status => 404,
      env => { PATH_INFO => '/errdocq', REDIRECT_STATUS => '404',
               REDIRECT_URL =>
                   "http://127.0.0.1:$port/feat/static-q/missing.txt" } },
    { name => 'ErrorDocument 413 (body over LimitRequestBody) served by an app',
      path => '/feat/env/limited?b=2', data => 'x' x 100, status => 413,
      env => { PATH_INFO => '/errdoc413', REDIRECT_STATUS => '413',
               REDIRECT_URL => '/feat/env/limited',
               REDIRECT_QUERY_STRING => 'b=2',
               REDIRECT_REQUEST_METHOD => 'POST' } },
    { name => 'mod_remoteip: X-Forwarded-For from a trusted proxy',
      path => '/feat/env/rip', headers => ['X-Forwarded-For: 203.0.113.7'],
      env => { REMOTE_ADDR => '203.0.113.7' } },
    { name => 'mod_remoteip: X-Forwarded-For from anyone else is ignored',
      path => '/feat/env/rip', interface => '127.0.0.2',
      headers => ['X-Forwarded-For: 203.0.113.7'],
      env => { REMOTE_ADDR => '127.0.0.2' } },
    { name => 'mod_ssl with SSLOptions +StdEnvVars',
      path => '/feat/env/ssl', tls => 1,
      env => { HTTPS => 'on', 'wsgi.url_scheme' => 'https',
               SSL_PROTOCOL => qr/^TLSv1\.[23]$/, SSL_CIPHER => qr/\w/,
               SSL_SERVER_S_DN_CN => 'localhost' } },
    { name => 'client certificate, SSLOptions +FakeBasicAuth: REMOTE_USER',
      path => '/feat/env/fakebasic', tls => 1, cert => 1,
      env => { REMOTE_USER => '/O=mod_pywsgi tests/CN=pwtest-client',
               AUTH_TYPE => 'Basic' } },
    { name => 'client certificate required, none given: 403',
      path => '/feat/env/certuser', tls => 1, status => 403 },
    { name => 'client certificate, SSLUserName: REMOTE_USER',
      path => '/feat/env/certuser', tls => 1, cert => 1,
      env => { REMOTE_USER => 'pwtest-client' } },
    { name => 'mod_ssl without StdEnvVars: no SSL_* variables',
      path => '/feat/env/nossl', tls => 1,
      env => { HTTPS => 'on', SSL_PROTOCOL => undef } },
);

for my $row (@env_rows) {
    subtest $row->{name} => sub {
        my $res = curl(%$row);
        is($res->{status}, $row->{status} || 200, 'status')
            or diag(substr($res->{body}, 0, 300));
        check_env(env_of($res), $row->{env}) if $row->{env};
    };
}

# The refused body stays refused: the app serving the 413's ErrorDocument
# reads nothing through wsgi.input and sees no CONTENT_LENGTH (the body
# was over LimitRequestBody; handing it on would undo the limit).
subtest 'ErrorDocument 413: the refused body is not the error page\'s' => sub {
    my $res = curl(path => '/feat/env/limited?b=3', data => 'x' x 5000);
    is($res->{status}, 413, 'status');
    my $data = decode_json_body($res->{body}) || {};
    is($data->{body}, '', 'wsgi.input gives nothing');
    ok(!exists $data->{environ}{CONTENT_LENGTH}, 'no CONTENT_LENGTH')
        or diag("CONTENT_LENGTH = $data->{environ}{CONTENT_LENGTH}");
};

# ... and on a connection kept alive, Apache still reads the failed
# request's body away: the next request on it is served as sent.
subtest 'ErrorDocument 404 for a POST: the next request on the connection' => sub {
    my $url = "http://127.0.0.1:$port";
    my $out = `curl -sS -v --max-time 15 -o /dev/null -w '%{http_code} ' -d @{['y' x 3000]} $url/feat/static/missing.txt --next -sS -o /dev/null -w '%{http_code}' $url/feat/env/after 2>&1`;
    like($out, qr/404 200\s*$/, 'the error page, then the next request: 404 200');
    like($out, qr/Re-using existing connection|Reusing existing/i, 'on the same connection');
};

# ---------------------------------------------------------------------------
# Filters and handlers around an app's answer (item 5).
subtest 'mod_include: <!--#include virtual --> of an app URL' => sub {
    my $res = curl(path => '/feat/ssi/page.shtml');
    is($res->{status}, 200, 'status');
    like($res->{body}, qr/^before \{.*"PATH_INFO": "\/included".* after$/s,
         "the app's answer inside the page");
    like($res->{body}, qr/"QUERY_STRING": "x=1"/, 'its query string');
};

subtest 'mod_deflate compresses an app answer' => sub {
    my $plain = "mod_pywsgi behind mod_deflate: the same line again and again\n"
              x 200;
    my $res = curl(path => '/feat/text', headers => ['Accept-Encoding: gzip']);
    is($res->{status}, 200, 'status');
    is($res->{headers}{'content-encoding'}, 'gzip', 'Content-Encoding');
    like($res->{headers}{vary} // '', qr/Accept-Encoding/i, 'Vary');
    ok(length($res->{body}) < length($plain) / 4, 'smaller')
        or diag(length $res->{body});
    my $out;
    IO::Uncompress::Gunzip::gunzip(\$res->{body}, \$out);
    is($out, $plain, 'decompresses to the app body');
    $res = curl(path => '/feat/text');
    ok(!$res->{headers}{'content-encoding'}, 'no gzip unless asked');
    is($res->{body}, $plain, 'plain body');
};

subtest 'mod_expires adds Expires and Cache-Control to an app answer' => sub {
    my $res = curl(path => "/feat/counted/expires?$run");
    is($res->{status}, 200, 'status');
    like($res->{headers}{expires} // '', qr/GMT$/, 'Expires');
    like($res->{headers}{'cache-control'} // '', qr/max-age=3600/,
         'Cache-Control');
};

subtest 'mod_cache (socache) serves the second request without the app' => sub {
    my $key = "cache$run";
    my $offset = log_offset();
    my $first = curl(path => "/feat/counted/cached?$key");
    my $second = curl(path => "/feat/counted/cached?$key");
    my $third = curl(path => "/feat/counted/cached?$key");
    is($_->{status}, 200, 'status') for $first, $second, $third;
    is($_->{body}, "counted\n", 'body') for $first, $second, $third;
    like($first->{headers}{'x-cache'} // '', qr/MISS/, 'first: a miss');
    like($second->{headers}{'x-cache'} // '', qr/HIT/, 'second: a hit');
    my $log = wait_for_log($offset, qr/PWFEAT-CALL \Q$key\E/);
    sleep 1;
    $log = log_since($offset);
    my $calls = () = $log =~ /PWFEAT-CALL \Q$key\E\b/g;
    is($calls, 1, 'the app was called once for three requests');
};

# ---------------------------------------------------------------------------
# mod_pywsgi as the authentication provider (item 4). log: a regexp the
# lines since the request must match, exactly one PW06xx line then.
my $script = qr{t/apps/auth_script\.py};
my @auth_rows = (
    { name => 'static file: right password',
      path => '/feat/authstatic/hello.txt', user => 'alice', pass => 'alicepw',
      status => 200, body => qr/^a static file/ },
    { name => 'static file: wrong password',
      path => '/feat/authstatic/hello.txt', user => 'alice', pass => 'bobpw',
      status => 401 },
    { name => 'static file: unknown user',
      path => '/feat/authstatic/hello.txt', user => 'carol', pass => 'x',
      status => 401 },
    { name => 'static file: no credentials',
      path => '/feat/authstatic/hello.txt', status => 401,
      www_auth => qr/^Basic realm="pw python"/ },
    { name => 'static file: check_password raises -> 500, not let in',
      path => '/feat/authstatic/hello.txt', user => 'boom', pass => 'x',
      status => 500,
      log => qr/PW0600: .*$script.*check_password.*boom.*RuntimeError: the user database is down/ },
    { name => 'static file: check_password returns a str -> 500, not let in',
      path => '/feat/authstatic/hello.txt', user => 'weird', pass => 'x',
      status => 500, log => qr/PW0601: .*$script.*check_password.*weird.*returned str/ },
    { name => 'app: REMOTE_USER and AUTH_TYPE reach it',
      path => '/feat/env/authapp/p', user => 'bob', pass => 'bobpw',
      env => { REMOTE_USER => 'bob', AUTH_TYPE => 'Basic',
               PATH_INFO => '/authapp/p', HTTP_AUTHORIZATION => undef } },
    { name => 'app: wrong password', path => '/feat/env/authapp/p',
      user => 'bob', pass => 'alicepw', status => 401 },
    { name => 'app: unknown user', path => '/feat/env/authapp/p',
      user => 'nobody', pass => 'bobpw', status => 401 },
    { name => 'app: check_password raises', path => '/feat/env/authapp/p',
      user => 'boom', pass => 'x', status => 500, log => qr/PW0600: .*$script/ },
    { name => 'app: check_password returns a str', path => '/feat/env/authapp/p',
      user => 'weird', pass => 'x', status => 500, log => qr/PW0601: .*$script/ },
    { name => 'the main interpreter by default', path => '/feat/env/authapp/p',
      user => 'where', pass => 'main', status => 200 },
    { name => 'interpreter=NAME: a sub-interpreter', path => '/feat/env/authsub/p',
      user => 'where', pass => 'sub', status => 200 },
    { name => 'interpreter=NAME: not main', path => '/feat/env/authsub/p',
      user => 'where', pass => 'main', status => 401 },
    { name => 'Require pywsgi-group: a member',
      path => '/feat/env/authgroup', user => 'alice', pass => 'alicepw',
      env => { REMOTE_USER => 'alice' } },
    { name => 'Require pywsgi-group: not a member',
      path => '/feat/env/authgroup', user => 'bob', pass => 'bobpw',
      status => 401 },
    { name => 'Require pywsgi-group: groups_for_user raises',
      path => '/feat/env/authgroup', user => 'grpboom', pass => 'grpboom',
      status => 500,
      log => qr/PW0600: .*$script.*groups_for_user.*grpboom.*LookupError: no group service/ },
    { name => 'Require pywsgi-group: groups_for_user returns an int',
      path => '/feat/env/authgroup', user => 'grpweird', pass => 'grpweird',
      status => 500, log => qr/PW0601: .*$script.*groups_for_user.*returned int/ },
    { name => 'users from a file, groups from Python: a member',
      path => '/feat/env/filegroup', user => 'alice', pass => 'alicepw',
      env => { REMOTE_USER => 'alice', AUTH_TYPE => 'Basic' } },
    { name => 'users from a file, groups from Python: not a member',
      path => '/feat/env/filegroup', user => 'bob', pass => 'bobpw',
      status => 401 },
    { name => 'a script that fails to import: 500, not let in',
      path => '/feat/env/authbroken/import', user => 'alice', pass => 'alicepw',
      status => 500, one => qr/PW0201/,
      log => qr/PW0201: .*err_import\.py.*failed to load/ },
    { name => 'a script without check_password: 500, not let in',
      path => '/feat/env/authbroken/nofunc', user => 'alice', pass => 'alicepw',
      status => 500,
      log => qr/PW0602: .*features\.py.*no function check_password/ },
    { name => 'AuthBasicProvider pywsgi without PyWSGIAuthScript: 500',
      path => '/feat/env/authbroken/noscript', user => 'alice',
      pass => 'alicepw', status => 500,
      log => qr/PW0603: .*no PyWSGIAuthScript/ },
    { name => 'Digest: right password', digest => 1,
      path => '/feat/env/authdigest', user => 'alice', pass => 'alicepw',
      env => { REMOTE_USER => 'alice', AUTH_TYPE => 'Digest' } },
    { name => 'Digest: wrong password', digest => 1,
      path => '/feat/env/authdigest', user => 'alice', pass => 'bobpw',
      status => 401 },
    { name => 'Digest: unknown user', digest => 1,
      path => '/feat/env/authdigest', user => 'carol', pass => 'x',
      status => 401 },
    { name => 'Digest: get_realm_hash raises', digest => 1,
      path => '/feat/env/authdigest', user => 'boom', pass => 'x',
      status => 500, log => qr/PW0600: .*$script.*get_realm_hash.*boom/ },
    { name => 'Digest: get_realm_hash returns an int', digest => 1,
      path => '/feat/env/authdigest', user => 'weird', pass => 'x',
      status => 500, log => qr/PW0601: .*$script.*get_realm_hash.*returned int/ },
);

for my $row (@auth_rows) {
    subtest "PyWSGIAuthScript: $row->{name}" => sub {
        my $offset = log_offset();
        my $res = curl(%$row);
        is($res->{status}, $row->{status} || 200, 'status')
            or diag(substr($res->{body}, 0, 300));
        if (($row->{status} || 200) != 200) {
            unlike($res->{body}, qr/static file|"environ"/,
                   'nothing of the resource');
        }
        like($res->{body}, $row->{body}, 'body') if $row->{body};
        like($res->{headers}{'www-authenticate'} // '', $row->{www_auth},
             'WWW-Authenticate') if $row->{www_auth};
        check_env(env_of($res), $row->{env}) if $row->{env};
        if ($row->{log}) {
            my $log = wait_for_log($offset, $row->{log});
            like($log, $row->{log}, 'the log line');
            my $one = $row->{one} || qr/PW06\d\d/;
            my @lines = $log =~ /^.*$one.*$/mg;
            is(scalar @lines, 1, 'one line') or diag($log);
        }
    };
}

subtest 'PyWSGIAuthScript: the environ the functions get' => sub {
    my $offset = log_offset();
    my $res = curl(path => '/feat/env/authapp/e?k=v', user => 'envdump',
                   pass => 'secret', headers => ['X-Extra: 1']);
    is($res->{status}, 200, 'status');
    my $log = wait_for_log($offset, qr/PWFEAT-AUTHENV \{/);
    my ($json) = $log =~ /PWFEAT-AUTHENV (\{.*\})/;
    my $env = decode_json_body($json // '') || {};
    check_env($env, {
        REQUEST_METHOD => 'GET', REQUEST_URI => '/feat/env/authapp/e?k=v',
        SCRIPT_NAME => '/feat/env', PATH_INFO => '/authapp/e',
        QUERY_STRING => 'k=v', REMOTE_ADDR => '127.0.0.1',
        HTTP_HOST => "127.0.0.1:$port", SERVER_NAME => qr/\S/,
        SERVER_PORT => "$port", SERVER_PROTOCOL => 'HTTP/1.1',
        AUTH_TYPE => 'Basic', 'wsgi.url_scheme' => 'http',
        'mod_pywsgi.version' => qr/^\d+\.\d+/,
        HTTP_AUTHORIZATION => undef, REMOTE_USER => undef,
    });
    unlike($log, qr/secret/, 'the password is nowhere in the log');
};

done_testing();
