"""Apps the soak (t/stress/soak.py) mixes with the test suite's own apps,
one callable each (callable=NAME): a small answer, an upload that reads its
body in pieces, a file through wsgi.file_wrapper, a long stream the client
hangs up on, the app's own 404, and an app that grows by 256 KiB per
request (t/stress/restarts.py: recycling past PyWSGIMaxMemory under load).
"""

import hashlib
import os


def hello(environ, start_response):
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def upload(environ, start_response):
    """Reads the body 8 KiB at a time (Content-Length or chunked)."""
    stream = environ["wsgi.input"]
    digest = hashlib.sha1()
    size = 0
    while True:
        piece = stream.read(8192)
        if not piece:
            break
        digest.update(piece)
        size += len(piece)
    body = ("%d %s\n" % (size, digest.hexdigest())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def file(environ, start_response):
    """The standard library's os.py (~40 KiB) as a FILE bucket."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](open(os.__file__, "rb"), 32768)


def stream(environ, start_response):
    """1 MiB in 64 KiB pieces: the client reads a little and hangs up."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    piece = b"s" * 65536
    for _ in range(16):
        yield piece


def notfound(environ, start_response):
    body = b"no such thing here\n"
    start_response("404 Not Found", [("Content-Type", "text/plain"),
                                     ("Content-Length", str(len(body)))])
    return [body]


KEPT = []


def grow(environ, start_response):
    """Keeps 256 KiB more on every request: a leak PyWSGIMaxMemory cures."""
    KEPT.append(b"g" * 262144)
    body = ("pid=%d kept=%d\n" % (os.getpid(), len(KEPT))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
