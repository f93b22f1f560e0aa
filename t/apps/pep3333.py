"""Less common PEP 3333 paths, one callable each (mounted with callable=)."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def filewrap(environ, start_response):
    """Returns this file through wsgi.file_wrapper."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](open(os.path.join(HERE, "pep3333.py"), "rb"), 8192)


def writer(environ, start_response):
    """Uses the write() callable returned by start_response, then an iterable."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    write(b"by write()\n")
    return [b"and returned\n"]


def generator(environ, start_response):
    """Streams from a generator; the body is the concatenation."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(5):
        yield f"line {i}\n".encode()


def script_dir(environ, start_response):
    """The script's own directory is at the front of sys.path."""
    import sys
    body = f"{sys.path[0]}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def headers(environ, start_response):
    """Custom response headers and a non-200 status pass through."""
    body = b"created\n"
    start_response("201 Created", [("Content-Type", "text/plain"),
                                   ("X-Pwtest", "yes"),
                                   ("Content-Length", str(len(body)))])
    return [body]
