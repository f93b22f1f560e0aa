"""asgi_sleep: awaits asyncio.sleep(0.02) per request — an app waiting on I/O (the ASGI twin of sleep.py)."""
import asyncio

BODY = b"slept 20 ms\n"
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"content-length", b"12")]}
END = {"type": "http.response.body", "body": BODY}


async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.02)
    await send(START)
    await send(END)
