"""asgi_wait: for bench/asgi-await — http awaits asyncio.sleep(1) (an app waiting on an upstream), a
websocket echoes each message until the client closes."""
import asyncio

START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"content-length", b"6")]}
END = {"type": "http.response.body", "body": b"waited"}


async def application(scope, receive, send):
    if scope["type"] == "http":
        await asyncio.sleep(1)
        await send(START)
        await send(END)
    elif scope["type"] == "websocket":
        await receive()                       # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": m.get("text"), "bytes": m.get("bytes")})
