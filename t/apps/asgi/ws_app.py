"""Plain ASGI websocket apps for t/asgi_ws.t (issue 17), written against
the ASGI websocket spec only.  The route is the scope's path."""


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        raise ValueError("only websocket here, not %r" % scope["type"])
    handler = ROUTES.get(scope["path"])
    m = await receive()
    if m["type"] != "websocket.connect":
        raise ValueError("first event %r" % m["type"])
    if handler is None:
        await send({"type": "websocket.close", "code": 1008})
        return
    await handler(scope, receive, send)


async def echo(scope, receive, send):
    # Echoes text as text and bytes as bytes until the client closes.
    await send({"type": "websocket.accept"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            return
        if m.get("text") is not None:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def subproto(scope, receive, send):
    # Picks the last subprotocol offered and says what it saw in the scope.
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[-1],
                "headers": [(b"x-ws", b"yes")]})
    await send({"type": "websocket.send",
                "text": "%s %s %s %s" % (scope["scheme"], ",".join(offered),
                                         scope["root_path"],
                                         scope["query_string"].decode())})
    await receive()


async def refuse(scope, receive, send):
    await send({"type": "websocket.close"})


async def record(scope, receive, send):
    # Prints (to the error log) the code of the client's close.
    await send({"type": "websocket.accept"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            print("asgi-ws disconnect %s" % m["code"], flush=True)
            return


HELD = []


async def fill(scope, receive, send):
    # Opens 1,100 descriptors and keeps them (a busy child has that many:
    # connections, files), so that what the child opens next gets numbers
    # past 1,023, where select() cannot go; stays open until the client
    # goes (its own descriptors are low ones, freed when it ends).
    import os
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        await send({"type": "websocket.close", "code": 4003})
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400), hard))
    while len(HELD) < 1100:
        HELD.append(os.open(os.devnull, os.O_RDONLY))
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "filled %d" % HELD[-1]})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def close(scope, receive, send):
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "bye"})
    await send({"type": "websocket.close", "code": 4002})


async def boom(scope, receive, send):
    await send({"type": "websocket.accept"})
    raise RuntimeError("websocket boom")


async def badsend(scope, receive, send):
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": 5})


ROUTES = {
    "/fill": fill, "/badsend": badsend, "/echo": echo, "/subproto": subproto, "/refuse": refuse,
          "/record": record, "/close": close, "/boom": boom}
