package PWRaw;
# A raw HTTP/1.x connection for tests that must see the bytes on the wire:
# several requests on one connection (keep-alive, pipelining), 1xx interim
# responses, chunk boundaries and their arrival times, whether the server
# closed the connection, a body cut short. Every read and write has a
# deadline; nothing here can hang a test.
#
#   my $c = PWRaw->new or die;
#   $c->send("GET /p3/resp/fixed HTTP/1.1\r\nHost: x\r\n\r\n");
#   my $r = $c->response;           # {status, headers, body, complete, ...}
#   ok($c->closed_within(2), 'server closed');
use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes ();
use Apache::Test ();

our @EXPORT_OK = qw(request_text chunk_body);

our $TIMEOUT = 10;    # seconds for any single wait

# PWRaw->new(port => N): the test server's port unless given.
sub new {
    my ($class, %opt) = @_;
    my $port = $opt{port} || Apache::Test::vars('port');
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout  => $TIMEOUT)
        or return;
    binmode $sock;
    $sock->blocking(0);
    return bless { sock => $sock, buf => '', eof => 0, error => undef,
                   port => $port }, $class;
}

sub port       { $_[0]->{port} }
sub local_port { $_[0]->{sock}->sockport }

# The text of a request: request_text('GET', '/x', [[h, v], ...], $body,
# proto => 'HTTP/1.0', host => 0 (no Host header)). A body gets a
# Content-Length unless a Transfer-Encoding or Content-Length is given.
sub request_text {
    my ($method, $path, $headers, $body, %opt) = @_;
    my $proto = $opt{proto} || 'HTTP/1.1';
    my $port = Apache::Test::vars('port');
    my $text = "$method $path $proto\r\n";
    $text .= "Host: 127.0.0.1:$port\r\n" unless defined $opt{host} && !$opt{host};
    my $framed = 0;
    for my $h (@{ $headers || [] }) {
        $text .= "$h->[0]: $h->[1]\r\n";
        $framed = 1 if $h->[0] =~ /^(content-length|transfer-encoding)$/i;
    }
    if (defined $body && !$framed) {
        $text .= 'Content-Length: ' . length($body) . "\r\n";
    }
    return $text . "\r\n" . (defined $body ? $body : '');
}

# A chunked body: chunk_body($data, $size) -> pieces of $size bytes each,
# hex sizes, then the last chunk.
sub chunk_body {
    my ($data, $size) = @_;
    my $out = '';
    for (my $i = 0; $i < length $data; $i += $size) {
        my $part = substr($data, $i, $size);
        $out .= sprintf("%x\r\n", length $part) . $part . "\r\n";
    }
    return $out . "0\r\n\r\n";
}

# Writes all of $data (or fails after the deadline). Returns true on success.
sub send {
    my ($self, $data) = @_;
    my $deadline = Time::HiRes::time() + $TIMEOUT;
    my $sel = IO::Select->new($self->{sock});
    local $SIG{PIPE} = 'IGNORE';
    while (length $data) {
        my $left = $deadline - Time::HiRes::time();
        if ($left <= 0 || !$sel->can_write($left)) {
            $self->{error} = 'write timeout';
            return 0;
        }
        my $n = syswrite($self->{sock}, $data);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            $self->{error} = "write: $!";
            return 0;
        }
        substr($data, 0, $n) = '';
    }
    return 1;
}

# Reads more into the buffer; false at EOF, error or after $wait seconds.
sub _fill {
    my ($self, $wait) = @_;
    return 0 if $self->{eof};
    $wait = $TIMEOUT unless defined $wait;
    my $sel = IO::Select->new($self->{sock});
    my $deadline = Time::HiRes::time() + $wait;
    while (1) {
        my $left = $deadline - Time::HiRes::time();
        if ($left <= 0 || !$sel->can_read($left)) {
            $self->{timed_out} = 1;
            return 0;
        }
        my $n = sysread($self->{sock}, my $chunk, 65536);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            # A reset counts as the end: what was read is still parsed.
            $self->{error} = "read: $!";
            $self->{eof} = 1;
            return 0;
        }
        if ($n == 0) {
            $self->{eof} = 1;
            return 0;
        }
        $self->{buf} .= $chunk;
        return 1;
    }
}

# Up to and including $delim from the buffer, reading as needed.
sub _read_until {
    my ($self, $delim) = @_;
    while (1) {
        my $i = index($self->{buf}, $delim);
        return substr($self->{buf}, 0, $i + length($delim), '') if $i >= 0;
        return undef unless $self->_fill;
    }
}

sub _read_n {
    my ($self, $n) = @_;
    while (length($self->{buf}) < $n) {
        last unless $self->_fill;
    }
    return substr($self->{buf}, 0, $n, '');
}

# The next response on the connection. Options: method => 'HEAD' (no body
# expected), keep_1xx => 1 (return a 100 Continue instead of skipping it).
# Returns {status, reason, proto, head (raw header block), headers
# ({lc name => value, repeated ones joined with ", "}), body, complete
# (the framing says the body is whole), framing ('length', 'chunked',
# 'close', 'none'), chunks ([[data, arrival time], ...]), error}; status 0
# when no response came.
sub response {
    my ($self, %opt) = @_;
    my $res = { status => 0, headers => {}, body => '', complete => 0,
                chunks => [], framing => 'none' };
    my $head = $self->_read_until("\r\n\r\n");
    unless (defined $head) {
        $res->{error} = $self->{error} || ($self->{eof} ? 'eof' : 'timeout');
        $res->{partial} = $self->{buf};
        return $res;
    }
    $res->{head} = $head;
    my ($status_line, @lines) = split /\r\n/, $head;
    unless ($status_line =~ m{^(HTTP/\d\.\d) (\d{3})(?: ([^\r\n]*))?$}) {
        $res->{error} = "bad status line: $status_line";
        return $res;
    }
    @$res{qw(proto status reason)} = ($1, $2, defined $3 ? $3 : '');
    for my $line (@lines) {
        my ($k, $v) = split /:[ \t]*/, $line, 2;
        $k = lc $k;
        $res->{headers}{$k} = exists $res->{headers}{$k}
                            ? "$res->{headers}{$k}, $v" : $v;
        push @{ $res->{header_list} }, [$k, $v];
    }
    if ($res->{status} =~ /^1/) {
        return $res if $opt{keep_1xx};
        return $self->response(%opt);
    }
    my $h = $res->{headers};
    if (($opt{method} || '') eq 'HEAD' || $res->{status} =~ /^(204|304)$/) {
        $res->{complete} = 1;
        return $res;
    }
    if (($h->{'transfer-encoding'} || '') =~ /chunked/i) {
        $res->{framing} = 'chunked';
        while (1) {
            my $size_line = $self->_read_until("\r\n");
            last unless defined $size_line;
            my ($hex) = $size_line =~ /^([0-9a-fA-F]+)/ or last;
            my $len = hex $hex;
            if ($len == 0) {
                my $trailer = $self->_read_until("\r\n");
                $res->{complete} = defined $trailer ? 1 : 0;
                last;
            }
            my $data = $self->_read_n($len + 2);
            my $at = Time::HiRes::time();
            my $got = substr($data, 0, $len);
            $res->{body} .= $got;
            push @{ $res->{chunks} }, [$got, $at];
            last if length($data) < $len + 2;
        }
    }
    elsif (defined $h->{'content-length'}) {
        $res->{framing} = 'length';
        my $want = $h->{'content-length'};
        $want =~ s/,.*//;
        $res->{body} = $self->_read_n($want);
        $res->{complete} = length($res->{body}) == $want ? 1 : 0;
    }
    else {
        $res->{framing} = 'close';
        1 while $self->_fill;
        $res->{body} = $self->{buf};
        $self->{buf} = '';
        $res->{complete} = $self->{eof} && !$self->{error} ? 1 : 0;
    }
    $res->{error} = $self->{error};
    return $res;
}

# True when the server closes the connection within $secs with nothing
# more to read; false if it stays open (or sends more bytes).
sub closed_within {
    my ($self, $secs) = @_;
    my $before = length $self->{buf};
    while (!$self->{eof}) {
        last unless $self->_fill($secs);
    }
    return $self->{eof} && length($self->{buf}) == $before ? 1 : 0;
}

# Bytes left unread in the buffer (e.g. a body after a 204).
sub leftover { $_[0]->{buf} }

sub close {
    my $self = shift;
    close $self->{sock} if $self->{sock};
    delete $self->{sock};
}

sub DESTROY { $_[0]->close }

1;
