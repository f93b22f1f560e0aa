# Real frameworks through real HTTP (issue 3): Flask (t/apps/flask_p3.py:
# forms, JSON, multipart upload, streaming with stream_with_context,
# send_file through wsgi.file_wrapper, errors) and a small Django project
# (t/django_site: a view, a form POST with CSRF, Django's 404). Each row
# runs twice: on the plain mount and inside wsgiref.validate.validator
# (/p3/v/..., t/lib/pwtest/validated.py); a validator complaint in the log
# fails the row. Mounts: t/conf/pep3333.conf.in.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Digest::MD5 qw(md5_hex);
use HTTP::Request::Common qw(GET POST);
use LWP::UserAgent ();
use Time::HiRes qw(time sleep);
use PWTest qw(decode_json_body log_offset log_since wait_for_log venv_cannot_import python_version);
use PWRaw qw(request_text);

my $top  = Apache::Test::vars('top_dir');
my $port = Apache::Test::vars('port');
my $base = "http://127.0.0.1:$port";
my $ua = LWP::UserAgent->new(timeout => 15, max_redirect => 0);

my $flask_src = do {
    open my $fh, '<', "$top/t/apps/flask_p3.py" or die "flask_p3.py: $!";
    binmode $fh;
    local $/; <$fh>;
};
my $upload = join('', map { chr } 0 .. 255) x 800;    # 200 KiB, every byte
my $validator_complaint =
    qr/WSGIWarning|AssertionError|validate\.py|garbage collected without being closed/;

# Flask rows: {name, request => sub($prefix) returning an HTTP::Request,
# status, type => qr//, body => string, qr// or hash/array (JSON), check =>
# sub($response, $prefix) for more, log => qr// that must appear,
# plain_only => why the row cannot run inside wsgiref.validate}.
# werkzeug reads a JSON body with wsgi.input.read() (no size) whenever
# wsgi.input_terminated is true; wsgiref.validate accepts only read(size),
# as PEP 3333 writes it: those rows run on the plain mount only.
my $werkzeug_read = 'werkzeug calls wsgi.input.read() without a size';
my @flask_rows = (
    { name => 'index', request => sub { GET "$_[0]/" }, status => 200,
      type => qr{^text/html}, body => "flask p3 index\n" },
    { name => 'form page (template, url_for under the mount)',
      request => sub { GET "$_[0]/form" }, status => 200,
      check => sub { like($_[0]->content, qr{action="\Q$_[1]\E/form"}, 'form action') } },
    { name => 'form POST',
      request => sub { POST "$_[0]/form",
                       [name => "Zo\xc3\xab", colour => 'red', colour => 'blue'] },
      status => 200, type => qr{^application/json},
      body => { name => "Zo\x{eb}", colours => ['red', 'blue'],
                mimetype => 'application/x-www-form-urlencoded' } },
    { name => 'form POST without the required field: abort(400)',
      request => sub { POST "$_[0]/form", [colour => 'red'] },
      status => 400, body => qr/name is required/ },
    { name => 'JSON POST',
      request => sub { POST "$_[0]/json", Content_Type => 'application/json',
                       Content => '{"a": [1, 2, {"b": null}], "c": "\u00e9"}' },
      status => 201, type => qr{^application/json},
      body => { received => { a => [1, 2, { b => undef }], c => "\x{e9}" },
                type => 'dict' },
      plain_only => $werkzeug_read },
    { name => 'JSON POST that is not JSON: 400',
      request => sub { POST "$_[0]/json", Content_Type => 'application/json',
                       Content => '{not json' },
      status => 400, body => qr/Bad Request/, plain_only => $werkzeug_read },
    { name => 'multipart upload: two files and a field',
      request => sub {
          POST "$_[0]/upload", Content_Type => 'form-data',
              Content => [note => 'two files',
                          data => [undef, 'data.bin',
                                   'Content-Type' => 'application/octet-stream',
                                   Content => $upload],
                          text => [undef, "caf\xc3\xa9.txt",
                                   'Content-Type' => 'text/plain',
                                   Content => "plain text\n"]];
      },
      status => 200,
      body => { form => { note => ['two files'] },
                files => {
                    data => { filename => 'data.bin', length => length $upload,
                              md5 => md5_hex($upload),
                              mimetype => 'application/octet-stream' },
                    text => { filename => "caf\x{e9}.txt", length => 11,
                              md5 => md5_hex("plain text\n"),
                              mimetype => 'text/plain' } } } },
    { name => 'streaming response (stream_with_context)',
      request => sub { GET "$_[0]/stream?n=4" }, status => 200,
      check => sub {
          my ($res, $prefix) = @_;
          # request.path inside the app: without the mount (SCRIPT_NAME).
          my @parts = $res->content =~ /^\/stream part (\d) /mg;
          is("@parts", '0 1 2 3', 'four parts, request usable in the generator');
          is($res->header('Content-Length'), undef, 'no Content-Length: streamed');
      } },
    { name => 'send_file (wsgi.file_wrapper)',
      request => sub { GET "$_[0]/file" }, status => 200,
      type => qr{^text/x-python}, body => $flask_src,
      check => sub {
          is($_[0]->header('Content-Length'), length $flask_src, 'Content-Length');
          ok($_[0]->header('ETag'), 'ETag');
      } },
    { name => 'send_file conditional: If-None-Match gives 304',
      request => sub {
          my $prefix = shift;
          my $etag = $ua->request(GET "$prefix/file")->header('ETag') // 'none';
          GET "$prefix/file", 'If-None-Match' => $etag;
      },
      status => 304, body => '' },
    { name => 'send_file with a Range: 206',
      request => sub { GET "$_[0]/file", Range => 'bytes=10-29' },
      status => 206, body => substr($flask_src, 10, 20),
      check => sub {
          is($_[0]->header('Content-Range'),
             'bytes 10-29/' . length $flask_src, 'Content-Range');
      } },
    { name => 'abort(400)', request => sub { GET "$_[0]/abort" },
      status => 400, body => qr/Bad Request/ },
    { name => 'an exception in a view: Flask\'s 500, traceback in the log',
      request => sub { GET "$_[0]/boom" }, status => 500,
      body => qr/Internal Server Error/,
      check => sub { unlike($_[0]->content, qr/PWTEST|Traceback/, 'no traceback to the client') },
      log => qr/\[pywsgi:error\].*RuntimeError: PWTEST flask boom/ },
    { name => "Flask's 404", request => sub { GET "$_[0]/no/such" },
      status => 404, body => qr/Not Found/ },
    { name => 'url_for', request => sub { GET "$_[0]/urlfor" }, status => 200,
      check => sub { is($_[0]->content, "$_[1]/stream?n=2", 'URL under SCRIPT_NAME') } },
);

my @validated_flask_rows = grep { !$_->{plain_only} } @flask_rows;
plan tests => @flask_rows + @validated_flask_rows + 2 + 2 * 5;

# Debian's Flask and Django, on the Python under test (t/run-pythons): each
# part is skipped, with the reason, where its framework does not import
# (Debian 12's Django 3.2 needs zoneinfo, 3.9+, and cgi, gone in 3.13).
my $no_flask  = venv_cannot_import('flask');
my $no_django = venv_cannot_import('django.core.handlers.wsgi', 'django.http');
my $ver = python_version();

# Runs $code (which makes requests) and fails if the validator complained in
# the error log meanwhile.
sub no_validator_complaint {
    my ($offset) = @_;
    sleep 0.05;
    my @bad = grep { /$validator_complaint/ } split /\n/, log_since($offset);
    is(scalar @bad, 0, 'no validator warning or assertion in the log')
        or diag(join "\n", @bad[0 .. ($#bad < 20 ? $#bad : 20)]);
}

SKIP: {
skip "Debian's Flask does not import on Python $ver: $no_flask",
     @flask_rows + @validated_flask_rows + 2 if $no_flask;

for my $prefix ('/p3/flask', '/p3/v/flask') {
    my $validated = $prefix =~ m{/v/};
    for my $row ($validated ? @validated_flask_rows : @flask_rows) {
        subtest "Flask $prefix: $row->{name}" => sub {
            my $offset = log_offset();
            my $req = $row->{request}->("$base$prefix");
            my $res = $ua->request($req);
            is($res->code, $row->{status}, 'status')
                or diag(substr($res->as_string, 0, 800));
            like($res->header('Content-Type') // '', $row->{type}, 'content type')
                if $row->{type};
            my $want = $row->{body};
            if (!defined $want) {
            }
            elsif (ref $want eq 'Regexp') {
                like($res->content, $want, 'body');
            }
            elsif (ref $want) {
                is_deeply(decode_json_body($res->decoded_content), $want, 'JSON body')
                    or diag($res->content);
            }
            else {
                ok($res->content eq $want, 'body')
                    or diag('got ' . length($res->content) . ' bytes: '
                            . substr($res->content, 0, 200));
            }
            $row->{check}->($res, $prefix) if $row->{check};
            like(wait_for_log($offset, $row->{log}), $row->{log}, 'error log')
                if $row->{log};
            no_validator_complaint($offset) if $validated;
        };
    }
}

# Streaming through Flask on the wire: the first part arrives before the
# last is made.
for my $prefix ('/p3/flask', '/p3/v/flask') {
    subtest "Flask $prefix: stream_with_context is streamed, not buffered" => sub {
        my $c = PWRaw->new or return fail("connect: $!");
        my $t0 = time;
        $c->send(request_text('GET', "$prefix/stream?n=3&sleep=0.4", []));
        my $res = $c->response;
        is($res->{status}, 200, 'status');
        is($res->{framing}, 'chunked', 'chunked');
        my @chunks = @{ $res->{chunks} };
        ok(@chunks >= 3, scalar(@chunks) . ' chunks') or return;
        my ($last_made) = $chunks[-1][0] =~ /part 2 ([\d.]+)/;
        ok(defined $last_made && $chunks[0][1] < $last_made,
           sprintf('part 0 arrived %.2f s before part 2 was made',
                   ($last_made // 0) - $chunks[0][1]));
    };
}

}    # SKIP Flask

# ---------------------------------------------------------------------------
# Django: a view, CSRF (GET the form, POST back with the cookie and the
# hidden field; without them 403), a 404, the mount in request.path.
SKIP: {
skip "Debian's Django does not import on Python $ver: $no_django", 2 * 5
    if $no_django;

for my $prefix ('/p3/django', '/p3/v/django') {
    my $offset;
    subtest "Django $prefix: a view" => sub {
        $offset = log_offset();
        my $res = $ua->request(GET "$base$prefix/");
        is($res->code, 200, 'status') or diag($res->as_string);
        is($res->content, "django index path=$prefix/ script=$prefix\n",
           'body: path and SCRIPT_NAME');
    };

    my ($cookie, $token);
    subtest "Django $prefix: GET the form: csrftoken cookie and hidden field" => sub {
        my $res = $ua->request(GET "$base$prefix/form/");
        is($res->code, 200, 'status') or diag($res->as_string);
        ($cookie) = ($res->header('Set-Cookie') // '') =~ /csrftoken=([^;\s]+)/;
        ($token) = $res->content =~ /name="csrfmiddlewaretoken" value="([^"]+)"/;
        ok($cookie, 'csrftoken cookie set');
        ok($token, 'hidden csrfmiddlewaretoken field');
        like($res->content, qr{action="\Q$prefix\E/form/"}, 'form action under the mount');
    };

    subtest "Django $prefix: POST with the CSRF token: 200" => sub {
        my $res = $ua->request(POST "$base$prefix/form/",
                               Cookie => "csrftoken=" . ($cookie // ''),
                               Content => [csrfmiddlewaretoken => $token // '',
                                           name => "Zo\xc3\xab"]);
        is($res->code, 200, 'status') or diag(substr($res->as_string, 0, 600));
        is_deeply(decode_json_body($res->decoded_content),
                  { name => "Zo\x{eb}", method => 'POST' }, 'form data');
    };

    subtest "Django $prefix: POST without the token: 403" => sub {
        my $res = $ua->request(POST "$base$prefix/form/",
                               Cookie => "csrftoken=" . ($cookie // ''),
                               Content => [name => 'x']);
        is($res->code, 403, 'status');
        like($res->content, qr/CSRF verification failed/, "Django's CSRF page");
        my $res2 = $ua->request(POST "$base$prefix/form/",
                                Content => [csrfmiddlewaretoken => $token // '',
                                            name => 'x']);
        is($res2->code, 403, 'token without the cookie: 403 too');
    };

    subtest "Django $prefix: 404" => sub {
        my $res = $ua->request(GET "$base$prefix/no/such/page/");
        is($res->code, 404, 'status');
        like($res->content, qr/<h1>Not Found<\/h1>/, "Django's 404 page");
        no_validator_complaint($offset) if $prefix =~ m{/v/};
    };
}
}    # SKIP Django
