"""An app that says which version of its code is running (t/lifecycle.t).

The tests copy this file into a temporary directory and rewrite the VERSION
line (reload, graceful restart) or append a failing line (preload of a
broken app), then check what the server answers.
"""

import os

VERSION = "v1"


def application(environ, start_response):
    body = ("%s pid=%d\n" % (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
