"""Apps for t/owngil.t: the same file mounted in interpreters with a GIL of
their own (PyWSGIOwnGIL) and in shared-GIL ones; each interpreter imports
it anew, so HITS counts that interpreter's requests only."""
import json
import logging
import os
import sys
import time

HITS = [0]
log = logging.getLogger("owngil")


def application(environ, start_response):
    """Echo the body; write to wsgi.errors, print() and logging."""
    HITS[0] += 1
    body = environ["wsgi.input"].read()
    tag = environ.get("QUERY_STRING", "")
    environ["wsgi.errors"].write("owngil-errors %s\n" % tag)
    print("owngil-stdout %s" % tag)
    log.warning("owngil-logging %s", tag)
    out = json.dumps({
        "hits": HITS[0],
        "pid": os.getpid(),
        "body": body.decode("latin-1"),
        "input": type(environ["wsgi.input"]).__name__,
        "errors": type(environ["wsgi.errors"].buffer).__name__,
        "multithread": environ["wsgi.multithread"],
        "script_name": environ["SCRIPT_NAME"],
        "path_info": environ["PATH_INFO"],
        "modules": id(sys.modules),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


def files(environ, start_response):
    """wsgi.file_wrapper over this very file."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](open(__file__, "rb"), 4096)


def stream(environ, start_response):
    """write() and a generator: the StartResponse type's both paths."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one\n")

    def rest():
        yield b"two\n"
        yield b"three\n"
    return rest()


def spin(environ, start_response):
    """CPU-bound for ?SECONDS (default 0.6): pure Python, holding the GIL
    of its interpreter all along (bench/owngil)."""
    secs = float(environ.get("QUERY_STRING") or 0.6)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < secs:
        for i in range(1000):
            n += i * i % 7
    out = b"%d\n" % n
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(out)))])
    return [out]


def race(environ, start_response):
    """Touch the module's own types for ?SECONDS in a loop (attribute
    lookups on wsgi.input, wsgi.errors' sink, start_response and
    wsgi.file_wrapper): run in two own-GIL interpreters at once, a type
    object shared between them has its reference counts changed under two
    GILs.  Answers the
    reference counts of those types' method descriptors before and after:
    a type of this interpreter's own keeps them."""
    secs = float(environ.get("QUERY_STRING") or 1.0)
    inp = environ["wsgi.input"]
    sink = environ["wsgi.errors"].buffer
    fw = environ["wsgi.file_wrapper"]
    descrs = [type(inp).__dict__["read"], type(inp).__dict__["readline"],
              type(sink).__dict__["write"], type(sink).__dict__["flush"],
              type(start_response).__dict__["__call__"],
              fw.__dict__["close"]]
    before = [sys.getrefcount(d) for d in descrs]
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < secs:
        for _ in range(1000):
            inp.read
            inp.readline
            sink.write
            sink.flush
            start_response.__call__
            fw.close
        n += 1
    after = [sys.getrefcount(d) for d in descrs]
    out = json.dumps({"before": " ".join(map(str, before)),
                      "after": " ".join(map(str, after)),
                      "loops": n}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


def lazy_ext(environ, start_response):
    """Imports a single-phase C extension while serving (t/owngil.t)."""
    import _testsinglephase  # noqa: F401
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"imported\n"]
