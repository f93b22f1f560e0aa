"""The smallest app: answers its pid (private servers in t/lifecycle.t)."""

import os


def application(environ, start_response):
    body = ("pid=%d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
