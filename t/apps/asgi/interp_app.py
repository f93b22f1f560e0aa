"""An ASGI app for t/asgi_interp.t: one copy per interpreter that imports
it (each has its own TOKEN), its lifespan logged to wsgi.errors' stream
(stderr), its answer saying which copy and which loop served it."""
import asyncio
import os
import sys
import threading

TOKEN = os.urandom(6).hex()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                scope["state"]["started"] = TOKEN
                print("asgi-interp startup %s" % TOKEN, file=sys.stderr, flush=True)
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                print("asgi-interp shutdown %s" % TOKEN, file=sys.stderr, flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/wait":
        await asyncio.sleep(0.5)
    body = "%s %s %s %d\n" % (TOKEN, scope["state"].get("started"), threading.current_thread().name.replace(" ", "-"),
                              id(asyncio.get_running_loop()))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body.encode()})
