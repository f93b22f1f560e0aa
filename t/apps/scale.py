"""The app each node of the scale-out test (t/scale/run) serves.

application: answers with the node's name (SetEnv PW_NODE in the node's
configuration), so the load generator can check that the balancer's
X-PW-Node header and the node that really answered agree; ?sleep=SECONDS
keeps the request in flight that long (a request a stop must wait for);
a POST body is read and its length answered.

counted: the same answer under its own name, so Prometheus' series for it
(app="...scale.py:counted") hold only the requests of the test's counting
phase: health checks and status scrapes never reach an app, and the other
phases use application.
"""

import time
from urllib.parse import parse_qs


def application(environ, start_response):
    node = environ.get("PW_NODE", "?")
    size = 0
    if environ["REQUEST_METHOD"] == "POST":
        size = len(environ["wsgi.input"].read())
    sleep = parse_qs(environ.get("QUERY_STRING", "")).get("sleep")
    if sleep:
        time.sleep(min(float(sleep[0]), 5.0))
    body = ("%s %d\n" % (node, size)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


counted = application
