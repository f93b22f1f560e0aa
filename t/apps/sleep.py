"""Sleeps half a second, then answers with the pid and thread that served it."""

import os
import threading
import time


def application(environ, start_response):
    time.sleep(0.5)
    body = f"slept pid={os.getpid()} thread={threading.get_ident()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
