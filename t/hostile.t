# Hostile clients, against the virtual host of t/conf/hostile.conf.in
# (mod_reqtimeout header=2-4 body=2, LimitRequestBody 1024, the naive app
# t/apps/hostile.py, which records each call and each body it got):
#   - slow-header and slow-body clients are cut off within the configured
#     limits and do not hold up anyone else;
#   - malformed or ambiguous requests (huge or broken headers, bodies over
#     the limit, broken chunking, bad percent-encoding, request smuggling)
#     get the right 4xx, the app never sees a body it cannot trust -- most
#     never reach it at all -- and mod_pywsgi logs nothing above info.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use IO::Select ();
use IO::Socket::INET ();
use Socket qw(SHUT_WR);
use Time::HiRes qw(time sleep);
use PWTest qw(log_offset log_since is_threaded_mpm mpm decode_json_body);

my $port  = Apache::Test::vars('pywsgi_hostile_port');
my $main  = Apache::Test::vars('port');
my $calls = Apache::Test::vars('t_logs') . '/hostile_calls';

# The app's record of calls, writable by the children's user.
open my $fh, '>', $calls or die "$calls: $!";
close $fh;
chmod 0666, $calls;

sub calls_text {
    open my $fh, '<', $calls or return '';
    local $/;
    my $text = <$fh> // '';
    close $fh;
    return $text;
}

# Module lines above info (PW0001 is a child starting, not this request).
sub pywsgi_noise {
    my $log = shift;
    return grep { /\[pywsgi:(notice|warn|error|crit|alert|emerg)\]/ && !/PW0001:/ }
           split /\n/, $log;
}

# Sends bytes on a fresh connection and reads until the server closes it
# (or $o{timeout}). {statuses => [every status line's code], raw, elapsed,
# closed}.
sub send_raw {
    my ($bytes, %o) = @_;
    my $t0 = time;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or return { statuses => [], raw => '', error => "connect: $@" };
    binmode $s;
    local $SIG{PIPE} = 'IGNORE';
    syswrite($s, $bytes);
    shutdown($s, SHUT_WR) if $o{half_close};
    my ($raw, $closed) = ('', 0);
    my $sel = IO::Select->new($s);
    my $deadline = $t0 + ($o{timeout} || 8);
    while ((my $left = $deadline - time) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($s, my $buf, 65536);
        if (!$n) { $closed = 1; last }
        $raw .= $buf;
    }
    close $s;
    my @statuses = $raw =~ m{^HTTP/1\.\d (\d{3})}mg;
    return { statuses => \@statuses, raw => $raw, elapsed => time - $t0,
             closed => $closed };
}

sub token { my $name = shift; return "$name-" . int(rand(1e9)) }

# --- 1. slow clients ------------------------------------------------------------
# prefork: each slow client holds a child (4 start, 8 at most).
my $n_slow = is_threaded_mpm() ? 3 : 1;
my $HEADER_MAX = 4;    # header=2-4
my $BODY_MAX = 2;      # body=2 (the rate is far below MinRate)

# [name, bytes, qr// for the first status (undef: no response is fine too),
#  app: 'no' (never called) or 'nobody' (called, but got no body),
#  options]
my $H = "Host: 127.0.0.1\r\n";
my $C = "Connection: close\r\n";
my @rows = (
    ['header field over LimitRequestFieldSize',
     "GET /hostile?%T HTTP/1.1\r\n${H}X-Big: " . ('a' x 10000) . "\r\n$C\r\n",
     qr/^(400|431)$/, 'no'],
    ['more than LimitRequestFields headers',
     "GET /hostile?%T HTTP/1.1\r\n$H" . join('', map { "X-H$_: v\r\n" } 1 .. 120) . "$C\r\n",
     qr/^(400|431)$/, 'no'],
    ['request line over LimitRequestLine',
     "GET /hostile?%T&" . ('a' x 9000) . " HTTP/1.1\r\n$H$C\r\n",
     qr/^414$/, 'no'],
    ['Content-Length over LimitRequestBody',
     "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: 2048\r\n$C\r\n" . ('x' x 2048),
     qr/^413$/, 'no'],
    ['chunked body over LimitRequestBody',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n$C\r\n"
     . "800\r\n" . ('x' x 2048) . "\r\n0\r\n\r\n",
     qr/^413$/, 'nobody'],
    ['chunk size not hex',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n$C\r\n"
     . "zz\r\nhello\r\n0\r\n\r\n",
     qr/^400$/, 'nobody'],
    ['chunk longer than its size',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n$C\r\n"
     . "5\r\nhelloXX0\r\n\r\n",
     qr/^400$/, 'nobody'],
    ['chunk size overflowing 64 bits',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n$C\r\n"
     . "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
     qr/^(400|413)$/, 'nobody'],
    ['body shorter than Content-Length, then EOF',
     "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: 100\r\n$C\r\nhello",
     undef, 'nobody', { half_close => 1 }],
    ['invalid percent-encoding %zz',
     "GET /hostile/%zz?%T HTTP/1.1\r\n$H$C\r\n", qr/^400$/, 'no'],
    ['truncated percent-encoding %4',
     "GET /hostile/a%4?%T HTTP/1.1\r\n$H$C\r\n", qr/^400$/, 'no'],
    ['encoded NUL %00 in the path',
     "GET /hostile/a%00b?%T HTTP/1.1\r\n$H$C\r\n", qr/^(400|404)$/, 'no'],
    ['encoded slash %2F in the path',
     "GET /hostile/a%2Fb?%T HTTP/1.1\r\n$H$C\r\n", qr/^(400|404)$/, 'no'],
    ['NUL in a header value',
     "GET /hostile?%T HTTP/1.1\r\n${H}X-A: a\0b\r\n$C\r\n", qr/^400$/, 'no'],
    ['bare CR in a header value',
     "GET /hostile?%T HTTP/1.1\r\n${H}X-A: a\rb\r\n$C\r\n", qr/^400$/, 'no'],
    ['bare LF line ends',
     "GET /hostile?%T HTTP/1.1\nHost: 127.0.0.1\nX-A: a\nConnection: close\n\n",
     qr/^400$/, 'no'],
    ['control character in a header name',
     "GET /hostile?%T HTTP/1.1\r\n${H}X\x01A: a\r\n$C\r\n", qr/^400$/, 'no'],
    ['space before the colon',
     "GET /hostile?%T HTTP/1.1\r\n${H}X-A : a\r\n$C\r\n", qr/^400$/, 'no'],
    ['Content-Length and Transfer-Encoding (smuggling)',
     "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
     . "5\r\nhello\r\n0\r\n\r\nGET /hostile?%S HTTP/1.1\r\n$H$C\r\n",
     qr/^(400|200)$/, 'chunked-or-no', { smuggle => 1 }],
    ['Transfer-Encoding and Content-Length (smuggling)',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n"
     . "0\r\n\r\nGET /hostile?%S HTTP/1.1\r\n$H$C\r\n",
     qr/^(400|200)$/, 'chunked-or-no', { smuggle => 1 }],
    ['two differing Content-Lengths (smuggling)',
     "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 44\r\n\r\n"
     . "helloGET /hostile?%S HTTP/1.1\r\n$H$C\r\n",
     qr/^400$/, 'no', { smuggle => 1 }],
    ['Transfer-Encoding: chunked, identity',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n$C\r\n"
     . "5\r\nhello\r\n0\r\n\r\n",
     qr/^(400|501)$/, 'no'],
    ['Transfer-Encoding: identity with Content-Length',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\nContent-Length: 5\r\n$C\r\nhello",
     qr/^(400|501)$/, 'no'],
    ['Transfer-Encoding with a space before the colon',
     "POST /hostile?%T HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n$C\r\n"
     . "5\r\nhello\r\n0\r\n\r\n",
     qr/^400$/, 'no'],
    ['Content-Length: -5', "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: -5\r\n$C\r\nhello",
     qr/^400$/, 'no'],
    ['Content-Length: +5', "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: +5\r\n$C\r\nhello",
     qr/^400$/, 'no'],
    ['Content-Length in hex', "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: 0x5\r\n$C\r\nhello",
     qr/^400$/, 'no'],
    ['Content-Length: 5, 5', "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n$C\r\nhello",
     qr/^400$/, 'no'],
    ['Content-Length beyond 64 bits',
     "POST /hostile?%T HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n$C\r\nhello",
     qr/^(400|413)$/, 'no'],
);

plan tests => 2 + @rows + 2;

# A well-formed request first: the vhost and the app work, and record.
subtest 'control: a well-formed POST reaches the app with its body' => sub {
    my $t = token('control');
    my $res = send_raw("POST /hostile?$t HTTP/1.1\r\n${H}Content-Length: 5\r\n$C\r\nhello");
    is($res->{statuses}[0], 200, 'status 200');
    my $text = calls_text();
    like($text, qr/^called \Q$t\E$/m, 'the app recorded the call');
    like($text, qr/^body \Q$t\E 5$/m, 'and the 5-byte body');
};

subtest "slow clients are cut off ($n_slow slow-header, $n_slow slow-body) and others are served meanwhile" => sub {
    my $offset = log_offset();
    my $t0 = time;
    my (@slow, %kind, %closed_at, %status);
    for my $i (1 .. 2 * $n_slow) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 5)
            or return fail("connect: $@");
        binmode $s;
        my $body = $i > $n_slow;
        $kind{$s} = $body ? 'body' : 'header';
        # Slow-header: a request line, then a byte at a time for ever.
        # Slow-body: complete headers, then a byte at a time.
        my $t = token("slow$kind{$s}");
        syswrite($s, $body
            ? "POST /hostile?$t HTTP/1.1\r\n${H}Content-Length: 1000\r\n\r\n"
            : "GET /hostile?$t HTTP/1.1\r\n");
        push @slow, $s;
    }
    local $SIG{PIPE} = 'IGNORE';
    my $sel = IO::Select->new(@slow);
    my @latency;
    my $failed = 0;
    my %buf;
    while (time - $t0 < $HEADER_MAX + 3 && $sel->count) {
        for my $s ($sel->handles) {
            syswrite($s, $kind{$s} eq 'body' ? 'x' : 'X');
        }
        for my $s ($sel->can_read(0.3)) {
            my $n = sysread($s, my $b, 65536);
            if ($n) { $buf{$s} .= $b; next }
            $closed_at{$s} = time - $t0;
            ($status{$s}) = ($buf{$s} // '') =~ m{^HTTP/1\.\d (\d{3})};
            $sel->remove($s);
        }
        # A normal client, on the same virtual host and on the main one.
        for my $which (qw(vhost main)) {
            my $t = time;
            my $st = $which eq 'vhost'
                ? send_raw("GET /whoami HTTP/1.1\r\n$H$C\r\n", timeout => 5)->{statuses}[0]
                : PWTest::raw_request(path => '/env')->{status};
            $failed++ unless ($st // 0) == 200;
            push @latency, time - $t;
        }
    }
    close $_ for @slow;
    my $max = 0;
    $max = $_ > $max ? $_ : $max for @latency;
    is($failed, 0, scalar(@latency) . ' normal requests served meanwhile');
    cmp_ok($max, '<', 1.5, sprintf('the slowest took %.2f s', $max));
    for my $s (@slow) {
        my $limit = $kind{$s} eq 'header' ? $HEADER_MAX : $BODY_MAX;
        my $at = $closed_at{$s};
        ok(defined $at && $at <= $limit + 1.5,
           sprintf("slow-%s client cut off after %s s (limit %d s)", $kind{$s},
                   defined $at ? sprintf('%.1f', $at) : 'never', $limit));
        like($status{$s} // 'none', qr/^(408|400|none)$/,
             "... with " . ($status{$s} // 'no response'));
    }
    my @noise = pywsgi_noise(log_since($offset));
    ok(!@noise, 'mod_pywsgi logged nothing above info') or diag(join "\n", @noise);
};

for my $row (@rows) {
    my ($name, $bytes, $want, $app, $o) = @$row;
    $o ||= {};
    my $t = token('row');
    my $smuggled = "$t-smuggled";
    (my $req = $bytes) =~ s/%T/$t/g;
    $req =~ s/%S/$smuggled/g;
    subtest $name => sub {
        my $offset = log_offset();
        my $res = send_raw($req, %$o);
        my $status = $res->{statuses}[0];
        if ($want) {
            like($status // 'none', $want, 'status ' . ($status // 'none'));
        }
        else {
            like($status // 'none', qr/^(4\d\d|none)$/,
                 'a 4xx or no response: ' . ($status // 'none'));
        }
        my $calls = calls_text();
        if ($app eq 'no') {
            unlike($calls, qr/^called \Q$t\E$/m, 'the app was not called');
        }
        elsif ($app eq 'chunked-or-no' && ($status // 0) == 200) {
            # Apache follows RFC 9112 6.3: Transfer-Encoding wins and the
            # connection is closed after the response.
            my ($json) = $res->{raw} =~ /\r\n\r\n(\{.*\})/s;
            my $data = decode_json_body($json // '');
            # The chunked body is read before the app runs (issue 11): its
            # size is CONTENT_LENGTH, never the smuggled header's value.
            my $cl = $data ? $data->{environ}{CONTENT_LENGTH} : 'no answer';
            ok($data && (!defined $cl || $cl =~ /^[05]$/),
               'CONTENT_LENGTH is the chunked body\'s size, not the header: '
               . ($cl // 'absent'));
            like($calls, qr/^body \Q$t\E (5|0)$/m, 'the app got the chunked body only');
        }
        unlike($calls, qr/^body \Q$t\E /m, 'the app got no body')
            if $app eq 'nobody';
        unlike($calls, qr/\Q$smuggled\E/, 'the smuggled request never reached the app')
            if $o->{smuggle};
        is(scalar @{ $res->{statuses} }, 1, 'one response on the connection')
            if $o->{smuggle};
        my @noise = pywsgi_noise(log_since($offset));
        ok(!@noise, 'mod_pywsgi logged nothing above info')
            or diag(join "\n", @noise);
    };
}

subtest 'obs-fold (a header continued on the next line)' => sub {
    my $t = token('fold');
    my $res = send_raw("GET /hostile?$t HTTP/1.1\r\n${H}X-Fold: a\r\n b\r\n$C\r\n");
    my $status = $res->{statuses}[0] // 'none';
    if ($status eq '200') {
        my ($json) = $res->{raw} =~ /\r\n\r\n(\{.*\})/s;
        my $data = decode_json_body($json // '') || {};
        my $v = $data->{http}{HTTP_X_FOLD} // '';
        unlike($v, qr/[\r\n\0]/, "folded into one line: '$v'");
    }
    else {
        is($status, 400, 'refused');
    }
};

subtest 'the server is still fine' => sub {
    my $res = send_raw("GET /whoami HTTP/1.1\r\n$H$C\r\n");
    is($res->{statuses}[0], 200, 'a normal request on the virtual host');
    is(PWTest::raw_request(path => '/env')->{status}, 200, 'and on the main server');
};
