# Metrics (issue 5): the pywsgi-status page as JSON, Prometheus text (read
# by prometheus_client's parser) and HTML (rendered by headless Chromium),
# mod_status's section, the LogFormat notes, PyWSGISlowRequest, and
# PyWSGIMetrics Off (on a private httpd). Everything through real HTTP
# against t/apps/metrics_app.py mounted at /metrics-app
# (t/conf/metrics.conf.in), which no other test calls.
#
# Counts are checked as differences between two readings, so the file also
# passes against a server that already served it once.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use Encode ();
use File::Temp ();
use HTML::TreeBuilder ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use List::Util qw(max);
use LWP::UserAgent ();
use Time::HiRes qw(time sleep);
use PWTest qw(mpm log_offset wait_for_log pw_module);

my $top       = Apache::Test::vars('top_dir');
my $port      = Apache::Test::vars('port');
my $slow_port = Apache::Test::vars('pywsgi_metrics_port');
my $t_logs    = Apache::Test::vars('t_logs');
my $APP       = "$top/t/apps/metrics_app.py";   # the target, as configured
my $ROOT_APP  = 'pwtest.envdump:application';   # mounted at "/" (extra.conf)
my $STATUS    = '/pywsgi-status';
my $PYTHON    = '/usr/bin/python3';
my $MiB       = 1024 * 1024;
my @CLASSES   = qw(1xx 2xx 3xx 4xx 5xx);

my $ua = LWP::UserAgent->new(timeout => 30, keep_alive => 0);

plan tests => 11 + (mpm() eq 'prefork' ? 2 : 1);

sub url { my ($path, $p) = @_; return 'http://127.0.0.1:' . ($p || $port) . $path }

sub metrics_json {
    my $res = $ua->get(url("$STATUS?format=json"));
    return undef unless $res->code == 200;
    return eval { JSON::PP->new->decode($res->decoded_content) };
}

sub app_of {
    my ($json, $name) = @_;
    my ($app) = grep { $_->{app} eq $name } @{ $json->{apps} || [] };
    return $app;
}

# Sends one request per path at once, each on its own connection; returns
# the response texts. Bounded by 15 s.
sub concurrent_get {
    my @paths = @_;
    my (@socks, %text);
    for my $path (@paths) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5) or return;
        print {$s} "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n"
                 . "Connection: close\r\n\r\n";
        push @socks, $s;
        $text{$s} = '';
    }
    my $sel = IO::Select->new(@socks);
    my $deadline = time + 15;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(0.2)) {
            my $got = sysread($s, my $buf, 65536);
            if ($got) { $text{$s} .= $buf }
            else { $sel->remove($s); close $s }
        }
    }
    return map { $text{$_} } @socks;
}

# The Prometheus text through prometheus_client's own parser; returns
# { family => { type, help, samples => [[name, {labels}, value], ...] } } or
# an error string.
sub prom_parse {
    my $text = shift;
    my $in = File::Temp->new;
    print {$in} $text;
    close $in;
    my $script = File::Temp->new(SUFFIX => '.py');
    print {$script} <<'PY';
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
with open(sys.argv[1], encoding="utf-8") as f:
    for fam in text_string_to_metric_families(f.read()):
        out[fam.name] = {"type": fam.type, "help": fam.documentation,
                         "samples": [[s.name, s.labels, s.value]
                                     for s in fam.samples]}
print(json.dumps(out))
PY
    close $script;
    my $out = qx($PYTHON $script $in 2>&1);
    return "parser failed: $out" if $?;
    my $data = eval { JSON::PP->new->decode($out) };
    return $data || "bad parser output: $out";
}

sub sample_value {
    my ($fam, $name, %labels) = @_;
    SAMPLE: for my $s (@{ $fam->{samples} }) {
        next unless $s->[0] eq $name;
        for my $k (keys %labels) {
            next SAMPLE unless defined $s->[1]{$k} && $s->[1]{$k} eq $labels{$k};
        }
        return $s->[2];
    }
    return undef;
}

# --- 1. formats, content types, guard ------------------------------------
subtest 'status page formats' => sub {
    my $res = $ua->get(url($STATUS));
    is($res->code, 200, 'HTML: 200');
    like($res->header('Content-Type'), qr{^text/html; charset=utf-8}, 'HTML content type');
    like($res->decoded_content, qr{<meta http-equiv="refresh" content="5">}, 'refreshes itself');

    $res = $ua->get(url("$STATUS?format=json"));
    is($res->code, 200, 'JSON: 200');
    is($res->header('Content-Type'), 'application/json', 'JSON content type');
    ok(eval { JSON::PP->new->decode($res->decoded_content) }, 'JSON parses')
        or diag($@);

    $res = $ua->get(url("$STATUS?format=prometheus"));
    is($res->code, 200, 'Prometheus: 200');
    is($res->header('Content-Type'), 'text/plain; version=0.0.4; charset=utf-8',
       'Prometheus content type');
    like($res->decoded_content, qr/^# HELP pywsgi_requests_total .+\n# TYPE pywsgi_requests_total counter$/m,
         'HELP and TYPE lines');

    is($ua->get(url("$STATUS?format=xml"))->code, 400, 'unknown format: 400');
    is($ua->post(url($STATUS), Content => 'x')->code, 405, 'POST: 405');
    is($ua->get(url("$STATUS?format=json"))->header('Cache-Control'), 'no-store',
       'not cached');
};

# --- 2. a known mix, counted exactly ----------------------------------------
my $before = metrics_json();
my @mix = ((['/metrics-app/ok', 200]) x 5, (['/metrics-app/missing', 404]) x 3,
           (['/metrics-app/raise', 500]) x 2);
my $echo = 'e' x 1000;
my $mix_ok = 1;
for my $m (@mix) {
    my $code = $ua->get(url($m->[0]))->code;
    $mix_ok = 0, diag("$m->[0]: $code, expected $m->[1]") if $code != $m->[1];
}
my $echo_res = $ua->post(url('/metrics-app/echo'), Content => $echo);
$mix_ok = 0 unless $echo_res->code == 200 && $echo_res->content eq $echo;
my $after = metrics_json();

subtest 'JSON: exactly the requests made' => sub {
    ok($mix_ok, 'the mix got the expected statuses');
    ok($before && $after, 'JSON before and after') or return;
    my ($old, $new) = (app_of($before, $APP), app_of($after, $APP));
    ok($old && $new, "app $APP listed") or return diag(explain($after->{apps}));
    my %want = ('1xx' => 0, '2xx' => 6, '3xx' => 0, '4xx' => 3, '5xx' => 2);
    for my $c (@CLASSES) {
        is($new->{status}{$c} - $old->{status}{$c}, $want{$c}, "$c: +$want{$c}");
    }
    is($new->{requests} - $old->{requests}, 11, 'requests: +11');
    is($new->{exceptions} - $old->{exceptions}, 2, 'exceptions: +2');
    is($new->{bytes_in} - $old->{bytes_in}, 1000, 'bytes in: +1000 (the echo body)');
    is($new->{bytes_out} - $old->{bytes_out}, 5 * 3 + 3 * 8 + 1000,
       'bytes out: 5 x "ok\n" + 3 x "missing\n" + the echo');
    is($new->{in_flight}, 0, 'nothing in flight');

    my $d = $new->{duration};
    is($d->{count} - $old->{duration}{count}, 11, 'histogram count: +11');
    is($d->{count}, $new->{requests}, 'histogram count = requests');
    my @buckets = @{ $d->{buckets} };
    is(scalar @buckets, 16, '16 buckets');
    is($buckets[-1]{le}, '+Inf', 'the last is +Inf');
    is($buckets[-1]{count}, $d->{count}, '+Inf bucket = count');
    my $monotonic = 1;
    for my $i (1 .. $#buckets) {
        $monotonic = 0 if $buckets[$i]{count} < $buckets[$i - 1]{count}
                       || ($i < $#buckets && $buckets[$i]{le} <= $buckets[$i - 1]{le});
    }
    ok($monotonic, 'buckets cumulative, bounds increasing');
    ok($d->{sum} > $old->{duration}{sum}, 'duration sum grew');
    ok(defined $d->{p50} && $d->{p50} <= $d->{p90} && $d->{p90} <= $d->{p99},
       'p50 <= p90 <= p99');
};

subtest "the status page's own requests are not counted" => sub {
    my $x = metrics_json();
    $ua->get(url($STATUS)) for 1 .. 3;
    my $y = metrics_json();
    ok($x && $y, 'JSON twice') or return;
    for my $name ($APP, $ROOT_APP) {
        my ($ax, $ay) = (app_of($x, $name), app_of($y, $name));
        ok($ax && $ay, "$name listed") or next;
        is($ay->{requests}, $ax->{requests}, "$name: unchanged");
    }
};

# --- 3. Prometheus, through a real parser ------------------------------------
subtest 'Prometheus text parses and agrees with JSON' => sub {
    my $text = $ua->get(url("$STATUS?format=prometheus"))->decoded_content;
    my $json = metrics_json();
    my $fams = prom_parse($text);
    ok(ref $fams, 'prometheus_client parses it') or return diag($fams);
    my $app = app_of($json, $APP);

    my %types = (pywsgi_requests => 'counter', pywsgi_exceptions => 'counter',
                 pywsgi_request_duration_seconds => 'histogram',
                 pywsgi_requests_in_flight => 'gauge',
                 pywsgi_process_resident_memory_bytes => 'gauge',
                 pywsgi_request_body_bytes => 'counter',
                 pywsgi_response_body_bytes => 'counter',
                 pywsgi_gil_wait_seconds => 'counter',
                 pywsgi_process_gc_collections => 'counter',
                 pywsgi_child_starts => 'counter', pywsgi_child_exits => 'counter');
    for my $f (sort keys %types) {
        is($fams->{$f}{type}, $types{$f}, "$f: $types{$f}");
        ok(length($fams->{$f}{help} // ''), "$f: HELP");
    }

    my $req = $fams->{pywsgi_requests};
    for my $c (@CLASSES) {
        is(sample_value($req, 'pywsgi_requests_total', app => $APP, status_class => $c),
           $app->{status}{$c}, "requests_total{status_class=$c} = JSON");
    }
    is(sample_value($fams->{pywsgi_exceptions}, 'pywsgi_exceptions_total', app => $APP),
       $app->{exceptions}, 'exceptions_total = JSON');

    my $h = $fams->{pywsgi_request_duration_seconds};
    my @bk = map { [$_->[1]{le}, $_->[2]] }
            grep { $_->[0] eq 'pywsgi_request_duration_seconds_bucket' && $_->[1]{app} eq $APP }
            @{ $h->{samples} };
    is(scalar @bk, 16, '16 _bucket samples');
    is($bk[-1][0], '+Inf', 'last le is +Inf');
    my $cum = 1;
    $cum &&= $bk[$_][1] >= $bk[$_ - 1][1] for 1 .. $#bk;
    ok($cum, 'buckets are cumulative');
    my $count = sample_value($h, 'pywsgi_request_duration_seconds_count', app => $APP);
    is($count, $app->{requests}, '_count = requests');
    is($bk[-1][1], $count, '+Inf bucket = _count');
    ok(abs(sample_value($h, 'pywsgi_request_duration_seconds_sum', app => $APP)
           - $app->{duration}{sum}) < 1e-5, '_sum = JSON sum');
    my $in_flight = sample_value($fams->{pywsgi_requests_in_flight},
                                 'pywsgi_requests_in_flight');
    ok(defined $in_flight && $in_flight >= 0, 'requests_in_flight present');

    my @rss = @{ $fams->{pywsgi_process_resident_memory_bytes}{samples} };
    ok(scalar @rss, 'RSS per child');
    for my $s (@rss) {
        ok($s->[2] > $MiB && $s->[2] < 2048 * $MiB,
           sprintf("pid %s: %.1f MiB, plausible", $s->[1]{pid}, $s->[2] / $MiB));
    }
};

# --- 4. children ----------------------------------------------------------
my $N = 4;
my $before_slow = metrics_json();
my @responses = concurrent_get(map { "/metrics-app/slow?0.4&$_" } 1 .. $N);
my %pids = map { /pid=(\d+)/ ? ($1 => 1) : () } @responses;
my $after_slow = metrics_json();

subtest 'counts aggregate across children' => sub {
    is(scalar(grep { m{^HTTP/1\.1 200 } } @responses), $N, "$N slow requests served");
    my ($old, $new) = (app_of($before_slow, $APP), app_of($after_slow, $APP));
    is($new->{requests} - $old->{requests}, $N, "app total +$N");
    my @children = @{ $after_slow->{children} };
    my %listed = map { $_->{pid} => $_ } @children;
    ok($listed{$_}, "pid $_ (served a slow request) is listed") for sort keys %pids;
    my $busy = grep { $_->{requests} > 0 } @children;
    if (mpm() eq 'prefork') {
        ok(keys(%pids) > 1, 'prefork: the requests ran in ' . keys(%pids) . ' children');
        ok($busy > 1, "prefork: $busy children with requests in the table");
    }
    else {
        ok($busy >= 1, mpm() . ": $busy child(ren) with requests in the table");
    }
    for my $c (@children) {
        ok($c->{rss_bytes} > $MiB && $c->{rss_bytes} < 2048 * $MiB,
           sprintf('pid %d: RSS %.1f MiB', $c->{pid}, $c->{rss_bytes} / $MiB));
    }
    my $gc = max(0, map { $_->{gc_collections} } @children);
    ok($gc > 0, "Python GC runs are sampled ($gc)");
};

# --- 5. a child that exits keeps its totals ---------------------------------
# SIGTERM is a clean exit for a prefork child (its pool cleanups run); a
# worker/event child ignores it (its parent stops it through a pipe), so
# there SIGKILL stands for a child that dies without a word. Neither signal
# is logged by the parent as a crash.
for my $sig (mpm() eq 'prefork' ? qw(TERM KILL) : qw(KILL)) {
    subtest "a child that exits (SIG$sig) keeps its totals in the aggregate" => sub {
        my $res = $ua->get(url('/metrics-app/pid'));
        my ($pid) = $res->content =~ /pid=(\d+)/;
        ok($pid, "a child served /pid") or return;
        my $x = metrics_json();
        my ($child) = grep { $_->{pid} == $pid } @{ $x->{children} };
        ok($child && $child->{requests} > 0, "pid $pid is listed with requests");
        ok(kill($sig, $pid), "SIG$sig to $pid");
        my $deadline = time + 10;
        sleep 0.1 while kill(0, $pid) && time < $deadline;
        ok(!kill(0, $pid), "pid $pid is gone");
        my $y = metrics_json();
        ok($y, 'JSON after the exit') or return;
        is(app_of($y, $APP)->{requests}, app_of($x, $APP)->{requests},
           'app total unchanged by the exit');
        ok(!grep({ $_->{pid} == $pid } @{ $y->{children} }), 'the pid is no longer listed');
        cmp_ok($y->{child_exits}, '>', $x->{child_exits}, 'child_exits went up');
        is($ua->get(url('/metrics-app/ok'))->code, 200, 'and the server still serves');
    };
}

# --- 6. the HTML page in a real browser --------------------------------------
subtest 'HTML page rendered by headless Chromium' => sub {
    my ($chromium) = grep { -x } map { "$_/chromium" } split /:/, "/usr/bin:$ENV{PATH}";
    ok($chromium, 'chromium installed (./dev installs it)') or return;
    my $profile = File::Temp->newdir;
    my $json = metrics_json();
    my $dom = qx(timeout 90 $chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --user-data-dir=$profile --dump-dom ${\ url($STATUS)} 2>/dev/null);
    ok($? == 0 && length $dom, 'chromium dumped the DOM') or return diag("exit $?");
    my $tree = HTML::TreeBuilder->new_from_content(Encode::decode('UTF-8', $dom));

    ok($tree->look_down(_tag => 'meta', 'http-equiv' => 'refresh', content => '5'),
       'meta refresh 5');
    my $apps = $tree->look_down(_tag => 'table', id => 'pywsgi-apps');
    ok($apps, 'table#pywsgi-apps') or return;
    my @head = $apps->look_down(_tag => 'th');
    my ($row) = grep { $_->attr('data-app') eq $APP } $apps->look_down(_tag => 'tr', class => qr/\bpywsgi-app\b/);
    ok($row, "a row for $APP") or return;
    my @cells = $row->look_down(_tag => 'td');
    is(scalar @cells, scalar @head, 'one cell per column');
    my $cell = sub { my $c = $row->look_down(_tag => 'td', class => shift); $c ? $c->as_text : undef };
    my $app = app_of($json, $APP);
    is($cell->('requests'), $app->{requests}, 'requests as in JSON');
    is($cell->("s$_"), $app->{status}{$_}, "$_ as in JSON") for @CLASSES;
    is($cell->('exceptions'), $app->{exceptions}, 'exceptions as in JSON');
    like($cell->($_), qr/^\d+(\.\d+)? (\x{b5}s|ms|s)$/, "$_ shown as a duration") for qw(p50 p90 p99);

    my $kids = $tree->look_down(_tag => 'table', id => 'pywsgi-children');
    ok($kids, 'table#pywsgi-children') or return;
    my @rows = $kids->look_down(_tag => 'tr', class => 'pywsgi-child');
    # Children come and go (a threaded MPM's parent may be starting one):
    # every row must be a child JSON listed just before or just after.
    my %known = map { $_->{pid} => 1 } @{ $json->{children} },
                                       @{ (metrics_json() || {})->{children} || [] };
    ok(scalar @rows, scalar(@rows) . ' child rows');
    is(scalar(grep { $known{ $_->attr('data-pid') } } @rows), scalar @rows,
       'each row is a live child');
    for my $r (@rows) {
        my $rss = $r->look_down(_tag => 'td', class => 'rss');
        ok($rss && $rss->attr('data-value') > $MiB && $rss->attr('data-value') < 2048 * $MiB,
           'pid ' . $r->attr('data-pid') . ': RSS ' . ($rss ? $rss->as_text : '?'));
    }
    ok($tree->look_down(_tag => 'table', id => 'pywsgi-latency'), 'table#pywsgi-latency');
    $tree->delete;
};

# --- 7. mod_status ---------------------------------------------------------------
subtest "mod_status shows a mod_pywsgi section" => sub {
    my $json = metrics_json();
    my $total = 0;
    $total += $_->{requests} for @{ $json->{apps} };
    my $auto = $ua->get(url('/server-status?auto'))->decoded_content;
    like($auto, qr/^PyWSGIRequests: \d+$/m, '?auto: PyWSGIRequests');
    my ($n) = $auto =~ /^PyWSGIRequests: (\d+)$/m;
    is($n, $total, '?auto total = sum over the apps in JSON');
    like($auto, qr/^PyWSGIChildren: [1-9]\d*$/m, '?auto: PyWSGIChildren');
    like($ua->get(url('/server-status'))->decoded_content,
         qr{<h2 id="pywsgi">mod_pywsgi</h2>}, 'HTML section');
};

# --- 8. LogFormat notes --------------------------------------------------------
subtest 'request notes in the access log' => sub {
    my $log = "$t_logs/metrics_access_log";
    my $marker = 'note' . int(rand(1e9));
    $ua->get(url("/metrics-app/ok?$marker"));
    my $line = '';
    my $deadline = time + 5;
    while (time < $deadline) {
        if (open my $fh, '<', $log) {
            ($line) = grep { m{^/metrics-app/ok } } <$fh>;
            close $fh;
            last if $line;
        }
        sleep 0.1;
    }
    like($line, qr{^/metrics-app/ok 200 app_us=\d+ interp=main$}, 'app_us and interpreter')
        or diag("log: $log");
};

# --- 9. PyWSGISlowRequest ------------------------------------------------------
subtest 'PyWSGISlowRequest logs slow requests' => sub {
    ok($slow_port, "the slow-request virtual host has a port ($slow_port)") or return;
    my $offset = log_offset();
    is($ua->get(url('/metrics-app/ok', $slow_port))->code, 200, 'fast request');
    is($ua->get(url('/metrics-app/slow?0.3', $slow_port))->code, 200, 'slow request');
    my $text = wait_for_log($offset, qr/PW0501/, 5);
    like($text, qr{\[pywsgi:warn\].*PW0501: /metrics-app/slow: request took \d+\.\d{3} s \(PyWSGISlowRequest 0\.2 s\)},
         'PW0501 line with the URL and the duration');
    my ($took) = $text =~ /request took (\d+\.\d+) s/;
    ok(defined $took && $took >= 0.3, 'the duration is at least the 0.3 s slept');
    is(scalar(() = $text =~ /PW0501/g), 1, 'only the slow one');

    $offset = log_offset();
    is($ua->get(url('/metrics-app/slow?0.3'))->code, 200, 'slow request on the main server');
    sleep 0.3;
    unlike(wait_for_log($offset, qr/PW0501/, 0.5), qr/PW0501/,
           'no warning where PyWSGISlowRequest is not set');
};

# --- 10. every app of the config is known from the start ----------------------
subtest 'every configured app is listed' => sub {
    my $json = metrics_json();
    my %apps = map { $_->{app} => 1 } @{ $json->{apps} };
    ok($apps{$APP}, $APP);
    ok($apps{$ROOT_APP}, $ROOT_APP);
    ok($apps{"$top/t/apps/errors.py:raises"},
       'errors.py:raises (an app is its target and its callable=)');
    ok($apps{"$top/t/apps/env.py:alt_application"}, 'env.py:alt_application');
    ok($apps{"$top/t/apps/env.py"}, 'env.py');
    ok(!$apps{'(other)'}, 'nothing fell into (other)');
};

# --- 11. PyWSGIMetrics Off --------------------------------------------------------
# A private httpd (same MPM) on a free port: apps serve, the status page
# says the metrics are off.
subtest 'PyWSGIMetrics Off: apps serve, the status page says so' => sub {
    my $mpm = mpm();
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                     Proto => 'tcp', Listen => 1, ReuseAddr => 1);
    my $off_port = $sock->sockport;
    close $sock;
    my $dir = "$t_logs/metrics_off";
    mkdir $dir;
    chmod 0755, $dir;
    my $conf = "$dir/httpd.conf";
    my $mods = '/usr/lib/apache2/modules';
    open my $fh, '>', $conf or die "$conf: $!";
    print {$fh} <<"CONF";
ServerRoot $dir
ServerName 127.0.0.1
Listen 127.0.0.1:$off_port
PidFile $dir/httpd.pid
ErrorLog $dir/error_log
LogLevel warn pywsgi:info
LoadModule mpm_${mpm}_module $mods/mod_mpm_${mpm}.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_host_module $mods/mod_authz_host.so
LoadModule pywsgi_module ${\ pw_module()}
StartServers 1
<IfModule unixd_module>
    User nobody
    Group nogroup
</IfModule>
PyWSGIMetrics Off
PyWSGIScriptAlias /metrics-app $APP
<Directory $top/t/apps>
    Require all granted
</Directory>
<Location /pywsgi-status>
    SetHandler pywsgi-status
    PyWSGIStatus On
    Require ip 127.0.0.1
</Location>
CONF
    close $fh;
    my $httpd = Apache::Test::vars('httpd') || '/usr/sbin/apache2';
    my $out = qx($httpd -f $conf -k start 2>&1);
    ok($? == 0, 'private httpd with PyWSGIMetrics Off starts') or return diag($out);
    my $deadline = time + 10;
    my $res;
    while (time < $deadline) {
        $res = $ua->get(url('/metrics-app/ok', $off_port));
        last if $res->code == 200;
        sleep 0.1;
    }
    is($res->code, 200, 'the app serves');
    for my $q ('', '?format=json', '?format=prometheus') {
        my $st = $ua->get(url("$STATUS$q", $off_port));
        is($st->code, 404, "$STATUS$q: 404");
        like($st->decoded_content, qr/metrics are off \(PyWSGIMetrics Off\)/,
             'and says why');
    }
    qx($httpd -f $conf -k stop 2>&1);
    $deadline = time + 10;
    sleep 0.1 while -e "$dir/httpd.pid" && time < $deadline;
    ok(!-e "$dir/httpd.pid", 'private httpd stopped');
};
