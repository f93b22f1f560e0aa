"""post: reads the whole request body (64 KiB in the benchmark) and returns its length."""


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    got = 0
    while got < length:
        chunk = stream.read(min(65536, length - got))
        if not chunk:
            break
        got += len(chunk)
    body = b"%d\n" % got
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
