"""Leaves a non-daemon thread running that never ends (t/lifecycle.t,
PyWSGIShutdownTimeout).  Python's finalisation waits for such threads, so
without mod_pywsgi's shutdown watchdog the child could never exit."""

import os
import threading
import time

_started = []


def forever():
    while True:
        time.sleep(0.1)


def application(environ, start_response):
    if not _started:
        t = threading.Thread(target=forever, name="never-ends", daemon=False)
        t.start()
        _started.append(t)
    body = ("pid=%d threads=%d\n" % (os.getpid(),
                                     threading.active_count())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
