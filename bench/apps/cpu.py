"""cpu: about 1 ms of pure-Python work per request (a fixed loop, the same work on every server)."""

N = 40000


def work(n=N):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def application(environ, start_response):
    body = b"%d\n" % work()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
