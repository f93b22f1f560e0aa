"""Helpers for mod_pywsgi's stress drivers (t/stress/*.py): a private httpd
from t/stress/private.conf.in, process and memory sampling from /proc, and a
small HTTP/1.1 client that can also misbehave (hang up early).

Standard library only; run by Debian's /usr/bin/python3.  Private servers
listen on 127.0.0.1, ports 8720-8749 (t/perl/PWPrivate.pm, for the .t
files, uses 8700-8719), live in a temporary directory and are always
stopped -- with SIGKILL for anything left -- when the `with` block ends.
"""

import grp
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
APACHE = "/usr/sbin/apache2"
TEMPLATE = os.path.join(TOP, "t", "stress", "private.conf.in")
MODULE = os.path.join(TOP, ".libs", "mod_pywsgi.so")
PORTS = range(8720, 8750)
MPMS = ("prefork", "worker", "event")

# Lines in an error log that mean something died or hung.
CRASH_RE = re.compile(r"exit signal|Segmentation fault|Fatal Python error|"
                      r"PW0102|\[pywsgi:(crit|alert|emerg)\]|"
                      r"still did not exit|AH00052|AH00051")


def say(msg):
    print(msg, flush=True)


def free_port(ports=PORTS):
    """The first port of the range nobody listens on (loopback)."""
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in %d-%d" % (ports[0], ports[-1]))


def run_user():
    """(user, group) for httpd's children: Apache's usual www-data."""
    for user in ("www-data", "nobody"):
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            continue
        return user, grp.getgrgid(pw.pw_gid).gr_name
    raise RuntimeError("neither www-data nor nobody exists")


def make_readable():
    """httpd's children (www-data) read the apps: as t/run-mpms does."""
    for sub in ("t/apps", "t/lib"):
        for root, dirs, files in os.walk(os.path.join(TOP, sub)):
            for name in dirs + files:
                p = os.path.join(root, name)
                mode = os.stat(p).st_mode
                os.chmod(p, mode | 0o444 | (0o111 if os.path.isdir(p) else 0))


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(state, ppid) of a live pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def children_of(ppid):
    """Live (not zombie) children of ppid."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[1] == ppid and st[0] != "Z":
            kids.append(int(name))
    return sorted(kids)


def pids_with_arg(text):
    """Every process whose command line contains text (our config path)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("latin-1")
        except OSError:
            continue
        st = proc_stat(int(name))
        if text in cmd and st and st[0] != "Z":
            found.append(int(name))
    return sorted(found)


def memory(pid):
    """{'rss', 'pss', 'private'} in kB of a pid: VmRSS, and Pss and
    Private_Dirty from smaps_rollup (what a leak grows)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss"] = int(line.split()[1])
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["pss"] = int(line.split()[1])
                elif line.startswith("Private_Dirty:"):
                    out["private"] = int(line.split()[1])
    except OSError:
        pass
    return out


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


# ---------------------------------------------------------------- server

class Server:
    """A private httpd.  Use as a context manager:

        with Server("event", extra=LINES) as srv:
            srv.get("/x")
    """

    def __init__(self, mpm, extra="", procs=2, threads=8, serverlimit=None,
                 module=MODULE, httpd=APACHE, one_process=False,
                 start_timeout=20):
        if mpm not in MPMS:
            raise ValueError("unknown MPM %r" % mpm)
        self.mpm = mpm
        self.extra = extra
        self.procs = procs
        self.threads = threads if mpm != "prefork" else 1
        self.serverlimit = serverlimit or 2 * procs
        self.module = module
        self.httpd = httpd
        self.one_process = one_process
        self.start_timeout = start_timeout
        self.dir = None
        self.pid = None
        self.port = None

    # -- life
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        make_readable()
        self.dir = tempfile.mkdtemp(prefix="pwstress-")
        os.chmod(self.dir, 0o755)
        os.mkdir(os.path.join(self.dir, "htdocs"))
        self.port = free_port()
        user, group = run_user()
        values = {
            "DIR": self.dir, "PORT": str(self.port), "MPM": self.mpm,
            "MODULE": self.module, "USER": user, "GROUP": group,
            "TOP": TOP, "PROCS": str(self.procs),
            "THREADS": str(self.threads),
            "SERVERLIMIT": str(self.serverlimit),
            "MAXWORKERS": str(self.procs * self.threads),
            "MAXSPARE": str((self.procs + 1) * self.threads),
            "MINSPARE": str((self.procs - 1) * self.threads + 1),
            "EXTRA": self.extra.replace("@TOP@", TOP)
                               .replace("@DIR@", self.dir),
        }
        with open(TEMPLATE) as f:
            text = f.read()
        text = re.sub(r"@([A-Z]+)@", lambda m: values.get(m.group(1), m.group(0)), text)
        self.conf = os.path.join(self.dir, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.log = os.path.join(self.dir, "error_log")
        cmd = [self.httpd, "-f", self.conf]
        if self.one_process:
            # -X: one process, in the foreground; our own session.
            cmd += ["-X"]
            self.proc = subprocess.Popen(cmd, start_new_session=True,
                                         stdin=subprocess.DEVNULL)
        else:
            self.proc = None
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                timeout=self.start_timeout).returncode
            if rc != 0:
                log = self.log_text()[-2000:]
                self.cleanup()
                raise RuntimeError("%s failed (%d): %s" % (
                    " ".join(cmd), rc, log))
        deadline = time.time() + self.start_timeout
        pidfile = os.path.join(self.dir, "httpd.pid")
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                with open(pidfile) as f:
                    self.pid = int(f.read().strip() or 0) or None
            except (OSError, ValueError):
                pass
            if self.pid and self.accepts():
                return
            time.sleep(0.1)
        log = self.log_text()[-2000:]
        self.stop()
        raise RuntimeError("httpd did not start on port %s:\n%s"
                           % (self.port, log))

    def accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5):
                return True
        except OSError:
            return False

    def send(self, sig):
        os.kill(self.pid, sig)

    def children(self):
        return children_of(self.pid) if self.pid else []

    def all_pids(self):
        """The parent, its children and anything else started from our
        config (an orphaned child keeps the parent's command line)."""
        return pids_with_arg(self.conf) if self.dir else []

    def wait_gone(self, timeout):
        """Wait until no process of this server is left; the leftovers."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None:
                self.proc.poll()
            left = self.all_pids()
            if not left:
                return []
            time.sleep(0.1)
        return self.all_pids()

    def stop(self, sig=signal.SIGTERM, timeout=20, keep_dir=False):
        """Stop (SIGTERM: Apache's hard stop); SIGKILL whatever is left
        after timeout.  Returns the pids that had to be killed."""
        killed = []
        if self.dir is None:
            return killed
        if self.pid and alive(self.pid):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        left = self.wait_gone(timeout)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        if killed:
            self.wait_gone(5)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if not keep_dir:
            self.cleanup()
        return killed

    def cleanup(self):
        if self.dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # -- log
    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_text(self, offset=0):
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return f.read().decode("latin-1")
        except OSError:
            return ""

    # -- requests
    def connection(self, timeout=15):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    def get(self, path, timeout=15, **kw):
        return request(self.port, "GET", path, timeout=timeout, **kw)


def request(port, method, path, body=None, headers=None, timeout=15):
    """One request on its own connection: (status, body) or (0, error)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.read()
    except (OSError, http.client.HTTPException) as e:
        return 0, repr(e).encode()
    finally:
        conn.close()


def hang_up_early(port, path, read=1024, timeout=10):
    """Send a request, read the first bytes of the response, hang up (RST).
    Returns the status seen (0 if none)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path)
                  .encode())
        data = b""
        while len(data) < read:
            chunk = s.recv(read - len(data))
            if not chunk:
                break
            data += chunk
        # SO_LINGER 0: close() sends RST, as a client killed mid-download.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        m = re.match(rb"HTTP/1\.\d (\d{3})", data)
        return int(m.group(1)) if m else 0
    finally:
        s.close()


def fmt_kb(kb):
    return "%.1f MiB" % (kb / 1024.0)
