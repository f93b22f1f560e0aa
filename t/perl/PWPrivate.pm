package PWPrivate;
# A private httpd for the .t files that crash, stop or restart a server
# (t/faults.t, t/stops.t): built from t/stress/private.conf.in, the same
# template the stress drivers (t/stress/pwstress.py) use, on 127.0.0.1 port
# 8700-8719, in a temporary directory. httpd daemonizes itself (its own
# session); stop() -- also run when the object goes away -- sends SIGTERM,
# waits, and SIGKILLs whatever is left that was started from this config.
#
#   my $srv = PWPrivate->new(mpm => mpm(), procs => 3, threads => 4,
#                            extra => "PyWSGIScriptAlias /x \@TOP\@/t/apps/x.py");
#   $srv->start or BAIL_OUT($srv->{error});
#   my $c = $srv->conn;  my $res = $c->request('/x');   # keep-alive
#   my $res = $srv->get('/x');                          # connection: close
#   $srv->stop;
use strict;
use warnings FATAL => 'all';

use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(time sleep);

my $HTTPD = '/usr/sbin/apache2';
my @PORTS = (8700 .. 8719);
my $START_WAIT = 20;

sub new {
    my ($class, %a) = @_;
    my $top = $a{top} || Apache::Test::vars('top_dir');
    my $self = bless {
        mpm => $a{mpm} || 'event', procs => $a{procs} || 2,
        threads => $a{threads} || 4, extra => $a{extra} || '',
        top => $top, pid => undef,
    }, $class;
    $self->{tmp} = File::Temp->newdir('pwprivate-XXXXXX', TMPDIR => 1);
    $self->{dir} = $self->{tmp}->dirname;
    chmod 0755, $self->{dir};
    mkdir "$self->{dir}/htdocs";
    return $self;
}

sub dir  { $_[0]->{dir} }
sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }
sub conf_file { "$_[0]->{dir}/httpd.conf" }
sub error_log { "$_[0]->{dir}/error_log" }

my %handed_out;
sub free_port {
    for my $port (@PORTS) {
        next if $handed_out{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      ReuseAddr => 1, Listen => 1)
            or next;
        close $s;
        $handed_out{$port} = 1;
        return $port;
    }
    return;
}

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
             MPM => $self->{mpm}, MODULE => "$self->{top}/.libs/mod_pywsgi.so",
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
    $self->{port} = free_port() or return $self->fail('no free port');
    open my $fh, '>', $self->conf_file or return $self->fail("conf: $!");
    print {$fh} $self->config_text;
    close $fh;
    my $out = qx($HTTPD -f ${\ $self->conf_file} 2>&1 < /dev/null);
    return $self->fail("apache2 exited " . ($? >> 8) . ": $out") if $?;
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

sub fail {
    my ($self, $msg) = @_;
    my @tail = split /\n/, $self->log_text;
    @tail = @tail[-15 .. -1] if @tail > 15;
    $self->{error} = join "\n", $msg, @tail;
    $self->stop;
    return 0;
}

sub pidfile_pid {
    my $self = shift;
    open my $fh, '<', "$self->{dir}/httpd.pid" or return 0;
    my $p = <$fh> // '';
    close $fh;
    $p =~ s/\s+//g;
    return $p =~ /^\d+$/ ? $p : 0;
}

# --- the error log ------------------------------------------------------------
sub log_offset { return -s $_[0]->error_log || 0 }

sub log_text {
    my ($self, $offset) = @_;
    open my $fh, '<', $self->error_log or return '';
    binmode $fh;
    seek $fh, $offset || 0, 0;
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text // '';
}

# Waits up to $secs for $re after $offset; returns the text since $offset.
sub wait_for_log {
    my ($self, $offset, $re, $secs) = @_;
    my $deadline = time + ($secs || 3);
    while (1) {
        my $text = $self->log_text($offset);
        return $text if $text =~ $re || time > $deadline;
        sleep 0.05;
    }
}

# --- processes ----------------------------------------------------------------
sub proc_stat {
    my $pid = shift;
    open my $s, '<', "/proc/$pid/stat" or return;
    my $stat = <$s> // '';
    close $s;
    return $stat =~ /\)\s+(\S)\s+(\d+)/ ? ($1, $2) : ();
}

sub alive {
    my ($state) = proc_stat($_[-1]);
    return defined $state && $state ne 'Z' ? 1 : 0;
}

# What a process is doing (for a diagnostic): state, wchan, its threads'.
sub describe {
    my $pid = shift;
    my @out;
    for my $task (sort { $a <=> $b } map { m{/(\d+)$} ? $1 : () } glob "/proc/$pid/task/*") {
        my ($state) = proc_stat($task);
        open my $w, '<', "/proc/$pid/task/$task/wchan" or next;
        my $wchan = <$w> // '';
        close $w;
        push @out, "task $task: state " . ($state // '?') . ", wchan $wchan";
    }
    return join "\n", "pid $pid:", @out;
}

# The parent's live children.
sub children {
    my $self = shift;
    my $parent = $self->{pid} or return ();
    opendir my $dh, '/proc' or return ();
    my @kids;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my ($state, $ppid) = proc_stat($pid);
        push @kids, $pid if defined $ppid && $ppid == $parent && $state ne 'Z';
    }
    @kids = sort { $a <=> $b } @kids;
    return @kids;      # (sort in scalar context is undefined)
}

# Every live process started from this config: the parent, its children,
# and any child that outlived its parent (it keeps the command line).
sub all_pids {
    my $self = shift;
    my $conf = $self->conf_file;
    opendir my $dh, '/proc' or return ();
    my @found;
    for my $pid (grep { /^\d+$/ && $_ != $$ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/cmdline" or next;
        local $/;
        my $cmd = <$fh> // '';
        close $fh;
        $cmd =~ tr/\0/ /;
        push @found, $pid if index($cmd, $conf) >= 0 && alive($pid);
    }
    @found = sort { $a <=> $b } @found;
    return @found;
}

# Waits up to $secs until no process of this server is left; returns the
# seconds it took, or undef (then $self->all_pids says who is left).
sub wait_all_gone {
    my ($self, $secs) = @_;
    my $t0 = time;
    while (1) {
        return time - $t0 unless $self->all_pids;
        return undef if time - $t0 > $secs;
        sleep 0.05;
    }
}

# Waits until the parent has $n children none of which is in @not;
# returns them (or an empty list after $secs).
sub wait_children {
    my ($self, $n, $secs, @not) = @_;
    my %not = map { $_ => 1 } @not;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my @kids = grep { !$not{$_} } $self->children;
        return @kids if @kids >= $n;
        sleep 0.05;
    }
    return ();
}

sub send_signal {
    my ($self, $sig) = @_;
    return $self->{pid} ? kill($sig, $self->{pid}) : 0;
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
