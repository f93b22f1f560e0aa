"""Apps that fail as badly as an app can, for t/faults.t and t/stops.t (one
callable each, mounted with callable=NAME on a private server: the crashes
would otherwise show in the shared test server's error log).

Run one by hand:  bin/pywsgi-run --mpm prefork t/apps/faults.py:abort
"""

import ctypes
import os
import signal
import sys
import threading
import time


def _text(start_response, body, status="200 OK"):
    body = body.encode()
    start_response(status, [("Content-Type", "text/plain"),
                             ("Content-Length", str(len(body)))])
    return [body]


# --- the process dies -----------------------------------------------------

def abort(environ, start_response):
    """SIGABRT, as a failed assert() in a C extension."""
    os.abort()


def segv(environ, start_response):
    """SIGSEGV: a null pointer read through ctypes."""
    ctypes.string_at(0)
    return _text(start_response, "not reached\n")


def os_exit(environ, start_response):
    """os._exit(N) with N from the query string (default 3): no cleanup,
    no exception, the process is simply gone.  3 and 15 are what Apache's
    children use for "could not initialise" and "fatal: stop the server"."""
    os._exit(int(environ.get("QUERY_STRING") or 3))


# --- Python exceptions that usually end a program ---------------------------

def sys_exit(environ, start_response):
    """SystemExit: a 500 like any other exception, the child lives on."""
    sys.exit("PWTEST sys.exit from the app")


def sys_exit_body(environ, start_response):
    """SystemExit while the body is produced, after the headers went out."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"x" * 65536
    sys.exit(4)


class _ExitOnClose:
    def __init__(self):
        self.items = [b"closing\n"]

    def __iter__(self):
        return iter(self.items)

    def close(self):
        raise SystemExit(5)


def sys_exit_close(environ, start_response):
    """SystemExit from the iterable's close()."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _ExitOnClose()


def keyboard_interrupt(environ, start_response):
    raise KeyboardInterrupt("PWTEST KeyboardInterrupt from the app")


def recursion(environ, start_response):
    """RecursionError, not a C stack overflow."""
    def down(n):
        return down(n + 1) + 1
    return _text(start_response, str(down(0)))


def kill_parent(environ, start_response):
    """Tries to stop Apache: the parent runs as root, the children do not,
    so this is a PermissionError (a 500)."""
    os.kill(os.getppid(), signal.SIGTERM)
    return _text(start_response, "parent signalled\n")


# --- threads --------------------------------------------------------------

def _forever():
    while True:
        time.sleep(0.1)


def thread(environ, start_response):
    """Starts a non-daemon thread that never ends and is never joined:
    Python's finalisation would wait for it for ever (PW0102 instead)."""
    t = threading.Thread(target=_forever, name="pwtest-forever")
    t.start()
    return _text(start_response, "thread started in pid %d\n" % os.getpid())


def spin(environ, start_response):
    """Blocks for ever in Python code: PyWSGIRequestTimeout cuts it."""
    while True:
        pass


def block(environ, start_response):
    """Blocks for ever in C (a sleep): no timeout can interrupt it; only
    this thread (prefork: this child) is lost."""
    time.sleep(10 ** 6)
    return _text(start_response, "not reached\n")


# --- well-behaved helpers -----------------------------------------------------

def pid(environ, start_response):
    return _text(start_response, "pid=%d\n" % os.getpid())


def sleep(environ, start_response):
    """Sleeps QUERY_STRING seconds (default 2), then answers with the pid."""
    secs = float(environ.get("QUERY_STRING") or 2)
    time.sleep(secs)
    return _text(start_response, "slept %.1f pid=%d\n" % (secs, os.getpid()))
