"""Apps for t/threads.t (issue 12 items 1, 5, 6, 7; issue 11 items 2, 5).

One file, mounted several times (main interpreter and named ones); the
path after the mount picks what it does:
  /whoami      the interpreter this request runs in (id of its sys.modules)
  /callback    a ctypes callback, called from C (libc's qsort) with the GIL
               released, reports whether it ran in this app's interpreter
  /threads     starts a daemon and a non-daemon thread that keep running
  /print?n=N&len=L&tag=T   16 threads print long distinct lines at once
  /progress    a progress bar: \\r and no newline, 64 KiB of it
  /stdio       the sys.stdout/stderr/stdin interface, as JSON
  /buffer      bytes written to sys.stdout.buffer
  /count       threading.active_count() and the number of thread states
  /big?mb=N    N MiB of body; POST: the size and a checksum of the body
  /sleep?s=S   a Python loop for S seconds (for PyWSGIRequestTimeout)
  /outer, /inner   nested requests (mod_include, ErrorDocument)
"""

import ctypes
import ctypes.util
import io
import json
import os
import sys
import threading
import time
import zlib

MODULES_ID = id(sys.modules)
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_started = []


def _answer(start_response, body, ctype="text/plain", status="200 OK"):
    if isinstance(body, str):
        body = body.encode()
    start_response(status, [("Content-Type", ctype),
                            ("Content-Length", str(len(body)))])
    return [body]


def _qs(environ):
    out = {}
    for part in environ.get("QUERY_STRING", "").split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def callback():
    """qsort calls _cmp from C with the GIL released by ctypes: the
    callback takes it back through PyGILState_Ensure()."""
    seen = []

    def _cmp(a, b):
        import sys as callers_sys   # the interpreter the callback runs in
        seen.append(id(callers_sys.modules) == MODULES_ID)
        return 0

    cmp = _CMP(_cmp)
    arr = (ctypes.c_int * 4)(4, 3, 2, 1)
    _libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), cmp)
    return "own=%d other=%d" % (seen.count(True), seen.count(False))


def start_threads():
    def forever(daemon):
        # Daemon: never ends.  Non-daemon: ends when asked (threading's
        # shutdown waits for it), after a short while at most.
        t0 = time.time()
        while daemon or time.time() - t0 < 2:
            sum(range(1000))
            time.sleep(0.01)

    for daemon in (True, False):
        t = threading.Thread(target=forever, args=(daemon,), daemon=daemon)
        t.start()
        _started.append(t)
    return "started %d" % len(_started)


def print_lines(q):
    n = int(q.get("n", "16"))
    length = int(q.get("len", "6000"))
    tag = q.get("tag", "x")

    def one(i):
        for j in range(4):
            head = "PRINT %s t%02d l%d " % (tag, i, j)
            body = chr(ord("a") + i % 26) * (length - len(head) - 4)
            print(head + body + " END")

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("PRINT %s done" % tag)
    return "printed"


def stdio():
    out, err = sys.stdout, sys.stderr
    info = {"text": isinstance(out, io.TextIOBase),
            "buffer": hasattr(out, "buffer"),
            "encoding": getattr(out, "encoding", None),
            "errors": getattr(out, "errors", None),
            "isatty": out.isatty(),
            "writable": out.writable(),
            "closed": out.closed,
            "line_buffering": getattr(out, "line_buffering", None),
            "stderr_buffer": hasattr(err, "buffer"),
            "stdin_read": None}
    try:
        out.fileno()
        info["fileno"] = "no error"
    except io.UnsupportedOperation:
        info["fileno"] = "UnsupportedOperation"
    except Exception as e:
        info["fileno"] = type(e).__name__
    try:
        out.reconfigure(line_buffering=True)
        info["reconfigure"] = "ok"
    except Exception as e:
        info["reconfigure"] = type(e).__name__
    try:
        info["stdin_read"] = sys.stdin.read()
    except Exception as e:
        info["stdin_read"] = type(e).__name__
    try:
        # Mercurial takes sys.stdin.buffer at import.
        info["stdin_buffer_read"] = repr(sys.stdin.buffer.read())
    except Exception as e:
        info["stdin_buffer_read"] = type(e).__name__
    return json.dumps(info, sort_keys=True)


class _Tracked:
    """One per thread that served /count: alive while its thread state's
    threading.local data is."""
    live = 0

    def __init__(self):
        _Tracked.live += 1

    def __del__(self):
        _Tracked.live -= 1


_local = threading.local()


def _thread_states():
    """The thread states of this interpreter, counted through the C API."""
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    n, t = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while t:
        n += 1
        t = api.PyThreadState_Next(t)
    return n


def count():
    if not hasattr(_local, "tracked"):
        _local.tracked = _Tracked()
    return json.dumps({"active": threading.active_count(),
                       "tstates": _thread_states(),
                       "locals": _Tracked.live})


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = _qs(environ)
    if path == "/whoami":
        return _answer(start_response, "modules=%d" % MODULES_ID)
    if path == "/callback":
        return _answer(start_response, callback())
    if path == "/threads":
        return _answer(start_response, start_threads())
    if path == "/print":
        return _answer(start_response, print_lines(q))
    if path == "/progress":
        for i in range(1024):
            sys.stdout.write("\rprogress %5d " % i + "#" * 48)
        sys.stdout.write("\n")
        return _answer(start_response, "done")
    if path == "/flood":
        # Fills a piped ErrorLog that is not being read.
        for i in range(int(q.get("kb", "256"))):
            print("FLOOD %04d " % i + "f" * 1000)
        return _answer(start_response, "flooded")
    if path == "/printloop":
        # print() cost, for the report (not a test): µs per call.
        n = int(q.get("n", "20000"))
        t0 = time.perf_counter()
        for i in range(n):
            print("loop line", i)
        return _answer(start_response, "%.2f us/print" % (
            (time.perf_counter() - t0) * 1e6 / n))
    if path == "/raise":
        raise RuntimeError("raised on purpose for t/threads.t")
    if path == "/stdio":
        return _answer(start_response, stdio(), "application/json")
    if path == "/buffer":
        sys.stdout.buffer.write(b"BUFFER-LINE %s\n" % q.get("tag", "x").encode())
        sys.stdout.flush()
        return _answer(start_response, "ok")
    if path == "/count":
        body = count()
        end = time.time() + float(q.get("hold", "0"))
        while time.time() < end:    # keeps this thread busy (warm-up)
            time.sleep(0.01)
        return _answer(start_response, body, "application/json")
    if path == "/big":
        if environ["REQUEST_METHOD"] == "POST":
            crc, size = 0, 0
            inp = environ["wsgi.input"]
            while True:
                chunk = inp.read(65536)
                if not chunk:
                    break
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
            return _answer(start_response, "size=%d crc=%d" % (size, crc))
        mb = int(q.get("mb", "1"))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(mb << 20))])
        return (b"x" * (1 << 20) for _ in range(mb))
    if path == "/sleep":
        end = time.time() + float(q.get("s", "5"))
        while time.time() < end:
            sum(range(1000))
        return _answer(start_response, "slept")
    if path == "/outer":
        # The INCLUDES filter runs the inner request from inside the
        # ap_pass_brigade() of the first chunk, on this thread.
        start_response("200 OK", [("Content-Type", "text/html")])
        return _outer(environ, q)
    if path == "/inner":
        print("INNER-LINE %s" % environ.get("REQUEST_URI"))
        return _answer(start_response, "[inner %s]" % environ.get(
            "REDIRECT_STATUS", "-"), "text/html")
    if path == "/readbody":
        # LimitRequestBody is passed while reading: Apache answers 413.
        try:
            data = environ["wsgi.input"].read()
        finally:
            print("OUTER-AFTER-READ %s" % environ.get("REQUEST_URI"))
        return _answer(start_response, "read %d" % len(data))
    return _answer(start_response, "no such path", status="404 Not Found")


def _outer(environ, q):
    yield b'<p>before</p><!--#include virtual="' + q.get(
        "inner", "/main/inner").encode() + b'" --><p>after</p>\n'
    print("OUTER-AFTER-INNER %s" % environ.get("REQUEST_URI"))
    spin = float(q.get("spin", "0"))
    end = time.time() + spin
    while time.time() < end:
        sum(range(1000))
    yield b"<p>end</p>\n"
