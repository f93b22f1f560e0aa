# Shared hosting, handler part (issue 16): tenants drop their own apps in.
# Two name-based virtual hosts, alice.test and bob.test (t/conf/
# hosting.conf.in), with document roots t/hosting/alice and t/hosting/bob and
# "AllowOverride FileInfo Options AuthConfig".  This file writes the tenants'
# apps and .htaccess files as a tenant would, and checks through HTTP that:
# - an app.wsgi goes live through .htaccess alone (AddHandler pywsgi-script
#   .wsgi + Options +ExecCGI), with SCRIPT_NAME the file's URL and PATH_INFO
#   what follows it; SetHandler in <Directory> and in <Files> work too;
# - rewriting the file (a new mtime) reloads it;
# - ExecCGI off gives 403 and a PW0700 line saying so; a missing file 404, a
#   directory 403, as Apache gives them;
# - alice's and bob's apps each import a "util" of their own and, served by
#   one child, do not see each other's (one interpreter per virtual host);
# - a .htaccess with a process-wide PyWSGI directive gives 500 and a log
#   line naming the fix, while both tenants keep being served;
# - PyWSGIRequestTimeout in a host stops its handler-served files (504);
# - each tenant's status page (PyWSGIStatus Host) lists her handler-served
#   files with their requests (JSON, Prometheus, HTML), none of the other's,
#   a ninth file server-wide too (not lost in "(other)").
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Path qw(make_path remove_tree);
use PWTest qw(decode_json_body log_offset mpm wait_for_log);
use PWPrivate ();
use PWServer ();
use POSIX ();

my $vport = Apache::Test::vars('pw_hosting_port');
my $root  = "$FindBin::Bin/hosting";

plan tests => 22;

sub spew {
    my ($file, $text, $mtime) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh or die "$file: $!";
    chmod 0644, $file;
    utime($mtime, $mtime, $file) if defined $mtime;
}

# A tenant's app: reports which util it imported and what it was given.
# Its helper is "util" unless said otherwise: the apps of one virtual host
# share an interpreter, so its other directories use other names.
sub app_text {
    my ($version, $helper) = @_;
    $helper //= 'util';
    return <<"EOF_APP";
import json
import os
import sys

import $helper as util

VERSION = "$version"
try:        # CPython 3.11's private module; 0 is the main interpreter
    import _xxsubinterpreters as _subinterp
    INTERP = int(_subinterp.get_current())
except ImportError:
    INTERP = None


def application(environ, start_response):
    body = json.dumps(dict(
        who=util.WHO, util_file=util.__file__, version=VERSION,
        pid=os.getpid(), uid=os.getuid(), interp=INTERP, name=__name__,
        script_name=environ["SCRIPT_NAME"], path_info=environ["PATH_INFO"],
    )).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
EOF_APP
}

my $live = "AddHandler pywsgi-script .wsgi\nOptions +ExecCGI\n";

# Clean slate: what an earlier (killed) run left behind.
for my $t (qw(alice bob carol)) {
    unlink glob("$root/$t/*.wsgi"), "$root/$t/.htaccess";
    remove_tree(grep { -d } glob("$root/$t/*"));
}

sub get_json {
    my ($host, $path, $conn) = @_;
    my $res = $conn ? $conn->request($path, host => $host)
                    : PWServer::http_get($vport, $path, host => $host);
    my $data = $res->{status} == 200 ? decode_json_body($res->{body}) : undef;
    return ($res, $data);
}

my $t0 = time;
spew("$root/alice/app.wsgi", app_text('v1'), $t0 - 100);
spew("$root/bob/app.wsgi",   app_text('v1'), $t0 - 100);

subtest 'without .htaccess the handler is not set: no app runs' => sub {
    my $res = PWServer::http_get($vport, '/app.wsgi', host => 'alice.test');
    unlike($res->{body}, qr/^\{"who"/, 'the app did not run');
};

spew("$root/alice/.htaccess", $live);
spew("$root/bob/.htaccess",   $live);

subtest "alice's app.wsgi goes live through .htaccess alone" => sub {
    my ($res, $d) = get_json('alice.test', '/app.wsgi/some/path');
    is($res->{status}, 200, 'GET /app.wsgi/some/path: 200')
        or return diag($res->{error} // $res->{body});
    is($d->{who}, 'alice', 'it imported its own util');
    is($d->{script_name}, '/app.wsgi', 'SCRIPT_NAME is the file\'s URL');
    is($d->{path_info}, '/some/path', 'PATH_INFO is what follows it');
    like($d->{name}, qr/^_pywsgi_[0-9a-f]{32}$/, 'module name unique per file');
    ok(defined $d->{interp} && $d->{interp} != 0,
       'runs in a sub-interpreter (its virtual host\'s)')
        or diag('interp: ' . ($d->{interp} // 'undef'));
    ($res, $d) = get_json('alice.test', '/app.wsgi');
    is($res->{status}, 200, 'GET /app.wsgi: 200');
    is($d->{path_info}, '', '... PATH_INFO empty');
};

subtest 'alice and bob, one child, same module names: not shared' => sub {
    my $conn = PWServer::Conn->new($vport);
    my @seen;
    for my $host (qw(alice.test bob.test alice.test bob.test)) {
        my ($res, $d) = get_json($host, '/app.wsgi', $conn);
        is($res->{status}, 200, "GET /app.wsgi on $host: 200")
            or return diag($res->{error} // $res->{body});
        ok($res->{reused}, '... on the kept-alive connection')
            if @seen;
        push @seen, $d;
    }
    my ($a1, $b1, $a2, $b2) = @seen;
    is(scalar(keys %{{ map { $_->{pid} => 1 } @seen }}), 1, 'one child served all');
    is($a1->{who}, 'alice', "alice's app sees alice's util");
    is($b1->{who}, 'bob', "bob's app sees bob's util, not alice's");
    like($b1->{util_file}, qr{/hosting/bob/util\.py$}, '... from bob\'s directory');
    is($a2->{who}, 'alice', 'and alice still sees her own');
    is($b2->{who}, 'bob', 'and bob his');
    isnt($a1->{interp}, $b1->{interp}, 'two interpreters, one per virtual host');
    $conn->disconnect;
};

# A tenant's status page (PyWSGIStatus Host in her <VirtualHost>) lists her
# handler-served files with their requests, in every format, and nothing of
# the other tenant's.
sub tenant_status {
    my ($host) = @_;
    my %out;
    my $res = PWServer::http_get($vport, '/my-status?format=json', host => $host);
    $out{json_status} = $res->{status};
    my $j = $res->{status} == 200 ? decode_json_body($res->{body}) : undef;
    $out{json} = { map { $_->{app} => $_->{requests} } @{ ($j || {})->{apps} || [] } };
    $res = PWServer::http_get($vport, '/my-status?format=prometheus', host => $host);
    my %prom;
    while ($res->{body} =~ /^pywsgi_requests_total\{app="([^"]*)"[^}]*\} (\d+)$/mg) {
        $prom{$1} += $2;
    }
    $out{prom} = \%prom;
    $res = PWServer::http_get($vport, '/my-status', host => $host);
    $out{html} = { map { $_ => 1 } $res->{body} =~ /tr class="pywsgi-app[^"]*" data-app="([^"]*)"/g };
    return \%out;
}

subtest "a tenant's status page lists her handler-served files, not the other's" => sub {
    my ($alice, $bob) = ("$root/alice/app.wsgi", "$root/bob/app.wsgi");
    my $before = tenant_status('alice.test');
    is($before->{json_status}, 200, "alice's /my-status?format=json: 200");
    my ($res) = get_json('alice.test', '/app.wsgi');
    is($res->{status}, 200, 'one more request to alice\'s app.wsgi');
    my ($rb) = get_json('bob.test', '/app.wsgi');
    is($rb->{status}, 200, 'and one to bob\'s');
    my $a = tenant_status('alice.test');
    ok(defined $a->{json}{$alice}, "JSON names $alice")
        or diag('apps: ' . join(', ', sort keys %{ $a->{json} }));
    is($a->{json}{$alice}, ($before->{json}{$alice} // 0) + 1, '... and counted that request');
    cmp_ok($a->{json}{$alice} // 0, '>=', 5, '... and the earlier ones');
    ok(exists $a->{json}{"$root/alice/alias_app.py"}, 'the host\'s PyWSGIScriptAlias app too');
    ok(!exists $a->{json}{$bob}, "not bob's app.wsgi");
    ok(defined $a->{prom}{$alice}, "Prometheus: pywsgi_requests_total for it");
    is($a->{prom}{$alice} // -1, $a->{json}{$alice} // -2, '... the same count');
    ok(!exists $a->{prom}{$bob}, "Prometheus: not bob's");
    ok($a->{html}{$alice}, 'HTML: a row for it');
    ok(!$a->{html}{$bob}, "HTML: none for bob's");
    my $b = tenant_status('bob.test');
    ok(defined $b->{json}{$bob}, "bob's page names his app.wsgi");
    ok(!exists $b->{json}{$alice} && !exists $b->{prom}{$alice} && !$b->{html}{$alice},
       "and nothing of alice's, in any format");
    ok(!exists $b->{json}{"$root/alice/alias_app.py"}, "nor her alias app");
};

subtest 'interpreter=%{SERVER} on an alias: the host\'s interpreter' => sub {
    my $conn = PWServer::Conn->new($vport);
    my ($r1, $file) = get_json('alice.test', '/app.wsgi', $conn);
    my ($r2, $alias) = get_json('alice.test', '/alias-app', $conn);
    my ($r3, $bob) = get_json('bob.test', '/app.wsgi', $conn);
    $conn->disconnect;
    ok($file && $alias && $bob, 'three JSON answers') or return;
    ok($r2->{reused} && $r3->{reused}, 'on one connection (one child)');
    is($alias->{interp}, $file->{interp},
       "the alias runs in alice's handler files' interpreter");
    isnt($alias->{interp}, $bob->{interp}, "not in bob's");
};

subtest 'concurrent first requests make a host\'s interpreter once' => sub {
    spew("$root/carol/app.wsgi", app_text('carol'));
    spew("$root/carol/.htaccess", $live);
    # 8 clients at once, each on a connection of its own: under worker and
    # event, threads of one child race to make carol's interpreter.
    my @kids;
    for my $i (1 .. 8) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my ($res, $d) = get_json('carol.test', '/app.wsgi');
            POSIX::_exit($d && $d->{who} eq 'carol' ? 0 : 1);
        }
        push @kids, $pid;
    }
    my $ok = 0;
    for my $pid (@kids) {
        waitpid $pid, 0;
        $ok++ if $? == 0;
    }
    is($ok, 8, 'all 8 got carol\'s app');
    my ($res, $d) = get_json('carol.test', '/app.wsgi');
    is($d && $d->{who}, 'carol', 'and it keeps answering');
};

subtest 'PyWSGIInterpreter %{RESOURCE}: one interpreter per file' => sub {
    make_path("$root/alice/perfile");
    spew("$root/alice/perfile/.htaccess", $live);
    # Each file marks a module both import; in one interpreter the second
    # would see the first's mark.
    spew("$root/alice/perfile/marks.py", "seen = []\n");
    for my $f (qw(one two)) {
        spew("$root/alice/perfile/$f.wsgi", <<"EOF_APP");
import json

import marks

marks.seen.append("$f")
try:
    import _xxsubinterpreters as _subinterp
    INTERP = int(_subinterp.get_current())
except ImportError:
    INTERP = None


def application(environ, start_response):
    body = json.dumps(dict(seen=marks.seen, interp=INTERP)).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
EOF_APP
    }
    my $conn = PWServer::Conn->new($vport);
    my ($r1, $one) = get_json('alice.test', '/perfile/one.wsgi', $conn);
    my ($r2, $two) = get_json('alice.test', '/perfile/two.wsgi', $conn);
    my ($r3, $main) = get_json('alice.test', '/app.wsgi', $conn);
    $conn->disconnect;
    ok($one && $two && $main, 'three JSON answers') or return;
    ok($r2->{reused} && $r3->{reused}, 'on one connection (one child)');
    is_deeply($one->{seen}, ['one'], 'one.wsgi sees only its own mark');
    is_deeply($two->{seen}, ['two'], 'two.wsgi sees only its own: another interpreter');
    isnt($one->{interp}, $two->{interp}, 'two interpreters');
    isnt($one->{interp}, $main->{interp}, 'neither is the host\'s');
};

subtest '%{RESOURCE}: a file that fails to load is named with its interpreter' => sub {
    spew("$root/alice/perfile/broken.wsgi", "raise ImportError('broken on purpose')\n");
    my $off = log_offset();
    my $res = PWServer::http_get($vport, '/perfile/broken.wsgi', host => 'alice.test');
    is($res->{status}, 500, 'GET /perfile/broken.wsgi: 500');
    my $log = wait_for_log($off, qr/PW0202/);
    like($log, qr/PW0201: [^\n]*broken\.wsgi' failed to load in interpreter 'file:[^']*perfile\/broken\.wsgi'/,
         'PW0201 names the file\'s own interpreter');
    unlike($log, qr/interpreter '\?'/, 'no interpreter called "?"');
};

subtest 'rewriting the file reloads it' => sub {
    my $off = log_offset();
    spew("$root/alice/app.wsgi", app_text('v2'), $t0 + 10);
    my $v2 = 0;
    # Every child that loaded v1 must notice; a few connections reach several.
    for (1 .. 6) {
        my ($res, $d) = get_json('alice.test', '/app.wsgi');
        $v2++ if $d && ($d->{version} // '') eq 'v2';
    }
    is($v2, 6, 'every request after the edit ran v2');
    my $log = wait_for_log($off, qr/PW0203/, 2);
    like($log, qr/PW0203: application '[^']*hosting\/alice\/app\.wsgi' reloaded/,
         'PW0203 logged the reload');
};

subtest 'Options ExecCGI off: 403 and a log line that says so' => sub {
    make_path("$root/alice/noexec");
    spew("$root/alice/noexec/.htaccess", "Options -ExecCGI\n");
    spew("$root/alice/noexec/app.wsgi", app_text('noexec'));
    my $off = log_offset();
    my $res = PWServer::http_get($vport, '/noexec/app.wsgi', host => 'alice.test');
    is($res->{status}, 403, 'GET /noexec/app.wsgi: 403');
    unlike($res->{body}, qr/import util/, 'the source is not shown');
    my $log = wait_for_log($off, qr/PW0700/);
    like($log, qr/PW0700: [^\n]*Options ExecCGI is off for [^\n]*noexec\/app\.wsgi/,
         'PW0700 says ExecCGI is off, for which file');
};

subtest 'a missing file: 404' => sub {
    my $res = PWServer::http_get($vport, '/missing.wsgi', host => 'alice.test');
    is($res->{status}, 404, 'GET /missing.wsgi: 404');
    $res = PWServer::http_get($vport, '/missing.wsgi/x/y', host => 'alice.test');
    is($res->{status}, 404, 'GET /missing.wsgi/x/y: 404');
};

subtest 'SetHandler in a <Directory> of the server config' => sub {
    make_path("$root/bob/cgi");
    spew("$root/bob/cgi/run", app_text('cgi', 'cgi_util'));
    spew("$root/bob/cgi/cgi_util.py", "WHO = 'bob-cgi'\n");
    my ($res, $d) = get_json('bob.test', '/cgi/run/x');
    is($res->{status}, 200, 'GET /cgi/run/x: 200')
        or return diag($res->{error} // $res->{body});
    is($d->{version}, 'cgi', 'the file ran');
    is($d->{script_name}, '/cgi/run', 'SCRIPT_NAME');
    is($d->{path_info}, '/x', 'PATH_INFO');
    # SetHandler covers the directory itself too: 403, as mod_cgi answers.
    my $off = log_offset();
    $res = PWServer::http_get($vport, '/cgi/', host => 'bob.test');
    is($res->{status}, 403, 'GET /cgi/ (the directory): 403');
    like(wait_for_log($off, qr/PW0702/), qr/PW0702: [^\n]*cgi\/? is a directory/,
         'PW0702 says it is a directory');
};

subtest 'PyWSGIRequestTimeout in the host: a handler-served file is stopped too' => sub {
    make_path("$root/bob/slow");
    spew("$root/bob/slow/.htaccess", $live);
    spew("$root/bob/slow/spin.wsgi", <<'EOF_APP');
import time


def application(environ, start_response):
    end = time.monotonic() + 8     # pure Python: stoppable between bytecodes
    while time.monotonic() < end:
        pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"finished"]
EOF_APP
    my $off = log_offset();
    my $res = PWServer::http_get($vport, '/slow/spin.wsgi', host => 'bob.test');
    is($res->{status}, 504, '8 s of spinning against PyWSGIRequestTimeout 2: 504')
        or diag($res->{body});
    like(wait_for_log($off, qr/PW0401/, 5),
         qr/PW0401: \/slow\/spin\.wsgi: application '[^']*bob\/slow\/spin\.wsgi' stopped after 2 s/,
         'PW0401 names the file');
};

subtest 'SetHandler in <Files> of a .htaccess' => sub {
    make_path("$root/bob/files");
    spew("$root/bob/files/.htaccess",
         "Options +ExecCGI\n<Files \"run.py\">\n    SetHandler pywsgi-script\n</Files>\n");
    spew("$root/bob/files/run.py", app_text('files', 'files_util'));
    spew("$root/bob/files/files_util.py", "WHO = 'bob-files'\n");
    my ($res, $d) = get_json('bob.test', '/files/run.py');
    is($res->{status}, 200, 'GET /files/run.py: 200')
        or return diag($res->{error} // $res->{body});
    is($d->{version}, 'files', 'the file ran');
};

# A tenant tries what only the administrator may set.
my @refused = (
    ['PyWSGIPythonPath /tmp'],
    ['PyWSGIVirtualEnv /tmp'],
    ['PyWSGIPreload /tmp/x.py'],
    ['PyWSGIMaxRequests 10'],
    ['PyWSGIInterpreter main'],
    ['PyWSGIScriptAlias /x /tmp/x.py'],
);
for my $i (0 .. 3) {
    my ($line) = @{ $refused[$i] };
    my ($directive) = $line =~ /^(\S+)/;
    subtest "$directive in a tenant's .htaccess is refused, clearly" => sub {
        my $dir = "$root/bob/bad$i";
        make_path($dir);
        spew("$dir/.htaccess", "$line\n");
        spew("$dir/app.wsgi", app_text('bad'));
        my $off = log_offset();
        my $res = PWServer::http_get($vport, "/bad$i/app.wsgi", host => 'bob.test');
        is($res->{status}, 500, "GET /bad$i/app.wsgi: 500 (a bad .htaccess)");
        my $log = wait_for_log($off, qr/\Q$directive\E/);
        like($log, qr{bad$i/\.htaccess: \Q$directive\E [^\n]*not in \.htaccess[^\n]*administrator},
             'the log line names the directive, the file and the fix')
            or diag($log);
        my ($r1, $d1) = get_json('bob.test', '/app.wsgi');
        is($d1 && $d1->{who}, 'bob', 'bob\'s app is still served');
        my ($r2, $d2) = get_json('alice.test', '/app.wsgi');
        is($d2 && $d2->{who}, 'alice', 'alice\'s too');
    };
}

subtest 'PyWSGIInterpreter and PyWSGIScriptAlias in .htaccess: refused too' => sub {
    for my $i (4, 5) {
        my ($line) = @{ $refused[$i] };
        my ($directive) = $line =~ /^(\S+)/;
        my $dir = "$root/bob/bad$i";
        make_path($dir);
        spew("$dir/.htaccess", "$line\n");
        spew("$dir/app.wsgi", app_text('bad'));
        my $off = log_offset();
        my $res = PWServer::http_get($vport, "/bad$i/app.wsgi", host => 'bob.test');
        is($res->{status}, 500, "$directive: 500");
        my $log = wait_for_log($off, qr/\Q$directive\E/);
        like($log, qr{bad$i/\.htaccess: \Q$directive\E [^\n]*not in \.htaccess},
             "$directive: the log line says why") or diag($log);
    }
};

subtest "every handler-served file of a tenant is on her page, the ninth too" => sub {
    # By now the tenants have served eight files; a ninth must not vanish
    # into "(other)", which no tenant sees.
    spew("$root/alice/late.wsgi", app_text('late'));
    my ($res) = get_json('alice.test', '/late.wsgi');
    is($res->{status}, 200, 'GET /late.wsgi: 200');
    my %want = (
        alice => [map { "$root/alice/$_" } qw(app.wsgi perfile/one.wsgi perfile/two.wsgi
                                               perfile/broken.wsgi late.wsgi)],
        bob => [map { "$root/bob/$_" } qw(app.wsgi cgi/run files/run.py)],
    );
    for my $t (sort keys %want) {
        my $s = tenant_status("$t.test");
        for my $file (@{ $want{$t} }) {
            cmp_ok($s->{json}{$file} // 0, '>=', 1, "$t\'s page counts $file");
        }
        my $other = $t eq 'alice' ? 'bob' : 'alice';
        is_deeply([grep { m{/hosting/\Q$other\E/} } sort keys %{ $s->{json} }],
                  [], "$t\'s page: nothing of $other\'s");
    }
};

# The common case of the above without the overflow: tenants' hosts with no
# PyWSGI directive at all (no mounts in the main server to switch off).
# Apache gives such hosts the main server's module record itself, not a
# merged copy; each must still get an interpreter of its own.
subtest 'hosts with no PyWSGI directive: one interpreter each' => sub {
    my $srv = PWPrivate->new(
        mpm => mpm() || 'event', procs => 1, threads => 2,
        extra => "<Directory \@DIR\@/htdocs>\n    AddHandler pywsgi-script .wsgi\n"
               . "    Options +ExecCGI\n</Directory>\n"
               . join('', map { "<VirtualHost *>\n    ServerName t$_.test\n</VirtualHost>\n" } 1 .. 3));
    spew("$srv->{dir}/htdocs/app.wsgi", <<'EOF_APP');
import sys

sys.modules.setdefault("tenant_mark", type(sys)("tenant_mark")).__dict__.setdefault("seen", [])
import tenant_mark

try:
    import _xxsubinterpreters as _subinterp
    INTERP = str(int(_subinterp.get_current()))
except ImportError:
    INTERP = "?"


def application(environ, start_response):
    tenant_mark.seen.append(environ["HTTP_HOST"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [(INTERP + " " + ",".join(tenant_mark.seen)).encode()]
EOF_APP
    ok($srv->start, 'a private server with three plain virtual hosts') or return diag($srv->{error});
    my $conn = PWServer::Conn->new($srv->{port});
    my %body = map { $_ => $conn->request('/app.wsgi', host => "t$_.test")->{body} } 1 .. 3;
    $conn->disconnect;
    note("t$_.test: $body{$_}") for 1 .. 3;
    is($body{$_}, (split ' ', $body{$_})[0] . " t$_.test", "t$_.test sees only its own mark")
        for 1 .. 3;
    my %interps = map { ((split ' ', $body{$_})[0] // '') => 1 } 1 .. 3;
    is(scalar keys %interps, 3, 'three interpreters');
    $srv->stop;
};

# More virtual hosts than a child has interpreters (PW_MAX_INTERPS, 64; main
# and each host's own count), none with a PyWSGI directive of its own: the
# server starts, with a PW0704 warning on the terminal and in the error log;
# the hosts within the limit serve their handler files, each in an
# interpreter of its own; a host past it answers 500 with PW0708; with the
# table full a file under PyWSGIInterpreter %{RESOURCE} gets 500 with
# PW0707.  Those 500s are counted like any request of the file's app.  A
# private server (70 hosts are more than the shared one should carry), on
# this test's own ports.  Apache lists virtual hosts last to first: h1..h8
# are the ones left without.
subtest 'more hosts than interpreters: PW0704, then PW0708 and PW0707, counted' => sub {
    my $srv = PWPrivate->new(
        mpm => mpm() || 'event', procs => 1, threads => 2,
        extra => <<'CONF' . join('', map { "<VirtualHost *>\n    ServerName h$_.test\n</VirtualHost>\n" } 1 .. 70));
<Directory @DIR@/htdocs>
    AddHandler pywsgi-script .wsgi
    Options +ExecCGI
</Directory>
<Directory @DIR@/htdocs/own>
    PyWSGIInterpreter %{RESOURCE}
</Directory>
<Location /pywsgi-status>
    SetHandler pywsgi-status
    PyWSGIStatus On
</Location>
<Location /my-status>
    SetHandler pywsgi-status
    PyWSGIStatus Host
</Location>
CONF
    my $docs = "$srv->{dir}/htdocs";
    my $app = <<'EOF_APP';
try:
    import _xxsubinterpreters as _subinterp
    INTERP = str(int(_subinterp.get_current()))
except ImportError:
    INTERP = "?"


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [INTERP.encode()]
EOF_APP
    make_path("$docs/own");
    chmod 0755, "$docs/own";
    spew("$docs/app.wsgi", $app);
    spew("$docs/own/app.wsgi", $app);
    ok($srv->start, 'a private server with 70 name-based virtual hosts starts')
        or return diag($srv->{error});
    my $port = $srv->{port};
    my $warn = qr/PW0704: more than 63 interpreters: 8 virtual hosts get none of their own [^\n]*: vhost:h\d\.test:\d+, [^\n]* and 5 more\. [^\n]*PyWSGIInterpreter NAME/;
    like($srv->{start_output} // '', $warn, 'PW0704 on the terminal: how many hosts, which, the fix');
    like($srv->log_text, $warn, '... and in the error log');

    my $r70 = PWServer::http_get($port, '/app.wsgi', host => 'h70.test');
    my $r69 = PWServer::http_get($port, '/app.wsgi', host => 'h69.test');
    my $r9 = PWServer::http_get($port, '/app.wsgi', host => 'h9.test');
    is($r70->{status}, 200, 'h70.test (within the limit): its app.wsgi serves')
        or diag($srv->log_tail(5));
    is($r69->{status}, 200, 'h69.test too');
    is($r9->{status}, 200, 'h9.test, the last within, too');
    ok($r70->{body} ne $r69->{body} && $r69->{body} ne $r9->{body},
       'each in an interpreter of its own (no PyWSGI directive in any of them)')
        or diag("interpreters: $r70->{body} $r69->{body} $r9->{body}");
    my $off = $srv->log_offset;
    my $res = PWServer::http_get($port, '/app.wsgi', host => 'h1.test');
    is($res->{status}, 500, 'h1.test (past it): 500');
    like($srv->wait_for_log($off, qr/PW0708/),
         qr/PW0708: \/app\.wsgi: virtual host h1\.test has no interpreter of its own for \S*app\.wsgi [^\n]*PyWSGIInterpreter NAME/,
         'PW0708 names the host, the file and the fix');
    $off = $srv->log_offset;
    $res = PWServer::http_get($port, '/own/app.wsgi', host => 'h70.test');
    is($res->{status}, 500, '%{RESOURCE} with the table full: 500');
    like($srv->wait_for_log($off, qr/PW0707/),
         qr/PW0707: \/own\/app\.wsgi: no interpreter left in this child for \S*own\/app\.wsgi/,
         'PW0707 names the file');

    $res = PWServer::http_get($port, '/pywsgi-status?format=json', host => 'h70.test');
    my $j = $res->{status} == 200 ? decode_json_body($res->{body}) : {};
    my %apps = map { $_->{app} => $_ } @{ $j->{apps} || [] };
    my ($a, $own) = ($apps{"$docs/app.wsgi"}, $apps{"$docs/own/app.wsgi"});
    is($a && $a->{requests}, 4, 'app.wsgi: all four requests counted, the PW0708 one too')
        or diag('apps: ' . join(', ', map { "$_=$apps{$_}{requests}" } sort keys %apps));
    is($a && $a->{status}{'5xx'}, 1, '... one of them a 5xx');
    is($own && $own->{requests}, 1, 'own/app.wsgi: the PW0707 request counted');
    is($own && $own->{status}{'5xx'}, 1, '... as a 5xx');
    $res = PWServer::http_get($port, '/my-status?format=json', host => 'h1.test');
    $j = $res->{status} == 200 ? decode_json_body($res->{body}) : {};
    my %mine = map { $_->{app} => $_->{requests} } @{ $j->{apps} || [] };
    ok(exists $mine{"$docs/app.wsgi"}, "h1.test's own page lists the file that failed there");
    ok(!exists $mine{"$docs/own/app.wsgi"}, '... and not the one it never served');
    $srv->stop;
};

# Leave the tree as committed.
for my $t (qw(alice bob carol)) {
    unlink glob("$root/$t/*.wsgi"), "$root/$t/.htaccess";
    remove_tree(grep { -d } glob("$root/$t/*"));
}
