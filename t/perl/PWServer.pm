package PWServer;
# Private httpd instances and a small keep-alive HTTP client, for the tests
# whose settings are process-wide or disruptive (PyWSGIMaxRequests,
# PyWSGIPreload, graceful restarts, ...) and so must not run in the shared
# Apache::Test server.
#
#   my $srv = PWServer->new(name => 'reload', mpm => mpm(), processes => 1,
#                           conf => "PyWSGIScriptAlias / $app\n");
#   $srv->start or diag($srv->{error});
#   my $res = $srv->get('/x');            # { status, body, headers, ... }
#   $srv->graceful;                       # kill -USR1 the parent
#   $srv->stop;                           # also done when $srv goes away
#
# Each server gets a temporary directory (config, error_log, pid file,
# mutexes), a free port in 8650-8699 on 127.0.0.1, and runs
# `apache2 -f CONF -DFOREGROUND` in a session of its own, so that stop() can
# end it and anything it left behind by its process group. Everything waits
# with a deadline.
use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use Errno ();
use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(free_port http_get proc_children process_alive
                    proc_stat module_path);

my $HTTPD    = '/usr/sbin/apache2';
my $MODS     = '/usr/lib/apache2/modules';
my @PORTS    = (8650 .. 8699);
my $START_WAIT = 15;     # seconds for a server to accept connections
my $STOP_WAIT  = 10;     # seconds for it to stop before SIGKILL

# The module under test: PW_MODULE (t/run-pythons points it at a build
# for another Python), else the checkout's.
sub module_path {
    my $top = shift;
    return $ENV{PW_MODULE} || "$top/.libs/mod_pywsgi.so";
}

# A port nobody listens on, from @_ or the range the private servers use.
# Ports handed out before are skipped (a server just stopped may still be
# closing); the start offset is random, so runs do not queue on one port.
my %handed_out;
sub free_port {
    my @range = @_ ? @_ : @PORTS;
    my $off = int(rand(@range));
    for my $i (0 .. $#range) {
        my $port = $range[ ($off + $i) % @range ];
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

# new(name => NAME, mpm => prefork|worker|event, top => checkout,
#     processes => N, threads => T (worker/event), conf => extra lines,
#     server_limit => N (default: processes, twice that for worker/event so
#     a graceful restart's new generation finds free slots))
sub new {
    my ($class, %a) = @_;
    my $self = bless {
        name      => $a{name} || 'pw',
        mpm       => $a{mpm} || 'event',
        top       => $a{top},
        processes => $a{processes} || 1,
        threads   => $a{threads} || 4,
        conf      => $a{conf} || '',
        server_limit => $a{server_limit},
        pid       => undef,
    }, $class;
    $self->{tmp} = File::Temp->newdir("pw-$self->{name}-XXXXXX", TMPDIR => 1, CLEANUP => !$ENV{PW_KEEP_SERVER_DIR});
    $self->{dir} = $self->{tmp}->dirname;
    chmod 0755, $self->{dir};        # the children (nobody) read the apps here
    return $self;
}

sub dir  { $_[0]->{dir} }
sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }
sub error_log { "$_[0]->{dir}/error_log" }

sub mpm_lines {
    my $self = shift;
    my ($n, $t) = @$self{qw(processes threads)};
    if ($self->{mpm} eq 'prefork') {
        my $limit = $self->{server_limit} || $n;
        return <<"EOF";
StartServers $n
MinSpareServers 1
MaxSpareServers $n
ServerLimit $limit
MaxRequestWorkers $n
MaxConnectionsPerChild 0
EOF
    }
    my $limit = $self->{server_limit} || 2 * $n;
    my $total = $n * $t;
    my $maxspare = $total > 2 * $t ? $total : 2 * $t;
    return <<"EOF";
StartServers $n
ServerLimit $limit
ThreadLimit $t
ThreadsPerChild $t
MaxRequestWorkers $total
MinSpareThreads 1
MaxSpareThreads $maxspare
MaxConnectionsPerChild 0
EOF
}

sub config_text {
    my $self = shift;
    my $dir = $self->{dir};
    my $mpm = $self->{mpm};
    my $module = module_path($self->{top});
    my $user = $> == 0 ? "User nobody\nGroup nogroup\n" : '';
    my $mpm_lines = $self->mpm_lines;
    return <<"EOF";
# Private server '$self->{name}' for a mod_pywsgi test; removed afterwards.
ServerRoot $dir
DefaultRuntimeDir $dir
PidFile $dir/httpd.pid
Mutex file:$dir default
ServerName 127.0.0.1
Listen 127.0.0.1:$self->{port}
LoadModule mpm_${mpm}_module $MODS/mod_mpm_${mpm}.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule pywsgi_module $module
$user
$mpm_lines
ErrorLog $dir/error_log
LogLevel warn pywsgi:info
Timeout 30
KeepAlive On
KeepAliveTimeout 5
MaxKeepAliveRequests 100
GracefulShutdownTimeout 10
<Directory />
    Require all denied
</Directory>
<Directory $self->{top}/t/apps>
    Require all granted
</Directory>
<Directory $dir>
    Require all granted
</Directory>

$self->{conf}
EOF
}

# Writes the config, starts httpd, waits until it accepts connections.
# Returns true, or false with $self->{error} set (and the server stopped).
sub start {
    my $self = shift;
    $self->{port} = free_port()
        or return $self->fail('no free port in 8650-8699');
    $self->{conf_file} = "$self->{dir}/httpd.conf";
    open my $fh, '>', $self->{conf_file} or return $self->fail("conf: $!");
    print {$fh} $self->config_text;
    close $fh;

    my $pid = fork;
    return $self->fail("fork: $!") unless defined $pid;
    if ($pid == 0) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/stdout";
        open STDERR, '>&', \*STDOUT;
        exec($HTTPD, '-f', $self->{conf_file}, '-DFOREGROUND')
            or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{started_at} = time;

    my $deadline = time + $START_WAIT;
    while (time < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            $self->{pid} = undef;
            $self->{exit} = $?;
            return $self->fail("httpd exited during startup (status "
                               . ($? >> 8) . ")");
        }
        if ($self->pidfile_pid == $pid) {
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $self->{port},
                                          Proto => 'tcp', Timeout => 1);
            if ($s) { close $s; return 1 }
        }
        sleep 0.05;
    }
    return $self->fail("httpd did not accept connections within "
                       . "$START_WAIT s");
}

sub fail {
    my ($self, $msg) = @_;
    my $tail = $self->log_tail(15);
    $self->{error} = "$self->{name}: $msg" . ($tail ? "\n$tail" : '');
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

sub log_offset { return -s $_[0]->error_log || 0 }

sub log_tail {
    my ($self, $n) = @_;
    my @lines = split /\n/, $self->log_text;
    if (open my $fh, '<', "$self->{dir}/stdout") {
        local $/;
        push @lines, split /\n/, <$fh> // '';
    }
    @lines = @lines[-$n .. -1] if @lines > $n;
    return join "\n", @lines;
}

# Waits up to $secs (default 3) for $re in the log after $offset (the
# argument order of PWTest::wait_for_log); returns the text since $offset.
sub wait_for_log {
    my ($self, $offset, $re, $secs) = @_;
    my $deadline = time + ($secs || 3);
    while (1) {
        my $text = $self->log_text($offset);
        return $text if $text =~ $re || time > $deadline;
        sleep 0.05;
    }
}

# The httpd parent's live children (pids), from /proc.
sub children {
    my $self = shift;
    return () unless $self->{pid};
    return proc_children($self->{pid});
}

# (state, ppid, pgrp) of a process from /proc/PID/stat, or () if it is gone.
sub proc_stat {
    my $pid = shift;
    open my $s, '<', "/proc/$pid/stat" or return;
    my $stat = <$s> // '';
    close $s;
    # pid (comm) state ppid pgrp ...
    return $stat =~ /\)\s+(\S)\s+(\d+)\s+(\d+)/ ? ($1, $2, $3) : ();
}

# Live (not zombie) processes for which $want->(state, ppid, pgrp) holds.
sub find_procs {
    my $want = shift;
    my @pids;
    opendir my $dh, '/proc' or return;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my @st = proc_stat($pid) or next;
        push @pids, $pid if $st[0] ne 'Z' && $want->(@st);
    }
    @pids = sort { $a <=> $b } @pids;
    return @pids;    # (sort in scalar context is undefined)
}

sub proc_children {
    my $parent = shift;
    return find_procs(sub { $_[1] == $parent });
}

# Processes (not zombies) in process group $pgid.
sub group_members {
    my $pgid = shift;
    return find_procs(sub { $_[2] == $pgid });
}

sub process_alive {
    my ($state) = proc_stat(shift);
    return defined $state && $state ne 'Z' ? 1 : 0;
}

# Waits up to $secs until none of @pids is alive; returns the time it took
# (or undef on timeout).
sub wait_gone {
    my ($class_or_self, $secs, @pids) = @_;
    my $t0 = time;
    while (1) {
        my @left = grep { process_alive($_) } @pids;
        return time - $t0 unless @left;
        return undef if time - $t0 > $secs;
        sleep 0.05;
    }
}

# What a process is doing (for a diagnostic): each thread's state and wchan.
sub describe {
    my $pid = shift;
    my @out;
    for my $task (sort { $a <=> $b }
                  map { m{/(\d+)$} ? $1 : () } glob "/proc/$pid/task/*") {
        my ($state) = proc_stat($task);
        open my $w, '<', "/proc/$pid/task/$task/wchan" or next;
        my $wchan = <$w> // '';
        close $w;
        push @out, "task $task: state " . ($state // '?') . ", wchan $wchan";
    }
    return join "\n", "pid $pid:", @out;
}

# Every live process started from this server's config: the parent, its
# children, and any child that outlived its parent (it keeps the command
# line).
sub all_pids {
    my $self = shift;
    my $conf = "$self->{dir}/httpd.conf";
    opendir my $dh, '/proc' or return ();
    my @found;
    for my $pid (grep { /^\d+$/ && $_ != $$ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/cmdline" or next;
        local $/;
        my $cmd = <$fh> // '';
        close $fh;
        $cmd =~ tr/\0/ /;
        push @found, $pid if index($cmd, $conf) >= 0 && process_alive($pid);
    }
    @found = sort { $a <=> $b } @found;
    return @found;    # (sort in scalar context is undefined)
}

# Waits up to $secs until no process of this server is left; returns the
# seconds it took, or undef (then all_pids says who is left).
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

sub graceful {
    my $self = shift;
    return $self->{pid} ? kill('USR1', $self->{pid}) : 0;
}

# Stops httpd (SIGTERM), then SIGKILLs whatever is left of its session.
sub stop {
    my $self = shift;
    my $pid = $self->{pid} or return;
    $self->{pid} = undef;
    # httpd's event MPM has a race in its hard stop: closing the sockets
    # of workers that are just finishing a connection can touch a freed
    # socket (a segfault in mod_mpm_event's close_worker_sockets, seen about
    # once in 15 runs right after a request ended).  Not the module's: let
    # the last responses finish before stopping.
    sleep 0.3;
    kill 'TERM', $pid;
    my $deadline = time + $STOP_WAIT;
    my $reaped = 0;
    while (time < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) { $reaped = 1; last }
        sleep 0.05;
    }
    unless ($reaped) {
        kill 'KILL', -$pid;
        waitpid($pid, 0);
    }
    # Children that outlived their parent: same process group (setsid).
    my @left = group_members($pid);
    if (@left) {
        kill 'KILL', @left;
        sleep 0.1;
    }
    $self->{leftovers} = \@left;
}

sub DESTROY {
    my $self = shift;
    local ($?, $@, $!);
    $self->stop if $self->{pid};
}

# ------------------------------------------------------------------ client

# A request on a connection of its own (Connection: close).
sub get {
    my ($self, $path, %o) = @_;
    my $c = PWServer::Conn->new($self->{port});
    return $c->request($path, keepalive => 0, %o);
}

sub conn {
    my $self = shift;
    return PWServer::Conn->new($self->{port}, @_);
}

sub http_get {
    my ($port, $path, %o) = @_;
    return PWServer::Conn->new($port)->request($path, keepalive => 0, %o);
}

package PWServer::Conn;
# One client connection that keeps itself alive between requests (HTTP/1.1),
# and reconnects when the server closed it. request() returns
#   { status, reason, headers => {lc name => value}, body, elapsed,
#     reused => whether the request went on a connection used before,
#     got => bytes of response received, error => undef or text }.
use strict;
use warnings FATAL => 'all';
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(time);

sub new {
    my ($class, $port, %o) = @_;
    return bless { port => $port, sock => undef, used => 0,
                   timeout => $o{timeout} || 15 }, $class;
}

sub disconnect {
    my $self = shift;
    close($self->{sock}) if $self->{sock};
    $self->{sock} = undef;
    $self->{used} = 0;
}

# request($path, host => NAME, keepalive => 1, timeout => S, method => M)
sub request {
    my ($self, $path, %o) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $ka = exists $o{keepalive} ? $o{keepalive} : 1;
    my $timeout = $o{timeout} || $self->{timeout};
    my $method = $o{method} || 'GET';
    my $host = $o{host} || "127.0.0.1:$self->{port}";
    my $t0 = time;
    my $res = { status => 0, headers => {}, body => '', got => 0,
                error => undef, reused => $self->{sock} ? 1 : 0 };

    unless ($self->{sock}) {
        $self->{sock} = IO::Socket::INET->new(
            PeerAddr => '127.0.0.1', PeerPort => $self->{port},
            Proto => 'tcp', Timeout => $timeout);
        unless ($self->{sock}) {
            $res->{error} = "connect: $!";
            $res->{elapsed} = time - $t0;
            return $res;
        }
        binmode $self->{sock};
    }
    my $sock = $self->{sock};
    my $req = "$method $path HTTP/1.1\r\nHost: $host\r\n"
            . ($ka ? '' : "Connection: close\r\n") . "\r\n";
    unless (defined syswrite($sock, $req)) {
        $res->{error} = "write: $!";
        $self->disconnect;
        $res->{elapsed} = time - $t0;
        return $res;
    }
    $self->{used}++;

    my $buf = '';
    my $deadline = $t0 + $timeout;
    my $sel = IO::Select->new($sock);
    my $eof = 0;
    # Reads more into $buf; false on EOF, error or timeout.
    my $more = sub {
        my $left = $deadline - time;
        if ($left <= 0 || !$sel->can_read($left)) {
            $res->{error} = 'timeout';
            return 0;
        }
        my $n = sysread($sock, $buf, 65536, length $buf);
        if (!defined $n) { $res->{error} = "read: $!"; return 0 }
        if ($n == 0) { $eof = 1; return 0 }
        $res->{got} += $n;
        return 1;
    };

    my $head_end;
    until (($head_end = index($buf, "\r\n\r\n")) >= 0) {
        unless ($more->()) {
            $res->{error} //= $res->{got} ? 'EOF in headers' : 'EOF';
            $self->disconnect;
            $res->{elapsed} = time - $t0;
            return $res;
        }
    }
    my $head = substr($buf, 0, $head_end);
    $buf = substr($buf, $head_end + 4);
    my @lines = split /\r\n/, $head;
    my $status_line = shift @lines;
    if ($status_line =~ m{^HTTP/1\.\d (\d{3}) ?(.*)$}) {
        @$res{qw(status reason)} = ($1, $2);
    }
    for my $line (@lines) {
        my ($k, $v) = split /:\s*/, $line, 2;
        $res->{headers}->{lc $k} = $v;
    }
    my $h = $res->{headers};
    my $complete = 0;
    if (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
        my $body = '';
        CHUNK: while (1) {
            my $eol;
            until (($eol = index($buf, "\r\n")) >= 0) { last CHUNK unless $more->() }
            my ($len) = substr($buf, 0, $eol) =~ /^([0-9a-fA-F]+)/;
            last unless defined $len;
            $len = hex $len;
            if ($len == 0) {
                # No trailer ("\r\n" at once), or trailers up to a blank line.
                my $at = $eol + 2;
                until (substr($buf, $at, 2) eq "\r\n"
                       || index($buf, "\r\n\r\n", $at) >= 0) {
                    last CHUNK unless $more->();
                }
                $complete = 1;
                last;
            }
            while (length($buf) < $eol + 2 + $len + 2) { last CHUNK unless $more->() }
            $body .= substr($buf, $eol + 2, $len);
            $buf = substr($buf, $eol + 2 + $len + 2);
        }
        $res->{body} = $body;
    }
    elsif (defined(my $cl = $h->{'content-length'})) {
        while (length($buf) < $cl) { last unless $more->() }
        $res->{body} = substr($buf, 0, $cl);
        $complete = length($buf) >= $cl;
    }
    elsif ($method eq 'HEAD' || $res->{status} =~ /^(1|204|304)/) {
        $complete = 1;
    }
    else {
        1 while $more->();
        $res->{body} = $buf;
        $complete = $eof;
    }
    $res->{complete} = $complete;
    $res->{error} //= 'incomplete body' unless $complete;
    if (!$complete || !$ka || ($h->{connection} // '') =~ /close/i) {
        $self->disconnect;
    }
    $res->{elapsed} = time - $t0;
    return $res;
}

1;
