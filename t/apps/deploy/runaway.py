"""Requests that never end, for PyWSGIRequestTimeout (t/lifecycle.t).

spin        a busy loop: only the timeout ends it (504); it prints its pid
            first (print goes to the error log)
spin_catch  the same inside `except Exception`: the timeout exception is a
            BaseException, so the app cannot swallow it by accident
fast        answers at once with its pid and thread: the requests that must
            go on meanwhile
"""

import os
import threading


def spin(environ, start_response):
    print("spin pid=%d" % os.getpid(), flush=True)
    n = 0
    while True:
        n += 1


def spin_catch(environ, start_response):
    while True:
        try:
            n = 0
            while True:
                n += 1
        except Exception:
            pass


def fast(environ, start_response):
    body = ("pid=%d thread=%d\n" % (os.getpid(),
                                    threading.get_ident())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
