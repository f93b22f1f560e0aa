"""spin: a fixed amount of pure-Python work per request (?n=ITERATIONS),
holding the GIL of its interpreter all along (bench/owngil)."""


def work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def application(environ, start_response):
    qs = environ.get("QUERY_STRING", "")
    n = int(qs[2:]) if qs.startswith("n=") else 1000000
    body = b"%d\n" % work(n)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
