"""Plain ASGI 3 apps for t/asgi.t, written against the spec only: the
protocol's edges and what an app can do wrong.  No lifespan support (it
raises on the lifespan scope, as the spec allows)."""
import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("only http here, not %r" % scope["type"])
    path = scope["path"]
    handler = ROUTES.get(path)
    if handler is None:
        await respond(send, 404, b"no route %s\n" % path.encode())
        return
    await handler(scope, receive, send)


async def respond(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def hello(scope, receive, send):
    await respond(send, 200, b"hello asgi\n", [(b"x-raw", b"yes")])


async def events(scope, receive, send):
    # Every receive() event until the body is complete, then one more
    # after the response: it must be http.disconnect.
    seen = []
    while True:
        m = await receive()
        seen.append("%s:%d:%s" % (m["type"], len(m.get("body", b"")),
                                  m.get("more_body", False)))
        if m["type"] != "http.request" or not m.get("more_body"):
            break
    await respond(send, 200, (" ".join(seen) + "\n").encode())
    m = await asyncio.wait_for(receive(), 5)
    print("asgi-after-response %s" % m["type"])


async def nostart(scope, receive, send):
    return None


async def informational(scope, receive, send):
    await respond(send, 103, b"early\n")


async def strheader(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [("content-type", "text/plain")]})
    await send({"type": "http.response.body", "body": b"x"})


async def badheader(scope, receive, send):
    await respond(send, 200, b"x", [(b"x-bad", b"a\r\nb")])


async def twice(scope, receive, send):
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.start", "status": 200})


async def raise_early(scope, receive, send):
    raise KeyError("raw early")


async def raise_late(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first part\n",
                "more_body": True})
    raise KeyError("raw late")


async def incomplete(scope, receive, send):
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"half",
                "more_body": True})


async def status201(scope, receive, send):
    await respond(send, 201, b"created\n", [(b"location", b"/x")])


ROUTES = {
    "/hello": hello, "/events": events, "/nostart": nostart,
    "/1xx": informational, "/strheader": strheader,
    "/badheader": badheader, "/twice": twice,
    "/raise-early": raise_early, "/raise-late": raise_late,
    "/incomplete": incomplete, "/201": status201,
}


class ClassApp:
    """The class form: an instance whose __call__ is the ASGI app.  With
    fail, its lifespan startup fails (the app then must not serve)."""

    def __init__(self, fail):
        self.fail = fail
        self.state = "new"

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                if m["type"] == "lifespan.startup" and self.fail:
                    await send({"type": "lifespan.startup.failed",
                                "message": "no database (on purpose)"})
                    return
                if m["type"] == "lifespan.startup":
                    self.state = "started"
                    await send({"type": "lifespan.startup.complete"})
                elif m["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await respond(send, 200, b"class app %s\n" % self.state.encode())


class_app = ClassApp(fail=False)
failing_app = ClassApp(fail=True)
