"""sleep: 20 ms of time.sleep per request — measures concurrency (threads / 20 ms bounds req/s)."""
import time

BODY = b"slept 20 ms\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    time.sleep(0.02)
    start_response("200 OK", HEADERS)
    return [BODY]
