"""file: a 1 MiB file sent through wsgi.file_wrapper (sendfile where the server supports it).

bench/run creates data/file-1MiB.bin beside this script before any server starts.
"""
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "file-1MiB.bin")
SIZE = 1 << 20


def application(environ, start_response):
    f = open(PATH, "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(f, 65536)
    return iter(lambda: f.read(65536), b"")
