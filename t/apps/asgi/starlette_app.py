"""A Starlette app for t/asgi.t: routes, a JSON scope dump, a body echo,
a streaming response, an exception, a sleep, and lifespan state."""
import asyncio
import contextlib
import os
import sys

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute


@contextlib.asynccontextmanager
async def lifespan(app):
    print("asgi-lifespan startup pid %d" % os.getpid(), file=sys.stderr)
    yield {"started_pid": os.getpid()}
    print("asgi-lifespan shutdown pid %d" % os.getpid(), file=sys.stderr)


async def index(request):
    return PlainTextResponse("starlette index\n")


async def scope(request):
    s = request.scope
    return JSONResponse({
        "type": s["type"], "asgi": s["asgi"],
        "http_version": s["http_version"], "method": s["method"],
        "scheme": s["scheme"], "path": s["path"],
        "raw_path": s["raw_path"].decode("latin-1"),
        "query_string": s["query_string"].decode("latin-1"),
        "root_path": s["root_path"],
        "headers": [[n.decode("latin-1"), v.decode("latin-1")]
                    for n, v in s["headers"]],
        "client": list(s["client"]), "server": list(s["server"]),
        "state": dict(s.get("state", {})),
        "url": str(request.url),
    })


async def echo(request):
    # Count the receive() events the body came in, to see chunking.
    chunks = 0
    body = b""
    async for part in request.stream():
        chunks += 1
        body += part
    return Response(body, media_type="application/octet-stream",
                    headers={"X-Chunks": str(chunks)})


async def stream(request):
    async def gen():
        for i in range(3):
            yield ("part %d\n" % i).encode()
            await asyncio.sleep(0.2)
    return StreamingResponse(gen(), media_type="text/plain")


async def boom(request):
    raise RuntimeError("starlette boom")


async def sleep(request):
    await asyncio.sleep(float(request.query_params.get("s", "1")))
    return PlainTextResponse("slept\n")


async def ws_echo(websocket):
    # t/asgi_ws.t: a WebSocketRoute echoing text as text, bytes as bytes.
    await websocket.accept()
    while True:
        m = await websocket.receive()
        if m["type"] == "websocket.disconnect":
            return
        if m.get("text") is not None:
            await websocket.send_text(m["text"])
        else:
            await websocket.send_bytes(m["bytes"])


app = Starlette(routes=[
    WebSocketRoute("/ws", ws_echo),
    Route("/", index),
    Route("/scope", scope),
    Route("/scope/{rest:path}", scope),
    Route("/echo", echo, methods=["POST", "PUT"]),
    Route("/stream", stream),
    Route("/boom", boom),
    Route("/sleep", sleep),
], lifespan=lifespan)
