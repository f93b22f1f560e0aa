"""Writes what the client sent into the error log every way an app can, for
t/status.t's CWE-117 check: PATH_INFO (decoded by Apache, so %0a is a
newline and %1b an escape) goes to print(), sys.stderr, wsgi.errors and
logging, and /raise/... raises with it in the exception's message (PW0301).
"""

import logging
import sys


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/raise"):
        raise RuntimeError("logforge: " + path)
    print("logforge print: " + path)
    sys.stderr.write("logforge stderr: " + path + "\n")
    environ["wsgi.errors"].write("logforge errors: " + path + "\n")
    logging.getLogger("pwtest.logforge").warning("logforge logging: %s", path)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", "3")])
    return [b"ok\n"]
