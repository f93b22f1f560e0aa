package PWPrivate;
# A private httpd for the .t files that crash, stop or restart a server
# (t/faults.t, t/stops.t): built from t/stress/private.conf.in, the same
# template the stress drivers (t/stress/pwstress.py) use, on 127.0.0.1 port
# 8700-8719, in a temporary directory. Unlike PWServer, whose parent runs in
# the foreground of a session of its own, httpd daemonizes itself here, as
# it does in production: these tests signal that parent and watch what it
# leaves behind. stop() -- also run when the object goes away -- sends
# SIGTERM, waits, and SIGKILLs whatever is left that was started from this
# config. Everything else (log, processes, ports) is PWServer's.
#
#   my $srv = PWPrivate->new(mpm => mpm(), procs => 3, threads => 4,
#                            extra => "PyWSGIScriptAlias /x \@TOP\@/t/apps/x.py");
#   $srv->start or BAIL_OUT($srv->{error});
#   my $c = $srv->conn;  my $res = $c->request('/x');   # keep-alive
#   my $res = $srv->get('/x');                          # connection: close
#   $srv->stop;
use strict;
use warnings FATAL => 'all';

use parent -norequire, 'PWServer';
use PWServer ();
use File::Temp ();
use IO::Socket::INET ();
use Time::HiRes qw(time sleep);

my $HTTPD = '/usr/sbin/apache2';
# PW_PRIVATE_PORTS=8721-8729 confines every private server (a caller's own
# range too) to those ports: one checkout's run beside another's.
my @PORTS = (8700 .. 8719);
my @ENV_PORTS = ($ENV{PW_PRIVATE_PORTS} // '') =~ /^(\d+)-(\d+)$/ ? ($1 .. $2) : ();
my $START_WAIT = 20;

sub new {
    my ($class, %a) = @_;
    my $top = $a{top} || Apache::Test::vars('top_dir');
    my $self = bless {
        name => 'private', mpm => $a{mpm} || 'event',
        procs => $a{procs} || 2, threads => $a{threads} || 4,
        extra => $a{extra} || '', top => $top, pid => undef,
        ports => @ENV_PORTS ? \@ENV_PORTS : $a{ports} || \@PORTS,
    }, $class;
    $self->{tmp} = File::Temp->newdir('pwprivate-XXXXXX', TMPDIR => 1);
    $self->{dir} = $self->{tmp}->dirname;
    chmod 0755, $self->{dir};
    mkdir "$self->{dir}/htdocs";
    return $self;
}

sub conf_file { "$_[0]->{dir}/httpd.conf" }

sub run_user {
    for my $user (qw(www-data nobody)) {
        my @pw = getpwnam($user) or next;
        return ($user, scalar getgrgid($pw[3]));
    }
    return ('nobody', 'nogroup');
}

sub config_text {
    my $self = shift;
    my $threads = $self->{mpm} eq 'prefork' ? 1 : $self->{threads};
    my ($user, $group) = run_user();
    my %v = (DIR => $self->{dir}, PORT => $self->{port},
             MPM => $self->{mpm},
             MODULE => PWServer::module_path($self->{top}),
             USER => $user, GROUP => $group, TOP => $self->{top},
             PROCS => $self->{procs}, THREADS => $threads,
             SERVERLIMIT => 2 * $self->{procs},
             MAXWORKERS => $self->{procs} * $threads,
             MAXSPARE => ($self->{procs} + 1) * $threads,
             MINSPARE => ($self->{procs} - 1) * $threads + 1);
    (my $extra = $self->{extra}) =~ s/\@(TOP|DIR)\@/$v{$1}/g;
    $v{EXTRA} = $extra;
    open my $fh, '<', "$self->{top}/t/stress/private.conf.in"
        or die "private.conf.in: $!";
    local $/;
    my $text = <$fh>;
    close $fh;
    $text =~ s/\@([A-Z]+)\@/exists $v{$1} ? $v{$1} : "\@$1\@"/ge;
    return $text;
}

# Returns true, or false with $self->{error} set.
sub start {
    my $self = shift;
    $self->{port} = PWServer::free_port(@{ $self->{ports} })
        or return $self->fail("no free port in @{ $self->{ports} }[0]-"
                              . "@{ $self->{ports} }[-1]");
    open my $fh, '>', $self->conf_file or return $self->fail("conf: $!");
    print {$fh} $self->config_text;
    close $fh;
    my $out = qx($HTTPD -f ${\ $self->conf_file} 2>&1 < /dev/null);
    return $self->fail("apache2 exited " . ($? >> 8) . ": $out") if $?;
    $self->{start_output} = $out;    # what it said before its log opened
    my $deadline = time + $START_WAIT;
    while (time < $deadline) {
        if (my $pid = $self->pidfile_pid) {
            $self->{pid} = $pid;
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $self->{port},
                                          Proto => 'tcp', Timeout => 1);
            if ($s) { close $s; return 1 }
        }
        sleep 0.05;
    }
    return $self->fail("httpd did not accept connections in $START_WAIT s");
}

# SIGTERM (Apache's hard stop), then SIGKILL for anything left after
# $secs (default 20: Apache itself gives children ~10 s). Returns the pids
# that had to be killed.
sub stop {
    my ($self, $secs) = @_;
    return () unless $self->{port};
    $self->send_signal('TERM') if $self->{pid};
    my @left;
    unless (defined $self->wait_all_gone($secs || 20)) {
        @left = $self->all_pids;
        kill 'KILL', @left;
        $self->wait_all_gone(5);
    }
    $self->{pid} = undef;
    $self->{port} = undef;
    return @left;
}

sub DESTROY {
    my $self = shift;
    local ($?, $@, $!);
    $self->stop if $self->{port};
}

# --- client -----------------------------------------------------------------------
sub conn {
    my ($self, %o) = @_;
    return PWPrivate::Conn->new($self->{port}, %o);
}

# One request on a connection of its own.
sub get {
    my ($self, $path, %o) = @_;
    my $c = $self->conn(%o) or return { status => 0, error => "connect: $!" };
    my $res = $c->request($path, close => 1, %o);
    $c->close;
    return $res;
}

package PWPrivate::Conn;
# One keep-alive client connection. request() sends and reads one response;
# send() and response() split it, to keep a request in flight.
# A response is { status, headers => {lc name => value}, body, complete,
# closed => server closed the connection, error => undef or text }.
use strict;
use warnings FATAL => 'all';
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(time);

sub new {
    my ($class, $port, %o) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 5)
        or return;
    binmode $sock;
    return bless { sock => $sock, port => $port, buf => '',
                   timeout => $o{timeout} || 15 }, $class;
}

sub close {
    my $self = shift;
    close $self->{sock} if $self->{sock};
    $self->{sock} = undef;
}

sub send {
    my ($self, $path, %o) = @_;
    my $method = $o{method} || 'GET';
    my $req = "$method $path HTTP/1.1\r\nHost: 127.0.0.1:$self->{port}\r\n";
    $req .= "Connection: close\r\n" if $o{close};
    $req .= "$_->[0]: $_->[1]\r\n" for @{ $o{headers} || [] };
    if (defined $o{body}) {
        $req .= 'Content-Length: ' . length($o{body}) . "\r\n\r\n$o{body}";
    }
    else {
        $req .= "\r\n";
    }
    local $SIG{PIPE} = 'IGNORE';
    my $ok = defined syswrite($self->{sock}, $req);
    $self->{sent_at} = time;
    return $ok;
}

# Reads more into the buffer; false at EOF, error or deadline.
sub fill {
    my ($self, $deadline) = @_;
    my $left = $deadline - time;
    return 0 if $left <= 0;
    return 0 unless IO::Select->new($self->{sock})->can_read($left);
    my $n = sysread($self->{sock}, my $chunk, 65536);
    return 0 unless $n;
    $self->{buf} .= $chunk;
    return 1;
}

sub response {
    my ($self, %o) = @_;
    my $deadline = time + ($o{timeout} || $self->{timeout});
    my $res = { status => 0, headers => {}, body => '', complete => 0,
                closed => 0, error => undef };
    unless ($self->{sock}) {
        $res->{error} = 'not connected';
        return $res;
    }
    until ($self->{buf} =~ /\r\n\r\n/) {
        next if $self->fill($deadline);
        $res->{closed} = time < $deadline;
        $res->{error} = $res->{closed} ? 'closed before a response'
                                       : 'timeout waiting for a response';
        return $res;
    }
    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    $self->{buf} = $rest;
    my @lines = split /\r\n/, $head;
    my $first = shift @lines;
    $res->{status} = $first =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0;
    for (@lines) {
        my ($k, $v) = split /:\s*/, $_, 2;
        $res->{headers}{lc $k} = $v;
    }
    my $h = $res->{headers};
    if (($h->{'transfer-encoding'} || '') =~ /chunked/i) {
        while (1) {
            if ($self->{buf} =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
                my $len = hex $1;
                if ($len == 0) {
                    1 while $self->{buf} !~ /\r\n/ && $self->fill($deadline);
                    $self->{buf} =~ s/^.*?\r\n//s;
                    $res->{complete} = 1;
                    last;
                }
                while (length($self->{buf}) < $len + 2) {
                    $self->fill($deadline) or last;
                }
                $res->{body} .= substr($self->{buf}, 0, $len);
                substr($self->{buf}, 0, $len + 2) = '';
                last if length($self->{buf}) == 0 && !$self->fill($deadline);
                next;
            }
            $self->fill($deadline) or last;
        }
    }
    elsif (defined(my $cl = $h->{'content-length'})) {
        while (length($self->{buf}) < $cl) {
            $self->fill($deadline) or last;
        }
        $res->{body} = substr($self->{buf}, 0, $cl);
        $self->{buf} = substr($self->{buf}, length $res->{body});
        $res->{complete} = length($res->{body}) == $cl ? 1 : 0;
    }
    else {
        1 while $self->fill($deadline);
        $res->{body} = $self->{buf};
        $self->{buf} = '';
        $res->{complete} = 1;
    }
    $res->{elapsed} = time - $self->{sent_at};
    return $res;
}

sub request {
    my ($self, $path, %o) = @_;
    $self->send($path, %o)
        or return { status => 0, error => "send: $!", closed => 1 };
    return $self->response(%o);
}

1;
