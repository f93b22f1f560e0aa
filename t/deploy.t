# Several apps in one server (issue 4), in the shared test server:
# - name-based virtual hosts with different apps, told apart by Host;
# - the same app under several mounts is loaded once per child and
#   interpreter; PyWSGIInterpreter in a <VirtualHost> and a <Location>, and
#   interpreter= on the alias, each give an interpreter of its own;
# - a module-name clash: two apps importing each its own "clash_mod" are
#   isolated in two named interpreters, and share one (the first import
#   wins) in main;
# - a module that fails in a sub-interpreter says so and suggests main.
# Mounts: t/conf/pw_deploy.conf.in; apps: t/apps/deploy/.
#
# Requests that must reach the same child go on one keep-alive connection
# (a connection stays with one process under every MPM); each of those
# checks first that the connection really was kept.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use PWTest qw(decode_json_body log_offset wait_for_log);
use PWServer ();

my $port  = Apache::Test::vars('port');
my $vport = Apache::Test::vars('pw_deploy_port');

my $main_interp = sub { defined $_[0] && $_[0] == 0 };
my $sub_interp  = sub { defined $_[0] && $_[0] != 0 };

# [name, Host, path, { key => expected (string, or code ref) }]
my @vhost_rows = (
    ['a.deploy.test gets its own app at /', 'a.deploy.test', '/some/path',
     { app => 'site-a', server_name => 'a.deploy.test', script_name => '',
       path_info => '/some/path', interp => $main_interp }],
    ['b.deploy.test gets another app at /', 'b.deploy.test', '/',
     { app => 'site-b', server_name => 'b.deploy.test', script_name => '',
       interp => $main_interp }],
    ['Host with the port in it', "b.deploy.test:$vport", '/x',
     { app => 'site-b', server_name => 'b.deploy.test' }],
    ['the same app under /common in a', 'a.deploy.test', '/common/x',
     { app => 'common', server_name => 'a.deploy.test',
       script_name => '/common', interp => $main_interp }],
    ['the same app under /common in b', 'b.deploy.test', '/common',
     { app => 'common', server_name => 'b.deploy.test',
       script_name => '/common', interp => $main_interp }],
    ['interpreter= on an alias in a virtual host', 'b.deploy.test', '/b-private',
     { app => 'common', script_name => '/b-private', interp => $sub_interp }],
    ['PyWSGIInterpreter in <VirtualHost> (c)', 'c.deploy.test', '/',
     { app => 'site-a', server_name => 'c.deploy.test',
       interp => $sub_interp }],
    ['a main-server mount is inherited by a virtual host', 'a.deploy.test',
     '/env/inherited', { app => 'script' }],
);

plan tests => @vhost_rows + 4;

sub check_fields {
    my ($data, $want) = @_;
    for my $k (sort keys %$want) {
        my $w = $want->{$k};
        if (ref $w eq 'CODE') {
            ok($w->($data->{$k}), "$k is right")
                or diag("$k: " . ($data->{$k} // 'undef'));
        }
        else {
            is($data->{$k}, $w, "$k is $w");
        }
    }
}

# GETs on one keep-alive connection; returns the decoded bodies, or undef
# (having failed a test) when a response was not 200 JSON or the server
# did not keep the connection (then the "same child" premise is gone).
sub same_child_gets {
    my ($p, @reqs) = @_;
    my $conn = PWServer::Conn->new($p);
    my @out;
    for my $i (0 .. $#reqs) {
        my ($host, $path) = @{ $reqs[$i] };
        my $res = $conn->request($path, host => $host);
        my $data = $res->{status} == 200 && decode_json_body($res->{body});
        unless ($data) {
            fail("GET $path (Host $host): 200 with JSON");
            diag("status $res->{status}, error "
                 . ($res->{error} // 'none') . ", body: $res->{body}");
            return;
        }
        if ($i > 0 && !$res->{reused}) {
            fail("GET $path (Host $host) went on the kept-alive connection");
            return;
        }
        push @out, $data;
    }
    $conn->disconnect;
    return @out;
}

for my $row (@vhost_rows) {
    my ($name, $host, $path, $want) = @$row;
    subtest $name => sub {
        my $res = PWServer::http_get($vport, $path, host => $host);
        is($res->{status}, 200, "GET $path with Host: $host") or do {
            diag($res->{error} // $res->{body});
            return;
        };
        my $data = decode_json_body($res->{body});
        ok($data, 'JSON body') or return diag($res->{body});
        check_fields($data, $want);
    };
}

subtest 'an app mounted several times is loaded once per child and interpreter' => sub {
    my @r = same_child_gets($vport,
        ['a.deploy.test', '/common/1'], ['b.deploy.test', '/common/2'],
        ['a.deploy.test', '/common/3'], ['c.deploy.test', '/common/4'],
        ['b.deploy.test', '/b-private'])
        or return;
    my ($a1, $b1, $a2, $c1, $bp) = @r;
    is(scalar(keys %{{ map { $_->{pid} => 1 } @r }}), 1, 'one child served all');
    is($b1->{loaded}, $a1->{loaded}, 'virtual hosts a and b share one load');
    is($a2->{loaded}, $a1->{loaded}, 'a second request does not load it again');
    isnt($c1->{loaded}, $a1->{loaded}, 'c (PyWSGIInterpreter site_c) loads its own');
    isnt($bp->{loaded}, $a1->{loaded}, 'interpreter=site_b loads its own');
    isnt($bp->{loaded}, $c1->{loaded}, '... and not the same as site_c');
    ok($c1->{interp} != $bp->{interp}, 'site_c and site_b are two interpreters')
        or diag("interp ids: $c1->{interp} $bp->{interp}");
};

subtest 'module-name clash: isolated by named interpreters, shared in main' => sub {
    my @r = same_child_gets($port,
        [undef, '/deploy/clash/one-named'], [undef, '/deploy/clash/two-named'],
        [undef, '/deploy/clash/one-main'],  [undef, '/deploy/clash/two-main'],
        [undef, '/deploy/clash/one-named'])
        or return;
    my ($one, $two, $one_main, $two_main, $one_again) = @r;
    is($one->{app}, 'clash_one', 'interpreter=one runs clash_one/app.py');
    is($one->{clash_mod}, 'one', '... which sees its own clash_mod');
    like($one->{clash_mod_file}, qr{/clash_one/clash_mod\.py$}, '... from its own directory');
    is($two->{app}, 'clash_two', 'interpreter=two runs clash_two/app.py');
    is($two->{clash_mod}, 'two', '... which sees its own clash_mod');
    like($two->{clash_mod_file}, qr{/clash_two/clash_mod\.py$}, '... from its own directory');
    ok($one->{interp} && $two->{interp} && $one->{interp} != $two->{interp},
       'two sub-interpreters, neither of them main')
        or diag("interp ids: " . join(' ', map { $_->{interp} // 'undef' } @r));
    is($one_again->{clash_mod_loaded}, $one->{clash_mod_loaded},
       "interpreter one's clash_mod stayed its own after main imported one");

    is($one_main->{interp}, 0, 'clash_one/app.py without interpreter= runs in main');
    is($two_main->{interp}, 0, 'so does clash_two/app.py');
    is($two_main->{clash_mod_loaded}, $one_main->{clash_mod_loaded},
       'in main both apps get the same clash_mod module (the first import wins)');
    like($one_main->{clash_mod}, qr/^(one|two)$/, "main's clash_mod is one of them")
        or diag("clash_mod: $one_main->{clash_mod}");
    isnt($one_main->{clash_mod_loaded}, $one->{clash_mod_loaded},
         "main's clash_mod is not interpreter one's");
};

subtest 'PyWSGIInterpreter in a <Location>' => sub {
    my @r = same_child_gets($port, [undef, '/deploy/common'],
                            [undef, '/deploy/located/x'])
        or return;
    my ($plain, $located) = @r;
    is($plain->{interp}, 0, '/deploy/common runs in main');
    ok($located->{interp}, '/deploy/located runs in a sub-interpreter')
        or diag("interp: " . ($located->{interp} // 'undef'));
    isnt($located->{loaded}, $plain->{loaded},
         'the same file is loaded separately there');
};

subtest 'a module that cannot work in a sub-interpreter' => sub {
    my $res = PWServer::http_get($port, '/deploy/needs-main/main');
    is($res->{status}, 200, 'in main: 200');
    is($res->{body}, "main interpreter only\n", 'in main: its body');

    my $offset = log_offset();
    $res = PWServer::http_get($port, '/deploy/needs-main/sub');
    is($res->{status}, 500, 'with interpreter=one: 500');
    unlike($res->{body}, qr/Traceback|ImportError/, 'no traceback to the client');
    my $log = wait_for_log($offset, qr/PW0202/, 3);
    like($log, qr{PW0201: /deploy/needs-main/sub: application '[^']*needs_main\.py' failed to load in interpreter 'one'},
         'PW0201 names the URL, app and interpreter');
    like($log, qr/PW0303:.*ImportError: module needs_main does not support loading in subinterpreters/,
         'the traceback shows the reason');
    like($log, qr/PW0202: .*needs_main\.py' runs in sub-interpreter 'one'.*PyWSGIInterpreter main/,
         'PW0202 says it ran in a sub-interpreter and suggests main');
};
