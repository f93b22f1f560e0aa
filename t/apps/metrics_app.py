"""The app t/metrics.t counts requests to (mounted at /metrics-app).

Every response body has a known length, so the test can predict the bytes
counted: /ok "ok\n", /missing "missing\n" (404), /raise raises before any
byte, /echo returns the request body, /pid and /slow?SECONDS[&anything] tell
which child served them.
"""

import os
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    status, body = "200 OK", b"ok\n"
    if path == "/missing":
        status, body = "404 Not Found", b"missing\n"
    elif path == "/raise":
        raise RuntimeError("metrics_app: raised on purpose")
    elif path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
    elif path in ("/pid", "/slow"):
        if path == "/slow":
            query = environ.get("QUERY_STRING") or "0.3"
            time.sleep(float(query.split("&")[0]))
        body = f"pid={os.getpid()}\n".encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]
