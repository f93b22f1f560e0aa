"""Misbehaving WSGI apps for t/errors.t, one callable each (callable=NAME).

Each must give the client a plain 500 (no traceback) and leave one PWnnnn line
in the error log naming the cause.
"""

import sys


def raises(environ, start_response):
    return 1 / 0


def str_items(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes\n"]


def non_iterable(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return 42


def no_start_response(environ, start_response):
    return [b"start_response was never called\n"]


def no_start_response_empty(environ, start_response):
    return []


def bad_status(environ, start_response):
    start_response("twohundred OK", [("Content-Type", "text/plain")])
    return [b"bad status\n"]


def header_crlf(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Injected", "a\r\nSet-Cookie: evil=1")])
    return [b"header with CR/LF\n"]


def header_name_type(environ, start_response):
    start_response("200 OK", [(b"X-Bytes-Name", "value")])
    return [b"bytes header name\n"]


def twice(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"start_response twice\n"]


def stream_fail(environ, start_response):
    """Fails after the headers and a first big chunk went out."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"x" * (256 * 1024)
    raise RuntimeError("PWTEST failure after headers")


def chatty(environ, start_response):
    """Writes to stdout, stderr and wsgi.errors, then succeeds."""
    print("PWTEST-stdout-marker", flush=True)
    sys.stderr.write("PWTEST-stderr-marker\n")
    sys.stderr.flush()
    environ["wsgi.errors"].write("PWTEST-wsgierrors-marker\n")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"chatty ok\n"]
