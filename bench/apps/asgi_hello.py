"""asgi_hello: the 13-byte "Hello, world!" as an ASGI 3 app — the per-request cost of each ASGI server."""

BODY = b"Hello, world!"
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
END = {"type": "http.response.body", "body": BODY}


async def application(scope, receive, send):
    if scope["type"] != "http":      # lifespan: nothing to set up
        return
    await send(START)
    await send(END)
