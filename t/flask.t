# A real framework: t/apps/flask_app.py mounted at /flask (script file).
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET POST);
use HTTP::Request::Common ();
use PWTest qw(decode_json_body venv_cannot_import python_version);

# {name, request => sub returning an HTTP::Response, status, type (qr//),
#  body: string (exact), qr// (match) or hash/array (JSON, compared deeply)}
my @rows = (
    { name => 'index route',
      request => sub { GET '/flask/' }, status => 200,
      type => qr{^text/html}, body => "flask index\n" },
    { name => 'route with a variable',
      request => sub { GET '/flask/hello/world' }, status => 200,
      body => "hello world\n" },
    { name => 'url_for builds on SCRIPT_NAME',
      request => sub { GET '/flask/urlfor' }, status => 200,
      body => '/flask/hello/x' },
    { name => 'query string',
      request => sub { GET '/flask/query?a=1&b=x%20y&a=2' }, status => 200,
      type => qr{^application/json},
      body => { args => { a => ['1', '2'], b => ['x y'] } } },
    { name => 'form POST (application/x-www-form-urlencoded)',
      request => sub { POST '/flask/form', [name => "Zo\xc3\xab", n => '1', n => '2'] },
      status => 200, type => qr{^application/json},
      body => { mimetype => 'application/x-www-form-urlencoded',
                form => { name => ["Zo\x{eb}"], n => ['1', '2'] } } },
    { name => 'JSON POST',
      request => sub {
          POST '/flask/json', content_type => 'application/json',
              content => '{"b": [1, 2], "a": {"x": null}}';
      },
      status => 200, type => qr{^application/json},
      body => { received => { a => { x => undef }, b => [1, 2] },
                keys => ['a', 'b'] } },
    { name => "Flask's own 404",
      request => sub { GET '/flask/no/such/route' }, status => 404,
      # werkzeug says "on the server", Apache "on this server".
      body => qr/requested URL was not found on the server\. If you entered/ },
    { name => "Flask's 405 for a GET on a POST route",
      request => sub { GET '/flask/form' }, status => 405,
      body => qr/Method Not Allowed/ },
);

# Debian's Flask, on the Python under test (t/run-pythons): skipped, with
# the reason, where it does not import.
if (my $why = venv_cannot_import('flask')) {
    plan skip_all => "Debian's Flask does not import on Python "
                     . python_version() . ": $why";
}
plan tests => scalar @rows;

for my $row (@rows) {
    subtest $row->{name} => sub {
        my $res = $row->{request}->();
        is($res->code, $row->{status}, 'status')
            or diag(substr($res->as_string, 0, 500));
        like($res->header('Content-Type') // '', $row->{type}, 'content type')
            if $row->{type};
        my $want = $row->{body};
        if (ref $want eq 'Regexp') {
            like($res->content, $want, 'body');
        }
        elsif (ref $want) {
            my $got = decode_json_body($res->decoded_content);
            is_deeply($got, $want, 'JSON body')
                or diag($res->content);
        }
        else {
            is($res->content, $want, 'body');
        }
    };
}
