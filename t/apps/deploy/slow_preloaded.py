"""An app whose import takes a second (t/lifecycle.t, preload): mounted with
PyWSGIPreload, so each child pays that second when it starts, not on its
first request.  t/apps/deploy/slow_lazy.py is the same without preload."""

import os
import time

time.sleep(1.0)
IMPORTED_AT = time.time()


def application(environ, start_response):
    body = ("pid=%d imported_at=%.3f\n" % (os.getpid(), IMPORTED_AT)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
