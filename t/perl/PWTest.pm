package PWTest;
# Helpers shared by mod_pywsgi's .t files: raw HTTP requests (for things LWP
# rewrites, such as header names with '_', or chunked request bodies), the
# error log, the MPM under test, and the environ dump apps' JSON.
use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IO::Socket::INET ();
use JSON::PP ();
use Time::HiRes ();
use Apache::Test ();

our @EXPORT_OK = qw(raw_request decode_json_body mpm is_threaded_mpm
                    error_log_file log_offset log_since wait_for_log
                    pw_module pw_venv pw_python python_version
                    venv_cannot_import configtest);

my $TIMEOUT = 15;    # seconds; no request in the suite should get near it

# The MPM Apache::Test found in the -httpd_conf it was given (httpd -V).
sub mpm {
    my $mpm = Apache::Test::config()->{server}->{mpm} || '';
    return lc $mpm;
}

sub is_threaded_mpm { return mpm() =~ /^(worker|event)$/ ? 1 : 0 }

# The module, virtualenv and Python under test (t/TEST: PW_MODULE, PW_VENV,
# PW_PYTHON; by default the checkout's .libs/mod_pywsgi.so, t/venv and
# Debian's /usr/bin/python3).
sub pw_module { return Apache::Test::vars('pw_module') }
sub pw_venv   { return Apache::Test::vars('pw_venv') }
sub pw_python { return Apache::Test::vars('pw_python') }

# "3.11": the major.minor of pw_python, which the module embeds.
my $python_version;
sub python_version {
    return $python_version if defined $python_version;
    my $py = pw_python();
    chomp(my $v = qx{$py -I -c 'import sys; print("%d.%d" % sys.version_info[:2])'});
    $python_version = $v;
    return $v;
}

# Flask and Django come from Debian's packages, made for Debian's Python
# (3.11); another version may not run them (Debian's Django 3.2 needs
# zoneinfo, 3.9+, and cgi, gone in 3.13). Imports MODULES with the test
# venv's Python: '' when they import, else the error's last line (the
# reason a test file gives when it skips).
sub venv_cannot_import {
    my @modules = @_;
    my $py = pw_venv() . '/bin/python';
    my $code = 'import ' . join(', ', @modules);
    my $out = qx{$py -I -W ignore -c '$code' 2>&1};
    return '' if $? == 0;
    my @lines = grep { /\S/ } split /\n/, $out;
    return @lines ? $lines[-1] : "exit status $?";
}

sub decode_json_body {
    my $text = shift;
    my $data = eval { JSON::PP->new->decode($text) };
    return $data;
}

# raw_request(method => 'GET', path => '/x', headers => [[name, value], ...],
#             body => '...', chunked => 0|1)
# One request on its own connection (Connection: close) to 127.0.0.1.
# Returns { status, reason, headers => {lc name => value}, body,
#           complete => whether the body ended properly (terminating chunk
#           or full Content-Length, or EOF for an undelimited body),
#           error => undef or a string }.
sub raw_request {
    my %a = @_;
    my $method = $a{method} || 'GET';
    my $port = Apache::Test::vars('port');
    my $res = { status => 0, headers => {}, body => '', complete => 0,
                error => undef };

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port,
                                     Proto    => 'tcp',
                                     Timeout  => $TIMEOUT);
    unless ($sock) {
        $res->{error} = "connect: $@";
        return $res;
    }
    binmode $sock;

    my $req = "$method $a{path} HTTP/1.1\r\n"
            . "Host: 127.0.0.1:$port\r\n"
            . "Connection: close\r\n";
    $req .= "$_->[0]: $_->[1]\r\n" for @{ $a{headers} || [] };
    my $body = $a{body};
    if (defined $body) {
        if ($a{chunked}) {
            $req .= "Transfer-Encoding: chunked\r\n\r\n";
            # Two chunks, to make the server actually reassemble.
            my $half = int(length($body) / 2);
            for my $part (substr($body, 0, $half), substr($body, $half)) {
                next unless length $part;
                $req .= sprintf("%x\r\n", length $part) . $part . "\r\n";
            }
            $req .= "0\r\n\r\n";
        }
        else {
            $req .= "Content-Length: " . length($body) . "\r\n\r\n" . $body;
        }
    }
    else {
        $req .= "\r\n";
    }

    my $raw = '';
    my $ok = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $TIMEOUT;
        print {$sock} $req;
        while (1) {
            my $n = sysread($sock, my $buf, 65536);
            die "read: $!\n" unless defined $n;
            last if $n == 0;
            $raw .= $buf;
        }
        alarm 0;
        1;
    };
    alarm 0;
    close $sock;
    # A reset after data (an aborted response) is still a response to parse.
    $res->{error} = $@ unless $ok;
    $res->{raw} = $raw;

    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    return $res unless defined $head && $head =~ m{^HTTP/1\.\d (\d{3}) ?([^\r\n]*)};
    @$res{qw(status reason)} = ($1, $2);
    my @lines = split /\r\n/, $head;
    shift @lines;
    for my $line (@lines) {
        my ($k, $v) = split /:\s*/, $line, 2;
        $res->{headers}->{lc $k} = $v;
    }
    $rest = '' unless defined $rest;

    my $te = $res->{headers}->{'transfer-encoding'} || '';
    if ($te =~ /chunked/i) {
        my $out = '';
        while ($rest =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            if ($len == 0) {
                $res->{complete} = 1;
                last;
            }
            last if length($rest) < $len + 2;
            $out .= substr($rest, 0, $len);
            substr($rest, 0, $len + 2) = '';
        }
        $res->{body} = $out;
    }
    elsif (defined(my $cl = $res->{headers}->{'content-length'})) {
        $res->{body} = $rest;
        $res->{complete} = length($rest) == $cl ? 1 : 0;
    }
    else {
        $res->{body} = $rest;
        $res->{complete} = $ok ? 1 : 0;
    }
    return $res;
}

sub error_log_file {
    return Apache::Test::vars('t_logs') . '/error_log';
}

# Size of the error log now: pass it to log_since() after a request.
sub log_offset {
    return -s error_log_file() || 0;
}

sub log_since {
    my $offset = shift;
    open my $fh, '<', error_log_file() or return '';
    binmode $fh;
    seek $fh, $offset, 0;
    local $/;
    my $text = <$fh>;
    close $fh;
    return defined $text ? $text : '';
}

# Waits up to $secs for $re to appear in the log after $offset; returns the
# log text since $offset (whether or not it matched).
sub wait_for_log {
    my ($offset, $re, $secs) = @_;
    $secs ||= 3;
    my $deadline = Time::HiRes::time() + $secs;
    my $text;
    while (1) {
        $text = log_since($offset);
        return $text if $text =~ $re;
        last if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }
    return $text;
}


# Runs `httpd -t` on a minimal config (this run's MPM, authz_core, the module
# under test) plus $extra, in a new directory $dir; returns (exit, output).
sub configtest {
    my ($dir, $extra) = @_;
    my $httpd = Apache::Test::vars('httpd') || '/usr/sbin/apache2';
    my $mods  = '/usr/lib/apache2/modules';
    my $m     = mpm() || 'prefork';
    require IPC::Open3;
    mkdir $dir or die "mkdir $dir: $!";
    my $conf = "$dir/httpd.conf";
    open my $fh, '>', $conf or die "$conf: $!";
    print $fh <<"EOF";
ServerRoot $dir
DefaultRuntimeDir $dir
PidFile $dir/httpd.pid
ErrorLog $dir/error_log
ServerName localhost
Listen 127.0.0.1:8599
LoadModule mpm_${m}_module $mods/mod_mpm_${m}.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule pywsgi_module ${\ pw_module()}
$extra
EOF
    close $fh;

    # stderr joins stdout (a false error handle): one stream, no deadlock.
    my $pid = IPC::Open3::open3(my $in, my $out, undef,
                                $httpd, '-t', '-d', $dir, '-f', $conf);
    close $in;
    my $text = do { local $/; <$out> } // '';
    waitpid $pid, 0;
    return ($? >> 8, $text);
}

1;
