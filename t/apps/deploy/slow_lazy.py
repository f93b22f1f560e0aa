"""The same as slow_preloaded.py, mounted without PyWSGIPreload
(t/lifecycle.t): the first request in each child waits for the 1 s import --
which shows the preload timing test can tell the difference."""

import os
import time

time.sleep(1.0)
IMPORTED_AT = time.time()


def application(environ, start_response):
    body = ("pid=%d imported_at=%.3f\n" % (os.getpid(), IMPORTED_AT)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
