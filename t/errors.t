# Misbehaving apps (t/apps/errors.py, t/apps/err_import.py): each gives the
# client Apache's plain 500 page -- no traceback, no paths -- and the error log
# one line `PWnnnn: <uri>: application '<target>' <cause>`; the server keeps
# serving afterwards. Also: a failure after the headers went out, and where
# print()/sys.stderr/wsgi.errors end up.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use PWTest qw(raw_request decode_json_body log_offset wait_for_log);

my $top = Apache::Test::vars('top_dir');

# {path, cause => qr// for the rest of the PW line after "application '...'",
#  tb => qr// that some PW0303 traceback line must match}
my @error_rows = (
    { path => '/err/raises',
      cause => qr/raised:? ZeroDivisionError: division by zero/,
      tb => qr/PW0303:.*errors\.py", line \d+, in raises/ },
    { path => '/err/str_items',
      cause => qr/returned an item of type str, expected bytes/ },
    { path => '/err/non_iterable',
      cause => qr/\bint\b.*iterable|iterable.*\bint\b/ },
    { path => '/err/no_start_response',
      cause => qr/start_response was not called|before calling start_response/ },
    { path => '/err/no_start_response_empty',
      cause => qr/start_response was not called|without calling start_response/ },
    { path => '/err/bad_status',
      cause => qr/start_response\b.*status\b.*twohundred OK/ },
    { path => '/err/header_crlf',
      cause => qr/start_response\b.*X-Injected.*\b(CR|LF)\b/ },
    { path => '/err/header_name_type',
      cause => qr/start_response\b.*X-Bytes-Name.*\bbytes\b/ },
    { path => '/err/twice',
      cause => qr/start_response\b.*(second time|already|twice|again)/i },
);

plan tests => 3 * @error_rows + 3;

# Nothing of Python's or the checkout's may reach the client.
my $leak = qr/Traceback|File "|\.py\b|Error:|PWTEST|PW\d{4}|\Q$top\E/;

sub server_still_serves {
    my $res = GET '/env/after-error';
    my $data = $res->code == 200 && decode_json_body($res->content);
    return $data && $data->{app} eq 'script';
}

for my $row (@error_rows) {
    my $path = $row->{path};
    my $offset = log_offset();
    my $res = GET $path;

    subtest "$path: plain 500 to the client" => sub {
        is($res->code, 500, 'status');
        like($res->content, qr/Internal Server Error/, "Apache's error page");
        unlike($res->content, $leak, 'no traceback or path in the body');
    };

    my $line = qr/PW\d{4}: \Q$path\E: application '[^']+' .*?$row->{cause}/;
    my $log = wait_for_log($offset, $line);
    subtest "$path: error log names the cause" => sub {
        my @lines = grep { $_ =~ $line } split /\n/, $log;
        is(scalar @lines, 1, 'exactly one PW line with the cause')
            or diag("log since the request:\n$log");
        like($log, $row->{tb}, 'traceback lines') if $row->{tb};
    };

    ok(server_still_serves(), "$path: a normal request still succeeds");
}

subtest 'app failing at import' => sub {
    my $offset = log_offset();
    my $res = GET '/err/import';
    is($res->code, 500, 'status');
    unlike($res->content, $leak, 'no traceback or path in the body');
    my $log = wait_for_log($offset, qr/in <module>/);
    like($log, qr/PW\d{4}: \/err\/import: application '[^']+' failed to load/,
         'failed to load line');
    like($log, qr/PW0303: .*err_import\.py", line \d+, in <module>/,
         'traceback lines');
    ok(server_still_serves(), 'a normal request still succeeds');
};

subtest 'exception after the headers went out aborts the response' => sub {
    my $offset = log_offset();
    my $res = raw_request(path => '/err/stream_fail');
    is($res->{status}, 200, 'headers were sent: status 200');
    ok(!$res->{complete}, 'response is truncated (no terminating chunk)')
        or diag('got a complete body of ' . length($res->{body}) . ' bytes');
    my $log = wait_for_log($offset, qr/PWTEST failure after headers/);
    like($log, qr/PW\d{4}: \/err\/stream_fail: application '[^']+' .*raised\b.*RuntimeError: PWTEST failure after headers/,
         'error log names the cause');
    ok(server_still_serves(), 'a normal request still succeeds');
};

subtest 'print, sys.stderr and wsgi.errors go to the error log' => sub {
    my $offset = log_offset();
    my $res = GET '/err/chatty';
    is($res->code, 200, 'status');
    is($res->content, "chatty ok\n", 'body');
    my $log = wait_for_log($offset, qr/PWTEST-wsgierrors-marker/);
    like($log, qr/\[pywsgi:warn\][^\n]*PWTEST-stdout-marker/,
         'stdout at warn level');
    like($log, qr/\[pywsgi:error\][^\n]*PWTEST-stderr-marker/,
         'sys.stderr at error level');
    like($log, qr/\[pywsgi:error\][^\n]*PWTEST-wsgierrors-marker/,
         'wsgi.errors at error level');
};
