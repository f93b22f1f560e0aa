/*
 * pw_asgi.c: ASGI 3 applications (PyWSGIScriptAlias ... interface=asgi).
 *
 * Here: the http scope of a request, built from request_rec as
 * pw_environ.c builds the environ; one asyncio event loop per interpreter
 * per child, in a thread of its own, started on the first ASGI request;
 * the lifespan protocol once per app per child (startup before its first
 * request, shutdown in the lifecycle's bounded exit).  The Python half is
 * the bridge below (one copy per interpreter, never in sys.modules).
 *
 * How a request runs (the "simple form", the one every MPM uses for now):
 * the Apache thread submits the app's coroutine to the loop and then waits
 * on a queue, GIL released, for what the app asks; it reads body chunks
 * (receive()) through wsgi.input and sends the response (send()) through
 * start_response and write() of pw_response.c, so the body limits, the
 * status and header checks and the output buckets are those of WSGI.  The
 * app's own awaiting happens in the loop thread, but its Apache thread is
 * held until the response is done.
 *
 * Websockets (an HTTP/1.1 Upgrade on an ASGI mount) take the same simple
 * form: the Apache thread bridges the connection for its whole life.  It
 * sends the 101 itself, then reads and writes the raw connection below
 * the HTTP filters (c->input_filters / c->output_filters), waiting with
 * poll() on the socket and on a pipe the loop thread writes to when
 * the app sends; the RFC 6455 framing is the bridge's.  Only this thread
 * touches the connection (its bucket allocator is not thread-safe).
 *
 * Locking: everything here runs with the GIL of the request's interpreter;
 * the loop thread is a Python thread of that interpreter.  The bridge's
 * own locks (loop start, lifespan start) are Python locks, waited for
 * with the GIL released.
 */
#include "pw_asgi.h"
#include "pw_log.h"
#include "pw_response.h"
#include "http_core.h"
#include "apr_base64.h"
#include "apr_sha1.h"
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

static const char bridge_src[] =
    "# mod_pywsgi's ASGI bridge (src/pw_asgi.c), one copy per interpreter.\n"
    "# The loop thread runs the apps; the Apache thread of each request\n"
    "# waits on a queue for what its app asks: a body chunk, a message to\n"
    "# send.\n"
    "import asyncio\n"
    "import concurrent.futures\n"
    "import queue\n"
    "import threading\n"
    "\n"
    "CHUNK = 65536\n"
    "\n"
    "\n"
    "class ProtocolError(Exception):\n"
    "  \"\"\"The app broke the protocol: one log line, no traceback.\"\"\"\n"
    "\n"
    "\n"
    "_loop = None\n"
    "_thread = None\n"
    "_loop_lock = threading.Lock()\n"
    "_lifespan_lock = threading.Lock()\n"
    "_lifespans = {}\n"
    "\n"
    "\n"
    "def _run(lp):\n"
    "  asyncio.set_event_loop(lp)\n"
    "  try:\n"
    "    lp.run_forever()\n"
    "    lp.run_until_complete(lp.shutdown_asyncgens())\n"
    "  finally:\n"
    "    lp.close()\n"
    "\n"
    "\n"
    "def _get_loop():\n"
    "  global _loop, _thread\n"
    "  if _loop is None:\n"
    "    with _loop_lock:\n"
    "      if _loop is None:\n"
    "        lp = asyncio.new_event_loop()\n"
    "        t = threading.Thread(target=_run, args=(lp,), daemon=True,\n"
    "                   name=\"mod_pywsgi asyncio\")\n"
    "        t.start()\n"
    "        _thread = t\n"
    "        _loop = lp\n"
    "  return _loop\n"
    "\n"
    "\n"
    "def _alive():\n"
    "  if not _thread.is_alive():\n"
    "    raise RuntimeError(\"the asyncio loop thread of this interpreter \"\n"
    "                       \"has ended (see the log above)\")\n"
    "\n"
    "\n"
    "def _wait(fut):\n"
    "  # In short steps: PyWSGIRequestTimeout's exception lands in between,\n"
    "  # and a loop thread that died is noticed.\n"
    "  while not fut.done():\n"
    "    concurrent.futures.wait((fut,), 0.5)\n"
    "    _alive()\n"
    "  return fut.result()\n"
    "\n"
    "\n"
    "def _get(chan):\n"
    "  while True:\n"
    "    try:\n"
    "      return chan.get(timeout=0.5)\n"
    "    except queue.Empty:\n"
    "      _alive()\n"
    "\n"
    "\n"
    "def _resolve(f, value):\n"
    "  if not f.done():\n"
    "    f.set_result(value)\n"
    "\n"
    "\n"
    "def _fail(f, exc):\n"
    "  if not f.done():\n"
    "    f.set_exception(exc)\n"
    "\n"
    "\n"
    "def _first(f, value):\n"
    "  if not f.done():\n"
    "    f.set_result(value)\n"
    "\n"
    "\n"
    "def _describe(e):\n"
    "  return \"%s: %s\" % (type(e).__name__, e)\n"
    "\n"
    "\n"
    "class _Lifespan:\n"
    "  def __init__(self, app):\n"
    "    self.app = app\n"
    "    self.state = {}\n"
    "    self.started = concurrent.futures.Future()\n"
    "    self.stopped = concurrent.futures.Future()\n"
    "    self.inbox = None\n"
    "    self.outcome = None\n"
    "\n"
    "  async def run(self):\n"
    "    self.inbox = asyncio.Queue()\n"
    "    self.inbox.put_nowait({\"type\": \"lifespan.startup\"})\n"
    "    scope = {\"type\": \"lifespan\",\n"
    "         \"asgi\": {\"version\": \"3.0\", \"spec_version\": \"2.0\"},\n"
    "         \"state\": self.state}\n"
    "    try:\n"
    "      await self.app(scope, self.inbox.get, self.send)\n"
    "    except BaseException as e:\n"
    "      # Before the startup answer: \"auto\", as uvicorn does — an app\n"
    "      # that raises on the lifespan scope does without it.\n"
    "      _first(self.started, (\"unsupported\", _describe(e)))\n"
    "      _first(self.stopped, (\"failed\", _describe(e)))\n"
    "    _first(self.started, (\"unsupported\",\n"
    "                \"it returned without answering \"\n"
    "                \"lifespan.startup\"))\n"
    "    _first(self.stopped, (\"ok\", \"\"))\n"
    "\n"
    "  async def send(self, message):\n"
    "    t = message.get(\"type\")\n"
    "    if t == \"lifespan.startup.complete\":\n"
    "      _first(self.started, (\"ok\", \"\"))\n"
    "    elif t == \"lifespan.startup.failed\":\n"
    "      why = str(message.get(\"message\", \"\"))\n"
    "      _first(self.started, (\"failed\", why))\n"
    "    elif t == \"lifespan.shutdown.complete\":\n"
    "      _first(self.stopped, (\"ok\", \"\"))\n"
    "    elif t == \"lifespan.shutdown.failed\":\n"
    "      why = str(message.get(\"message\", \"\"))\n"
    "      _first(self.stopped, (\"failed\", why))\n"
    "    else:\n"
    "      raise ProtocolError(\"unexpected lifespan message %r\" % (t,))\n"
    "\n"
    "\n"
    "def lifespan(key, app):\n"
    "  # (first time?, \"ok\"|\"unsupported\"|\"failed\", detail, state|None)\n"
    "  ls = _lifespans.get(key)\n"
    "  if ls is None:\n"
    "    with _lifespan_lock:\n"
    "      ls = _lifespans.get(key)\n"
    "      if ls is None:\n"
    "        ls = _Lifespan(app)\n"
    "        asyncio.run_coroutine_threadsafe(ls.run(), _get_loop())\n"
    "        ls.outcome, detail = _wait(ls.started)\n"
    "        _lifespans[key] = ls\n"
    "        return (True, ls.outcome, detail,\n"
    "            ls.state if ls.outcome == \"ok\" else None)\n"
    "  state = ls.state if ls.outcome == \"ok\" else None\n"
    "  return (False, ls.outcome, \"\", state)\n"
    "\n"
    "\n"
    "async def _cancel_all():\n"
    "  me = asyncio.current_task()\n"
    "  tasks = [t for t in asyncio.all_tasks() if t is not me]\n"
    "  for t in tasks:\n"
    "    t.cancel()\n"
    "  await asyncio.gather(*tasks, return_exceptions=True)\n"
    "\n"
    "\n"
    "def shutdown():\n"
    "  # Child exit: [(key, outcome, detail)] of each lifespan shutdown.\n"
    "  lp = _loop\n"
    "  out = []\n"
    "  if lp is None:\n"
    "    return out\n"
    "  for key, ls in list(_lifespans.items()):\n"
    "    if ls.outcome != \"ok\":\n"
    "      continue\n"
    "    lp.call_soon_threadsafe(ls.inbox.put_nowait,\n"
    "                {\"type\": \"lifespan.shutdown\"})\n"
    "    out.append((key,) + _wait(ls.stopped))\n"
    "  _lifespans.clear()\n"
    "  _wait(asyncio.run_coroutine_threadsafe(_cancel_all(), lp))\n"
    "  lp.call_soon_threadsafe(lp.stop)\n"
    "  _thread.join()\n"
    "  return out\n"
    "\n"
    "\n"
    "class _Request:\n"
    "  # The loop's side of one request.  send() checks each message here and\n"
    "  # queues it for the request's Apache thread without waiting for it,\n"
    "  # except a piece with more to come, which waits until it is written\n"
    "  # (back-pressure): a plain response costs one hand-over, not three.\n"
    "  __slots__ = (\"chan\", \"loop\", \"ended\", \"gone\", \"state\", \"task\")\n"
    "\n"
    "  def __init__(self, chan, lp):\n"
    "    self.chan = chan\n"
    "    self.loop = lp\n"
    "    self.ended = False\n"
    "    self.gone = False\n"
    "    self.state = 0  # 0: not started, 1: started, 2: complete\n"
    "    self.task = None\n"
    "\n"
    "  async def receive(self):\n"
    "    if self.ended:\n"
    "      return {\"type\": \"http.disconnect\"}\n"
    "    f = self.loop.create_future()\n"
    "    self.chan.put((\"r\", f))\n"
    "    return await f\n"
    "\n"
    "  async def send(self, message):\n"
    "    if self.ended or self.gone:\n"
    "      raise OSError(\"the request is over\")\n"
    "    try:\n"
    "      item = self.check(message)\n"
    "    except ProtocolError as e:\n"
    "      self.chan.put((\"p\", e))\n"
    "      raise\n"
    "    if item is None:\n"
    "      return\n"
    "    if item[0] == \"b\":\n"
    "      f = self.loop.create_future()\n"
    "      self.chan.put(item + (f,))\n"
    "      await f\n"
    "    else:\n"
    "      self.chan.put(item)\n"
    "\n"
    "  def check(self, message):\n"
    "    t = message.get(\"type\") if isinstance(message, dict) else None\n"
    "    if t == \"http.response.start\":\n"
    "      if self.state:\n"
    "        raise ProtocolError(\"sent http.response.start twice\")\n"
    "      status = message.get(\"status\")\n"
    "      if not isinstance(status, int) or isinstance(status, bool) \\\n"
    "          or not 100 <= status <= 999:\n"
    "        raise ProtocolError(\"status %r is not an HTTP status code\"\n"
    "                  % (status,))\n"
    "      if status < 200:\n"
    "        raise ProtocolError(\"final status %d is informational (1xx)\"\n"
    "                  % status)\n"
    "      headers = []\n"
    "      for h in message.get(\"headers\", ()):\n"
    "        try:\n"
    "          name, value = h\n"
    "        except (TypeError, ValueError):\n"
    "          raise ProtocolError(\"header %r is not a [name, value] \"\n"
    "                    \"pair\" % (h,)) from None\n"
    "        if not isinstance(name, bytes) \\\n"
    "            or not isinstance(value, bytes):\n"
    "          raise ProtocolError(\"header %r: name and value must be \"\n"
    "                    \"bytes\" % (h,))\n"
    "        headers.append((name.decode(\"latin-1\"),\n"
    "                value.decode(\"latin-1\")))\n"
    "      self.state = 1\n"
    "      return (\"h\", str(status), headers)\n"
    "    if t == \"http.response.body\":\n"
    "      if self.state == 0:\n"
    "        raise ProtocolError(\"sent http.response.body before \"\n"
    "                  \"http.response.start\")\n"
    "      if self.state == 2:\n"
    "        raise ProtocolError(\"sent http.response.body after the \"\n"
    "                  \"response was complete\")\n"
    "      body = message.get(\"body\", b\"\")\n"
    "      if not isinstance(body, bytes):\n"
    "        raise ProtocolError(\"http.response.body: body must be \"\n"
    "                  \"bytes, not %s\" % type(body).__name__)\n"
    "      if message.get(\"more_body\", False):\n"
    "        return (\"b\", body) if body else None\n"
    "      self.state = 2\n"
    "      return (\"e\", body)\n"
    "    raise ProtocolError(\"sent a message of type %r (expected \"\n"
    "              \"http.response.start or http.response.body)\" % (t,))\n"
    "\n"
    "\n"
    "async def _call(app, scope, receive, send):\n"
    "  await app(scope, receive, send)\n"
    "\n"
    "\n"
    "async def _call_http(app, scope, req):\n"
    "  # Says \"done\" (with what the app raised) itself, in the same turn\n"
    "  # of the loop as the app's last send(): the Apache thread then finds\n"
    "  # the whole response and the end in its queue at once.  Cancelled\n"
    "  # (the Apache side gave up), it says so too.\n"
    "  exc = None\n"
    "  try:\n"
    "    await app(scope, req.receive, req.send)\n"
    "  except Exception as e:\n"
    "    exc = e\n"
    "  finally:\n"
    "    req.chan.put((\"d\", exc))\n"
    "\n"
    "\n"
    "def _start(req, app, scope):\n"
    "  # In the loop: the request's task (a plain task, no cross-thread\n"
    "  # future: the queue carries the end), unless it was stopped first.\n"
    "  if req.ended:\n"
    "    req.chan.put((\"d\", None))\n"
    "  else:\n"
    "    req.task = req.loop.create_task(_call_http(app, scope, req))\n"
    "\n"
    "\n"
    "def _stop(req):\n"
    "  if req.task is not None:\n"
    "    req.task.cancel()\n"
    "\n"
    "\n"
    "def _drain(chan, limit):\n"
    "  # After giving up: the app's end, for at most limit seconds.\n"
    "  try:\n"
    "    while chan.get(timeout=limit)[0] != \"d\":\n"
    "      pass\n"
    "  except queue.Empty:\n"
    "    pass\n"
    "\n"
    "\n"
    "def serve(app, scope, state, body, start_response, finish):\n"
    "  \"\"\"Serve one request; returns the handler's status, -1 when the\n"
    "  request body broke (the client's error), or the exception the app\n"
    "  raised; raises ProtocolError for what it did wrong.\"\"\"\n"
    "  lp = _get_loop()\n"
    "  if state is not None:\n"
    "    scope[\"state\"] = state.copy()\n"
    "  chan = queue.SimpleQueue()\n"
    "  req = _Request(chan, lp)\n"
    "  call = lp.call_soon_threadsafe\n"
    "  call(_start, req, app, scope)\n"
    "  disconnect = {\"type\": \"http.disconnect\"}\n"
    "  body_done = gone = broken = complete = False\n"
    "  write = None\n"
    "  rc = 0\n"
    "  waiting = []\n"
    "  perr = exc = None\n"
    "  try:\n"
    "    while True:\n"
    "      item = _get(chan)\n"
    "      kind = item[0]\n"
    "      if kind == \"d\":\n"
    "        exc = item[1]\n"
    "        break\n"
    "      if kind == \"r\":\n"
    "        f = item[1]\n"
    "        if gone or perr is not None or complete:\n"
    "          call(_resolve, f, disconnect)\n"
    "        elif body_done:\n"
    "          # Nothing more to read: the next event is the\n"
    "          # disconnect, once the response is out.\n"
    "          waiting.append(f)\n"
    "        else:\n"
    "          try:\n"
    "            data = body.read(CHUNK)\n"
    "          except OSError:\n"
    "            broken = gone = req.gone = True\n"
    "            call(_resolve, f, disconnect)\n"
    "            continue\n"
    "          body_done = len(data) < CHUNK\n"
    "          call(_resolve, f, {\"type\": \"http.request\", \"body\": data,\n"
    "                     \"more_body\": not body_done})\n"
    "        continue\n"
    "      if kind == \"p\":\n"
    "        if perr is None:\n"
    "          perr = item[1]\n"
    "          call(_stop, req)\n"
    "        continue\n"
    "      ack = item[2] if kind == \"b\" else None\n"
    "      if gone or perr is not None:\n"
    "        if ack is not None:\n"
    "          call(_fail, ack, OSError(\"the response is over\"))\n"
    "        continue\n"
    "      try:\n"
    "        if kind == \"h\":\n"
    "          write = start_response(item[1], item[2])\n"
    "        elif kind == \"b\":\n"
    "          write(item[1])\n"
    "        else:\n"
    "          rc = finish(start_response, item[1])\n"
    "          complete = True\n"
    "      except (TypeError, ValueError) as e:  # start_response refused\n"
    "        perr = ProtocolError(str(e))\n"
    "        req.ended = True\n"
    "        call(_stop, req)\n"
    "        continue\n"
    "      except OSError as e:  # the client went away\n"
    "        gone = req.gone = True\n"
    "        if ack is not None:\n"
    "          call(_fail, ack, e)\n"
    "        continue\n"
    "      if ack is not None:\n"
    "        call(_resolve, ack, None)\n"
    "      if complete:\n"
    "        for w in waiting:\n"
    "          call(_resolve, w, disconnect)\n"
    "        waiting = []\n"
    "  except BaseException:\n"
    "    # PyWSGIRequestTimeout (or worse): stop the app, then report.\n"
    "    req.ended = True\n"
    "    call(_stop, req)\n"
    "    for w in waiting:\n"
    "      call(_resolve, w, disconnect)\n"
    "    _drain(chan, 1.0)\n"
    "    raise\n"
    "  req.ended = True\n"
    "  for w in waiting:\n"
    "    call(_resolve, w, disconnect)\n"
    "  if perr is not None:\n"
    "    raise perr\n"
    "  if exc is not None and not broken \\\n"
    "      and not (gone and isinstance(exc, OSError)):\n"
    "    # Handed back, not raised: the traceback then starts in the app.\n"
    "    tb = exc.__traceback__\n"
    "    if tb is not None and tb.tb_frame.f_code is _call_http.__code__:\n"
    "      exc = exc.with_traceback(tb.tb_next)\n"
    "    return exc\n"
    "  if broken and req.state == 0:\n"
    "    return -1\n"
    "  if gone:\n"
    "    return rc\n"
    "  if req.state == 0:\n"
    "    raise ProtocolError(\"returned without sending \"\n"
    "                        \"http.response.start\")\n"
    "  if req.state == 1:\n"
    "    raise ProtocolError(\"returned before its response was complete \"\n"
    "              \"(the last http.response.body had more_body)\")\n"
    "  return rc\n"
    "\n"
    "\n"
    "# --- websockets (RFC 6455) over an HTTP/1.1 Upgrade\n"
    "# The Apache thread owns the connection for its whole life: it\n"
    "# waits with poll() on the client's socket and on a pipe the loop\n"
    "# thread writes to when the app sends, so that only this thread\n"
    "# touches Apache's filters.\n"

    "import os\n"
    "import select\n"
    "import struct\n"
    "\n"
    "WS_MAX = 16 * 1024 * 1024\n"
    "\n"
    "\n"
    "class _WsError(Exception):\n"
    "  \"\"\"The client broke RFC 6455: close with this code.\"\"\"\n"
    "\n"
    "\n"
    "def _unmask(data, mask):\n"
    "  n = len(data)\n"
    "  if not n:\n"
    "    return data\n"
    "  m = (mask * (n // 4 + 1))[:n]\n"
    "  return (int.from_bytes(data, \"big\")\n"
    "          ^ int.from_bytes(m, \"big\")).to_bytes(n, \"big\")\n"
    "\n"
    "\n"
    "def _frame(op, data):\n"
    "  n = len(data)\n"
    "  if n < 126:\n"
    "    head = struct.pack(\"!BB\", 0x80 | op, n)\n"
    "  elif n < 65536:\n"
    "    head = struct.pack(\"!BBH\", 0x80 | op, 126, n)\n"
    "  else:\n"
    "    head = struct.pack(\"!BBQ\", 0x80 | op, 127, n)\n"
    "  return head + data\n"
    "\n"
    "\n"
    "def _close_frame(code, reason=\"\"):\n"
    "  return _frame(8, struct.pack(\"!H\", code) + reason.encode()[:120])\n"
    "\n"
    "\n"
    "class _WsParser:\n"
    "  def __init__(self):\n"
    "    self.buf = bytearray()\n"
    "    self.op = None\n"
    "    self.parts = []\n"
    "    self.size = 0\n"
    "\n"
    "  def feed(self, data):\n"
    "    # [(opcode, payload)]: whole messages and control frames.\n"
    "    self.buf += data\n"
    "    out = []\n"
    "    b = self.buf\n"
    "    while len(b) >= 2:\n"
    "      b0, b1 = b[0], b[1]\n"
    "      fin, op, n, pos = b0 & 0x80, b0 & 0x0F, b1 & 0x7F, 2\n"
    "      if b0 & 0x70:\n"
    "        raise _WsError(1002, \"reserved bits set\")\n"
    "      if not b1 & 0x80:\n"
    "        raise _WsError(1002, \"client frame not masked\")\n"
    "      if n == 126:\n"
    "        if len(b) < 4:\n"
    "          break\n"
    "        n, pos = struct.unpack_from(\"!H\", b, 2)[0], 4\n"
    "      elif n == 127:\n"
    "        if len(b) < 10:\n"
    "          break\n"
    "        n, pos = struct.unpack_from(\"!Q\", b, 2)[0], 10\n"
    "      if op >= 8 and (n > 125 or not fin):\n"
    "        raise _WsError(1002, \"bad control frame\")\n"
    "      if self.size + n > WS_MAX:\n"
    "        raise _WsError(1009, \"message too big\")\n"
    "      if len(b) < pos + 4 + n:\n"
    "        break\n"
    "      mask = bytes(b[pos:pos + 4])\n"
    "      payload = _unmask(bytes(b[pos + 4:pos + 4 + n]), mask)\n"
    "      del b[:pos + 4 + n]\n"
    "      if op >= 8:\n"
    "        out.append((op, payload))\n"
    "        continue\n"
    "      if op == 0:\n"
    "        if self.op is None:\n"
    "          raise _WsError(1002, \"continuation without a message\")\n"
    "      elif op in (1, 2):\n"
    "        if self.op is not None:\n"
    "          raise _WsError(1002, \"new message inside a fragmented one\")\n"
    "        self.op = op\n"
    "      else:\n"
    "        raise _WsError(1002, \"unknown opcode %d\" % op)\n"
    "      self.parts.append(payload)\n"
    "      self.size += n\n"
    "      if fin:\n"
    "        out.append((self.op, b\"\".join(self.parts)))\n"
    "        self.op, self.parts, self.size = None, [], 0\n"
    "    return out\n"
    "\n"
    "\n"
    "class _Ws:\n"
    "  # The Apache side of one websocket: runs in the request's thread.\n"
    "\n"
    "  def __init__(self, io, accept_value, lp, inbox):\n"
    "    self.io = io\n"
    "    self.accept_value = accept_value\n"
    "    self.loop = lp\n"
    "    self.inbox = inbox\n"
    "    self.state = 0  # 0: connecting, 1: open, 2: closed, 3: refused\n"
    "    self.client_gone = False\n"
    "\n"
    "  def deliver(self, event):\n"
    "    self.loop.call_soon_threadsafe(self.inbox.put_nowait, event)\n"
    "\n"
    "  def gone(self, code):\n"
    "    if not self.client_gone:\n"
    "      self.client_gone = True\n"
    "      self.deliver({\"type\": \"websocket.disconnect\", \"code\": code})\n"
    "\n"
    "  def handle(self, message):\n"
    "    t = message.get(\"type\") if isinstance(message, dict) else None\n"
    "    if self.state == 0:\n"
    "      if t == \"websocket.accept\":\n"
    "        self.accept(message)\n"
    "      elif t == \"websocket.close\":\n"
    "        self.state = 3\n"
    "        self.gone(1000)\n"
    "      else:\n"
    "        raise ProtocolError(\"sent %r before websocket.accept \"\n"
    "                            \"(expected websocket.accept or \"\n"
    "                            \"websocket.close)\" % (t,))\n"
    "      return\n"
    "    if t == \"websocket.send\":\n"
    "      if self.state != 1:\n"
    "        raise OSError(\"the websocket is closed\")\n"
    "      text, data = message.get(\"text\"), message.get(\"bytes\")\n"
    "      if text is not None and isinstance(text, str):\n"
    "        self.io.write(_frame(1, text.encode()))\n"
    "      elif data is not None and isinstance(data, bytes):\n"
    "        self.io.write(_frame(2, data))\n"
    "      else:\n"
    "        raise ProtocolError(\"websocket.send needs text (str) or \"\n"
    "                            \"bytes\")\n"
    "    elif t == \"websocket.close\":\n"
    "      if self.state != 1:\n"
    "        return\n"
    "      code = message.get(\"code\", 1000)\n"
    "      if not isinstance(code, int):\n"
    "        raise ProtocolError(\"websocket.close: code %r\" % (code,))\n"
    "      self.state = 2\n"
    "      reason = str(message.get(\"reason\") or \"\")\n"
    "      self.io.write(_close_frame(code, reason))\n"
    "      self.gone(code)\n"
    "    elif t == \"websocket.accept\":\n"
    "      raise ProtocolError(\"sent websocket.accept twice\")\n"
    "    else:\n"
    "      raise ProtocolError(\"sent a message of type %r on a websocket\"\n"
    "                          % (t,))\n"
    "\n"
    "  def accept(self, message):\n"
    "    sub = message.get(\"subprotocol\")\n"
    "    head = [\"HTTP/1.1 101 Switching Protocols\",\n"
    "            \"Upgrade: websocket\", \"Connection: Upgrade\"]\n"
    "    head.append(\"Sec-WebSocket-Accept: \" + self.accept_value)\n"
    "    if sub is not None:\n"
    "      if not isinstance(sub, str) or not sub.isprintable() \\\n"
    "          or \",\" in sub:\n"
    "        raise ProtocolError(\"websocket.accept: subprotocol %r\"\n"
    "                            % (sub,))\n"
    "      head.append(\"Sec-WebSocket-Protocol: \" + sub)\n"
    "    for h in message.get(\"headers\", ()):\n"
    "      try:\n"
    "        name, value = h\n"
    "        name = name.decode(\"latin-1\")\n"
    "        value = value.decode(\"latin-1\")\n"
    "      except (TypeError, ValueError, AttributeError):\n"
    "        raise ProtocolError(\"websocket.accept: header %r is not a \"\n"
    "                            \"pair of bytes\" % (h,)) from None\n"
    "      if any(c in name + value for c in \"\\r\\n\\0\") or \":\" in name:\n"
    "        raise ProtocolError(\"websocket.accept: header %r\" % (h,))\n"
    "      head.append(\"%s: %s\" % (name, value))\n"
    "    head = \"\\r\\n\".join(head) + \"\\r\\n\\r\\n\"\n"
    "    self.io.accept(head.encode(\"latin-1\"))\n"
    "    self.state = 1\n"
    "\n"
    "  def frames(self, frames):\n"
    "    for op, payload in frames:\n"
    "      if op == 1:\n"
    "        try:\n"
    "          text = payload.decode()\n"
    "        except UnicodeDecodeError:\n"
    "          raise _WsError(1007, \"text not UTF-8\") from None\n"
    "        self.deliver({\"type\": \"websocket.receive\", \"text\": text})\n"
    "      elif op == 2:\n"
    "        self.deliver({\"type\": \"websocket.receive\",\n"
    "                      \"bytes\": payload})\n"
    "      elif op == 9:\n"
    "        if self.state == 1:\n"
    "          self.io.write(_frame(10, payload))\n"
    "      elif op == 8:\n"
    "        code = 1005\n"
    "        if len(payload) >= 2:\n"
    "          code = struct.unpack(\"!H\", payload[:2])[0]\n"
    "        if self.state == 1:\n"
    "          self.state = 2\n"
    "          self.io.write(_close_frame(code if code != 1005 else 1000))\n"
    "        self.gone(code)\n"
    "\n"
    "\n"
    "class _Io:\n"
    "  __slots__ = (\"read\", \"write\", \"accept\", \"fileno\")\n"
    "\n"
    "  def __init__(self, read, write, accept, fileno):\n"
    "    self.read, self.write = read, write\n"
    "    self.accept, self.fileno = accept, fileno\n"
    "\n"
    "\n"
    "def serve_ws(app, scope, state, funcs, accept_value):\n"
    "  \"\"\"Serve one websocket; returns (http status or 0 when it was\n"
    "  accepted, the exception the app raised or None); raises ProtocolError\n"
    "  for what the app did wrong (after closing with 1011 if\n"
    "  accepted).\"\"\"\n"
    "  io = _Io(*funcs)\n"
    "  subs = []\n"
    "  for name, value in scope[\"headers\"]:\n"
    "    if name == b\"sec-websocket-protocol\":\n"
    "      subs += [p.strip() for p in value.decode(\"latin-1\").split(\",\")\n"
    "               if p.strip()]\n"
    "  scope[\"type\"] = \"websocket\"\n"
    "  tls = scope[\"scheme\"] == \"https\"\n"
    "  scope[\"scheme\"] = \"wss\" if tls else \"ws\"\n"
    "  scope[\"subprotocols\"] = subs\n"
    "  del scope[\"method\"]\n"
    "  lp = _get_loop()\n"
    "  if state is not None:\n"
    "    scope[\"state\"] = state.copy()\n"
    "  chan = queue.SimpleQueue()\n"
    "  rfd, wfd = os.pipe()\n"
    "  inbox = asyncio.Queue()\n"
    "  inbox.put_nowait({\"type\": \"websocket.connect\"})\n"
    "  ended = []\n"
    "\n"
    "  def wake():\n"
    "    try:\n"
    "      os.write(wfd, b\"x\")\n"
    "    except OSError:\n"
    "      pass\n"
    "\n"
    "  async def receive():\n"
    "    if ended:\n"
    "      return {\"type\": \"websocket.disconnect\", \"code\": 1006}\n"
    "    ev = await inbox.get()\n"
    "    if ev[\"type\"] == \"websocket.disconnect\":\n"
    "      inbox.put_nowait(ev)\n"
    "    return ev\n"
    "\n"
    "  async def send(message):\n"
    "    if ended:\n"
    "      raise OSError(\"the websocket is over\")\n"
    "    f = lp.create_future()\n"
    "    chan.put((\"s\", message, f))\n"
    "    wake()\n"
    "    await f\n"
    "\n"
    "  ws = _Ws(io, accept_value, lp, inbox)\n"
    "  parser = _WsParser()\n"
    "  sock = io.fileno()\n"
    "  call = lp.call_soon_threadsafe\n"
    "  fut = asyncio.run_coroutine_threadsafe(\n"
    "    _call(app, scope, receive, send), lp)\n"
    "  fut.add_done_callback(lambda _: (chan.put((\"d\",)), wake()))\n"
    "  perr = None\n"
    "  idle_reads = 0\n"
    "  # poll(), not select(): in a busy child these descriptors number\n"
    "  # past select()'s 1,023.\n"
    "  poller = select.poll()\n"
    "  poller.register(rfd, select.POLLIN)\n"
    "  polled = False\n"
    "  try:\n"
    "    while True:\n"
    "      try:\n"
    "        item = chan.get_nowait()\n"
    "      except queue.Empty:\n"
    "        item = None\n"
    "      if item is not None:\n"
    "        if item[0] == \"d\":\n"
    "          break\n"
    "        message, f = item[1], item[2]\n"
    "        try:\n"
    "          ws.handle(message)\n"
    "        except ProtocolError as e:\n"
    "          perr = e\n"
    "          call(_fail, f, e)\n"
    "          fut.cancel()\n"
    "          continue\n"
    "        except OSError as e:\n"
    "          call(_fail, f, e)\n"
    "          ws.gone(1006)\n"
    "          continue\n"
    "        call(_resolve, f, None)\n"
    "        continue\n"
    "      reading = ws.state == 1 and not ws.client_gone\n"
    "      if reading:\n"
    "        data = io.read()\n"
    "        if data:\n"
    "          idle_reads = 0\n"
    "          try:\n"
    "            ws.frames(parser.feed(data))\n"
    "          except _WsError as e:\n"
    "            if ws.state == 1:\n"
    "              ws.state = 2\n"
    "              io.write(_close_frame(e.args[0], e.args[1]))\n"
    "            ws.gone(e.args[0])\n"
    "          except OSError:\n"
    "            ws.gone(1006)\n"
    "          continue\n"
    "        if data is None or idle_reads >= 2:\n"
    "          ws.gone(1006)\n"
    "          continue\n"
    "      if reading != polled:\n"
    "        if reading:\n"
    "          poller.register(sock, select.POLLIN)\n"
    "        else:\n"
    "          poller.unregister(sock)\n"
    "        polled = reading\n"
    "      ready = dict(poller.poll(500))\n"
    "      if rfd in ready:\n"
    "        os.read(rfd, 4096)\n"
    "      idle_reads = idle_reads + 1 if sock in ready else 0\n"
    "      _alive()\n"
    "  except BaseException:\n"
    "    ended.append(1)\n"
    "    fut.cancel()\n"
    "    concurrent.futures.wait((fut,), 1.0)\n"
    "    raise\n"
    "  finally:\n"
    "    ended.append(1)\n"
    "    os.close(rfd)\n"
    "    os.close(wfd)\n"
    "  exc = fut.exception() if not fut.cancelled() else None\n"
    "  if exc is not None:\n"
    "    tb = exc.__traceback__\n"
    "    if tb is not None and tb.tb_frame.f_code is _call.__code__:\n"
    "      exc = exc.with_traceback(tb.tb_next)\n"
    "  if ws.state == 1:\n"
    "    try:\n"
    "      io.write(_close_frame(1011 if exc or perr else 1000))\n"
    "    except OSError:\n"
    "      pass\n"
    "  if perr is not None:\n"
    "    raise perr\n"
    "  if ws.state == 0 and exc is not None:\n"
    "    return (500, exc)\n"
    "  if ws.state in (0, 3):\n"
    "    return (403, exc)\n"
    "  return (0, exc)\n"
    ;

/* The bridge of one interpreter: its functions, made on first use. */
typedef struct {
    PyObject *serve, *lifespan, *shutdown, *protocol_error, *finish;
    PyObject *serve_ws;
} bridge_t;

static bridge_t bridges[PW_MAX_INTERPS];
static int put(PyObject *d, const char *key, PyObject *value);
static int active[PW_MAX_INTERPS];

/* _finish(start_response, body): the last http.response.body, sent with
 * the end of the response (Apache can then set Content-Length). */
static PyObject *bridge_finish(PyObject *self, PyObject *const *args,
                               Py_ssize_t nargs)
{
    PyObject *list;
    int rc;

    if (nargs != 2 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_finish(start_response, bytes)");
        return NULL;
    }
    list = PyList_New(1);
    if (list == NULL) {
        return NULL;
    }
    PyList_SET_ITEM(list, 0, Py_NewRef(args[1]));
    rc = pw_response_send(args[0], list);
    Py_DECREF(list);
    return PyLong_FromLong(rc);
}

static PyMethodDef finish_def = { "_finish",
                                  (PyCFunction)(void (*)(void))bridge_finish,
                                  METH_FASTCALL, NULL };

/* GIL of interp held.  The bridge, run once per interpreter; NULL with a
 * Python error set. */
static bridge_t *bridge_get(int interp)
{
    bridge_t *b = &bridges[interp], nb = { 0 };
    PyObject *code = NULL, *ns = NULL, *res = NULL;

    if (b->serve) {
        return b;
    }
    ns = PyDict_New();
    if (ns == NULL
        || PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0
        || put(ns, "__name__", PyUnicode_FromString("mod_pywsgi.asgi")) < 0) {
        goto done;
    }
    code =
        Py_CompileString(bridge_src, "<mod_pywsgi asgi bridge>", Py_file_input);
    /* Imports asyncio: may release the GIL, so another thread may have
     * made its bridge meanwhile (then this one is dropped unused: its loop
     * starts only on first use). */
    res = code ? PyEval_EvalCode(code, ns, ns) : NULL;
    if (res == NULL) {
        goto done;
    }
    if (b->serve) {
        goto done;
    }
    nb.serve = Py_XNewRef(PyDict_GetItemString(ns, "serve"));
    nb.lifespan = Py_XNewRef(PyDict_GetItemString(ns, "lifespan"));
    nb.shutdown = Py_XNewRef(PyDict_GetItemString(ns, "shutdown"));
    nb.protocol_error = Py_XNewRef(PyDict_GetItemString(ns, "ProtocolError"));
    nb.serve_ws = Py_XNewRef(PyDict_GetItemString(ns, "serve_ws"));
    nb.finish = PyCFunction_New(&finish_def, NULL);
    if (!nb.serve || !nb.lifespan || !nb.shutdown || !nb.protocol_error
        || !nb.finish || !nb.serve_ws) {
        Py_XDECREF(nb.serve_ws);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "ASGI bridge incomplete");
        }
        Py_XDECREF(nb.serve);
        Py_XDECREF(nb.lifespan);
        Py_XDECREF(nb.shutdown);
        Py_XDECREF(nb.protocol_error);
        Py_XDECREF(nb.finish);
        goto done;
    }
    *b = nb;
    active[interp] = 1;

done:
    Py_XDECREF(res);
    Py_XDECREF(code);
    Py_XDECREF(ns);
    return b->serve ? b : NULL;
}

/* d[key] = value, stealing value (NULL: a failed conversion). */
static int put(PyObject *d, const char *key, PyObject *value)
{
    int rc;

    if (value == NULL) {
        return -1;
    }
    rc = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return rc;
}

static PyObject *str_of(const char *s)
{
    return PyUnicode_DecodeLatin1(s, strlen(s), NULL);
}

/* The request headers as ASGI wants them: [(lower-case name, value)] as
 * bytes, in the order they came.  Authorization only with
 * PyWSGIPassAuthorization On, as for WSGI (Apache may have used it). */
static PyObject *scope_headers(request_rec *r, int pass_auth)
{
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    PyObject *list = PyList_New(0);
    int i;

    for (i = 0; list && i < arr->nelts; i++) {
        PyObject *h;
        char *name;

        if (e[i].key == NULL || e[i].val == NULL) {
            continue;
        }
        if (!pass_auth && strcasecmp(e[i].key, "Authorization") == 0) {
            continue;
        }
        name = apr_pstrdup(r->pool, e[i].key);
        ap_str_tolower(name);
        h = Py_BuildValue("(y#y#)", name, (Py_ssize_t)strlen(name), e[i].val,
                          (Py_ssize_t)strlen(e[i].val));
        if (h == NULL || PyList_Append(list, h) < 0) {
            Py_CLEAR(list);
        }
        Py_XDECREF(h);
    }
    return list;
}

/* GIL held.  The http scope of r (new reference), or NULL with a Python
 * error set. */
static PyObject *scope_build(request_rec *r, const pw_route_t *route,
                             const pw_request_conf_t *rc)
{
    conn_rec *c = r->connection;
    PyObject *d = PyDict_New();
    const char *version, *raw = r->unparsed_uri;
    const char *path = r->uri + route->url_len;
    apr_size_t raw_len;
    apr_uri_t u;

    if (d == NULL) {
        return NULL;
    }
    /* r->parsed_uri.path shares its bytes with r->uri, which Apache has
     * percent-decoded in place: the raw path comes from the request line
     * (absolute-form "GET http://host/p" parsed once more). */
    if (raw[0] != '/' && apr_uri_parse(r->pool, raw, &u) == APR_SUCCESS) {
        raw = u.path ? u.path : "/";
    }
    raw_len = strcspn(raw, "?");
    if (r->proto_num >= HTTP_VERSION(2, 0)) {
        version = "2";
    }
    else if (r->proto_num == HTTP_VERSION(1, 0)) {
        version = "1.0";
    }
    else {
        version = "1.1";
    }
    /* path is r->uri past the mount, percent-decoded by Apache (as
     * PATH_INFO); a byte that is not UTF-8 becomes U+FFFD, as uvicorn
     * does.  raw_path is the whole path as the client sent it. */
    if (put(d, "type", str_of("http")) < 0
        || put(d, "asgi",
               Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version",
                             "2.3"))
               < 0
        || put(d, "http_version", str_of(version)) < 0
        || put(d, "method", str_of(r->method)) < 0
        || put(d, "scheme", str_of(PW_CONN_IS_TLS(c) ? "https" : "http")) < 0
        || put(d, "path",
               PyUnicode_DecodeUTF8(path, (Py_ssize_t)strlen(path), "replace"))
               < 0
        || put(d, "raw_path",
               PyBytes_FromStringAndSize(raw, (Py_ssize_t)raw_len))
               < 0
        || put(d, "query_string", PyBytes_FromString(r->args ? r->args : ""))
               < 0
        || put(d, "root_path",
               PyUnicode_DecodeUTF8(route->url, (Py_ssize_t)route->url_len,
                                    "replace"))
               < 0
        || put(d, "headers", scope_headers(r, rc->pass_authorization)) < 0
        || put(d, "client",
               Py_BuildValue("(si)", r->useragent_ip,
                             r->useragent_addr ? r->useragent_addr->port
                                               : c->client_addr->port))
               < 0
        || put(d, "server",
               Py_BuildValue("(si)", c->local_ip, c->local_addr->port))
               < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* A str from the bridge, for a log line. */
static const char *text(PyObject *s)
{
    const char *t = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;

    if (t == NULL) {
        PyErr_Clear();
        return "?";
    }
    return t;
}

/* GIL held.  Start the app's lifespan on its first request in this child.
 * Returns 0 to serve (*state: the lifespan state dict or None, new
 * reference), or -1 after logging why not. */
static int lifespan(request_rec *r, bridge_t *b, const char *target,
                    PyObject *app, PyObject **state)
{
    PyObject *res = PyObject_CallFunction(b->lifespan, "sO", target, app);
    const char *outcome, *detail;
    int first, rc = 0;

    if (res == NULL || !PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 4) {
        pw_log_exception(r, r->server,
                         "PW0802: %s: the lifespan startup of ASGI "
                         "application '%s' did not finish:",
                         r->uri, target);
        Py_XDECREF(res);
        return -1;
    }
    first = PyObject_IsTrue(PyTuple_GET_ITEM(res, 0));
    outcome = text(PyTuple_GET_ITEM(res, 1));
    detail = text(PyTuple_GET_ITEM(res, 2));
    if (strcmp(outcome, "failed") == 0) {
        if (first) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "PW0802: ASGI application '%s' answered "
                          "lifespan.startup.failed in pid %" APR_PID_T_FMT
                          ": %s",
                          target, getpid(), detail);
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0804: %s: ASGI application '%s' is not serving in "
                      "this child: its lifespan startup failed (PW0802)",
                      r->uri, target);
        rc = -1;
    }
    else {
        if (first && strcmp(outcome, "unsupported") == 0) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "PW0803: ASGI application '%s' does not take the "
                          "lifespan protocol (%s); serving it without",
                          target, detail);
        }
        *state = Py_NewRef(PyTuple_GET_ITEM(res, 3));
    }
    Py_DECREF(res);
    return rc;
}

/* One websocket's connection, for the bridge's read/write/accept/fileno
 * (called in the request's thread only).  Freed with its capsule; r is
 * NULL once the request is over, so a late call fails cleanly. */
typedef struct {
    request_rec *r;
    apr_bucket_brigade *bb;
    int accepted;
} pw_ws_t;

static pw_ws_t *ws_of(PyObject *cap)
{
    pw_ws_t *ws = PyCapsule_GetPointer(cap, "mod_pywsgi.ws");

    if (ws && ws->r == NULL) {
        PyErr_SetString(PyExc_OSError, "the websocket's request is over");
        return NULL;
    }
    return ws;
}

/* read(): what the client sent so far, without waiting: b"" when nothing
 * is there, None at the end of the connection. */
static PyObject *ws_read(PyObject *cap, PyObject *unused)
{
    pw_ws_t *ws = ws_of(cap);
    char buf[32768];
    apr_size_t len = sizeof(buf);
    apr_status_t st;
    apr_bucket *e;
    int eos = 0;

    if (ws == NULL) {
        return NULL;
    }
    /* Below the HTTP filters: after the 101 the connection is a byte
     * stream.  Non-blocking, yet without the GIL as every Apache I/O call
     * here: a filter below (mod_ssl) may still write or take its time. */
    Py_BEGIN_ALLOW_THREADS
    st = ap_get_brigade(ws->r->connection->input_filters, ws->bb,
                        AP_MODE_READBYTES, APR_NONBLOCK_READ, sizeof(buf));
    for (e = APR_BRIGADE_FIRST(ws->bb);
         st == APR_SUCCESS && e != APR_BRIGADE_SENTINEL(ws->bb);
         e = APR_BUCKET_NEXT(e)) {
        eos |= APR_BUCKET_IS_EOS(e);
    }
    if (st == APR_SUCCESS) {
        st = apr_brigade_flatten(ws->bb, buf, &len);
    }
    apr_brigade_cleanup(ws->bb);
    Py_END_ALLOW_THREADS
    if (APR_STATUS_IS_EAGAIN(st)) {
        return PyBytes_FromStringAndSize("", 0);
    }
    if (st != APR_SUCCESS || (len == 0 && eos)) {
        Py_RETURN_NONE;
    }
    return PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
}

/* GIL released while the bytes go out (data stays referenced by the
 * caller).  OSError when the client is gone. */
static PyObject *ws_send(pw_ws_t *ws, PyObject *data)
{
    conn_rec *c = ws->r->connection;
    apr_status_t st;

    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "bytes expected");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    APR_BRIGADE_INSERT_TAIL(ws->bb, apr_bucket_transient_create(
                                        PyBytes_AS_STRING(data),
                                        (apr_size_t)PyBytes_GET_SIZE(data),
                                        c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(ws->bb, apr_bucket_flush_create(c->bucket_alloc));
    st = ap_pass_brigade(c->output_filters, ws->bb);
    apr_brigade_cleanup(ws->bb);
    Py_END_ALLOW_THREADS
    if (st != APR_SUCCESS || c->aborted) {
        PyErr_SetString(PyExc_OSError, "the client went away");
        return NULL;
    }
    ws->r->bytes_sent += PyBytes_GET_SIZE(data);
    Py_RETURN_NONE;
}

static PyObject *ws_write(PyObject *cap, PyObject *data)
{
    pw_ws_t *ws = ws_of(cap);

    return ws ? ws_send(ws, data) : NULL;
}

/* accept(head): send the 101 (the bridge wrote it whole) straight to the
 * connection, and take the request out of HTTP: no keep-alive, no
 * request-timeout filter, and what Apache sends at the end of the
 * request (its EOS) skips the HTTP filters. */
static PyObject *ws_accept(PyObject *cap, PyObject *head)
{
    pw_ws_t *ws = ws_of(cap);
    request_rec *r;
    conn_rec *c;

    if (ws == NULL) {
        return NULL;
    }
    r = ws->r;
    c = r->connection;
    ws->accepted = 1;
    r->status = HTTP_SWITCHING_PROTOCOLS;
    c->keepalive = AP_CONN_CLOSE;
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    r->output_filters = r->proto_output_filters = c->output_filters;
    return ws_send(ws, head);
}

static PyObject *ws_fileno(PyObject *cap, PyObject *unused)
{
    pw_ws_t *ws = ws_of(cap);
    apr_os_sock_t fd;
    apr_socket_t *sock;

    if (ws == NULL) {
        return NULL;
    }
    sock = ap_get_conn_socket(ws->r->connection);
    if (sock == NULL || apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        PyErr_SetString(PyExc_OSError, "no socket under this connection");
        return NULL;
    }
    return PyLong_FromLong((long)fd);
}

static PyMethodDef ws_defs[4] = {
    { "read", ws_read, METH_NOARGS, NULL },
    { "write", ws_write, METH_O, NULL },
    { "accept", ws_accept, METH_O, NULL },
    { "fileno", ws_fileno, METH_NOARGS, NULL },
};

static void ws_free(PyObject *cap)
{
    PyMem_Free(PyCapsule_GetPointer(cap, "mod_pywsgi.ws"));
}

/* Whether r asks for a websocket: an HTTP/1.1 GET with Upgrade: websocket
 * and Connection: upgrade (anything else is served as http; HTTP/2 has no
 * Upgrade). */
static int ws_asked(request_rec *r)
{
    const char *up = apr_table_get(r->headers_in, "Upgrade");
    const char *conn = apr_table_get(r->headers_in, "Connection");

    return r->proto_num == HTTP_VERSION(1, 1) && r->method_number == M_GET
           && up != NULL && conn != NULL
           && ap_find_token(r->pool, up, "websocket")
           && ap_find_token(r->pool, conn, "upgrade");
}

/* RFC 6455 4.1: the key is 16 bytes in base64, i.e. 22 characters of the
 * alphabet, the last carrying 2 bits (so one of A, Q, g, w), then "==". */
static int ws_key_valid(const char *k)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789+/";
    int i;

    if (k == NULL || strlen(k) != 24 || strcmp(k + 22, "==") != 0
        || strchr("AQgw", k[21]) == NULL) {
        return 0;
    }
    for (i = 0; i < 22; i++) {
        if (strchr(b64, k[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* The key of a websocket handshake on r, or NULL when r is no websocket
 * request. */
static const char *ws_key(request_rec *r)
{
    return ws_asked(r) ? apr_table_get(r->headers_in, "Sec-WebSocket-Key")
                       : NULL;
}

/* A websocket request this server cannot accept gets the client's error
 * (RFC 6455 4.2.1, 4.2.2): 426 naming the version spoken here for another
 * version, 400 without a version or with a key that is not 16 bytes in
 * base64.  0 for a handshake to serve (or no websocket request). */
static int ws_refused(request_rec *r)
{
    const char *v;

    if (!ws_asked(r)) {
        return 0;
    }
    v = apr_table_get(r->headers_in, "Sec-WebSocket-Version");
    if (v != NULL && strcmp(v, "13") != 0) {
        apr_table_setn(r->err_headers_out, "Sec-WebSocket-Version", "13");
        apr_table_setn(r->err_headers_out, "Upgrade", "websocket");
        return HTTP_UPGRADE_REQUIRED;
    }
    if (v == NULL
        || !ws_key_valid(apr_table_get(r->headers_in, "Sec-WebSocket-Key"))) {
        return HTTP_BAD_REQUEST;
    }
    return 0;
}

/* GIL held, the bridge's ProtocolError pending: one line saying what the
 * app did wrong (no traceback: the mistake is in what it sent, not where);
 * the error is cleared. */
static void log_protocol_error(request_rec *r, const char *num,
                               const char *target, const char *what)
{
    PyObject *exc = PW_ERR_TAKE();
    PyObject *msg = PyObject_Str(exc);

    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "%s: %s: ASGI application '%s' broke the %s: %s", num,
                  r->uri, target, what, text(msg));
    PyErr_Clear();
    Py_XDECREF(msg);
    Py_XDECREF(exc);
}

/* Sec-WebSocket-Accept for key (RFC 6455 4.2.2): the SHA-1 of the key and
 * the protocol's GUID, in base64.  In C with APR: the bridge then imports
 * neither hashlib nor base64.  With them, a websocket served in an own-GIL
 * interpreter made the child abort at exit under CPython 3.12.1 (double
 * free; a bare "import hashlib" in an isolated 3.12.1 sub-interpreter
 * aborts its process at exit the same way; 3.13.0 does not). */
static const char *ws_accept_value(apr_pool_t *p, const char *key)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[APR_SHA1_DIGESTSIZE];
    char *out = apr_palloc(p, apr_base64_encode_len(APR_SHA1_DIGESTSIZE));
    apr_sha1_ctx_t sha;

    apr_sha1_init(&sha);
    apr_sha1_update(&sha, key, (unsigned int)strlen(key));
    apr_sha1_update(&sha, guid, sizeof(guid) - 1);
    apr_sha1_final(digest, &sha);
    apr_base64_encode_binary(out, digest, APR_SHA1_DIGESTSIZE);
    return out;
}

/* GIL held.  Serve the websocket of r to its end (the "simple form": this
 * thread bridges it for its whole life).  Returns what the handler
 * returns: OK once the 101 went out, else 403 (the app closed before
 * accepting) or 500. */
static int ws_run(request_rec *r, bridge_t *b, const char *target,
                  PyObject *app, PyObject *scope, PyObject *state,
                  PyObject *start, const char *key)
{
    pw_ws_t *ws = PyMem_Calloc(1, sizeof(*ws));
    PyObject *cap = NULL, *funcs = NULL, *res = NULL, *keystr = NULL;
    int status = HTTP_INTERNAL_SERVER_ERROR, i, accepted;

    if (ws == NULL) {
        return pw_response_failed(start);
    }
    ws->r = r;
    ws->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    cap = PyCapsule_New(ws, "mod_pywsgi.ws", ws_free);
    if (cap == NULL) {
        PyMem_Free(ws);
        return pw_response_failed(start);
    }
    funcs = PyTuple_New(4);
    for (i = 0; funcs && i < 4; i++) {
        PyObject *f = PyCFunction_New(&ws_defs[i], cap);
        if (f == NULL) {
            Py_CLEAR(funcs);
            break;
        }
        PyTuple_SET_ITEM(funcs, i, f);
    }
    keystr = funcs ? str_of(ws_accept_value(r->pool, key)) : NULL;
    if (keystr) {
        PyObject *args[5] = { app, scope, state, funcs, keystr };
        res = PyObject_Vectorcall(b->serve_ws, args, 5, NULL);
    }
    accepted = ws->accepted;
    ws->r = NULL;
    if (res && PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2) {
        PyObject *exc = PyTuple_GET_ITEM(res, 1);
        status = (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 0));
        if (exc != Py_None) {
            PW_ERR_RESTORE(Py_NewRef(exc));
            pw_log_exception(r, r->server,
                             "PW0800: %s: ASGI application '%s' raised on "
                             "a websocket:",
                             r->uri, target);
        }
        PyErr_Clear();
    }
    else if (res == NULL && PyErr_ExceptionMatches(b->protocol_error)) {
        log_protocol_error(r, "PW0809", target, "websocket protocol");
    }
    else {
        if (res != NULL) {
            /* Never from the bridge's own code; still one line that
             * says what came back rather than a line without a cause. */
            PyErr_Format(PyExc_TypeError, "serve_ws returned %R, not a "
                         "(status, exception) pair", res);
        }
        pw_log_exception(r, r->server,
                         "PW0806: %s: the ASGI bridge failed on the "
                         "websocket of application '%s':",
                         r->uri, target);
    }
    if (accepted) {
        status = OK;
    }
    else if (status != HTTP_FORBIDDEN) {
        status = pw_response_failed(start);
    }
    Py_XDECREF(res);
    Py_XDECREF(keystr);
    Py_XDECREF(funcs);
    Py_DECREF(cap);
    return status;
}

int pw_asgi_run(request_rec *r, pw_route_t *route, const pw_request_conf_t *rc,
                PyObject *app, PyObject *input, PyObject *start)
{
    const char *target = route->target->target;
    bridge_t *b = rc->interp == 0 || PW_HAVE_ASGI_INTERPS
                      ? bridge_get(rc->interp)
                      : NULL;
    PyObject *state = NULL, *scope = NULL, *res = NULL;
    const char *key = ws_key(r);
    int status = ws_refused(r);

    if (status != 0) {
        return status;
    }
    if (rc->interp != 0 && !PW_HAVE_ASGI_INTERPS) {
        /* PyWSGIInterpreter NAME over an ASGI mount (interpreter= on the
         * mount itself fails configtest), before 3.12. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0808: %s: ASGI application '%s' runs in the main "
                      "interpreter only (asyncio cannot run a loop in each "
                      "of two interpreters): set PyWSGIInterpreter main "
                      "for this URL",
                      r->uri, target);
        return pw_response_failed(start);
    }
    if (b == NULL) {
        pw_log_exception(r, r->server,
                         "PW0806: %s: the ASGI bridge (asyncio loop) could "
                         "not be set up for application '%s':",
                         r->uri, target);
        return pw_response_failed(start);
    }
    if (lifespan(r, b, target, app, &state) < 0) {
        return pw_response_failed(start);
    }
    scope = scope_build(r, route, rc);
    if (scope == NULL) {
        pw_log_exception(r, r->server,
                         "PW0807: %s: could not build the ASGI scope for "
                         "application '%s':",
                         r->uri, target);
        status = pw_response_failed(start);
        goto done;
    }
    if (key) {
        status = ws_run(r, b, target, app, scope, state, start, key);
        goto done;
    }
    {
        PyObject *args[6] = { app, scope, state, input, start, b->finish };
        res = PyObject_Vectorcall(b->serve, args, 6, NULL);
    }
    if (res && PyExceptionInstance_Check(res)) {
        /* What the app raised, with the traceback from its own frames. */
        PW_ERR_RESTORE(res);
        res = NULL;
    }
    if (res == NULL) {
        if (PyErr_ExceptionMatches(b->protocol_error)) {
            log_protocol_error(r, "PW0801", target, "protocol");
        }
        else {
            pw_log_exception(r, r->server,
                             "PW0800: %s: ASGI application '%s' raised", r->uri,
                             target);
        }
        status = pw_response_failed(start);
    }
    else {
        status = (int)PyLong_AsLong(res);
        if (status == -1) {
            /* The request body broke: the handler answers with the
             * client's error (pw_input_finish). */
            PyErr_Clear();
            status = pw_response_failed(start);
        }
    }

done:
    Py_XDECREF(res);
    Py_XDECREF(scope);
    Py_XDECREF(state);
    return status;
}

int pw_asgi_websocket(request_rec *r)
{
    return ws_key(r) != NULL;
}

int pw_asgi_active(int interp)
{
    return active[interp];
}

void pw_asgi_fini(int interp, server_rec *s)
{
    bridge_t *b = &bridges[interp];
    PyObject *res;
    Py_ssize_t i;

    if (!active[interp]) {
        return;
    }
    active[interp] = 0;
    res = PyObject_CallNoArgs(b->shutdown);
    if (res == NULL) {
        pw_log_exception(NULL, s,
                         "PW0805: the ASGI loop of pid %" APR_PID_T_FMT
                         " did not end cleanly:",
                         getpid());
    }
    for (i = 0; res && PyList_Check(res) && i < PyList_GET_SIZE(res); i++) {
        PyObject *t = PyList_GET_ITEM(res, i);
        if (PyTuple_Check(t) && PyTuple_GET_SIZE(t) == 3
            && strcmp(text(PyTuple_GET_ITEM(t, 1)), "ok") != 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "PW0805: ASGI application '%s': lifespan shutdown "
                         "in pid %" APR_PID_T_FMT " failed: %s",
                         text(PyTuple_GET_ITEM(t, 0)), getpid(),
                         text(PyTuple_GET_ITEM(t, 2)));
        }
    }
    Py_XDECREF(res);
    Py_CLEAR(b->serve);
    Py_CLEAR(b->lifespan);
    Py_CLEAR(b->shutdown);
    Py_CLEAR(b->protocol_error);
    Py_CLEAR(b->finish);
    Py_CLEAR(b->serve_ws);
}
