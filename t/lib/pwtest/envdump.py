"""A WSGI app that answers with what it was given, as JSON.

The tests mount it several ways: as `pwtest.envdump:application` (module
target), `pwtest.envdump` (module, default callable), `pwtest.envdump:
create_app()` (factory), and through t/apps/env.py (script file), which
imports make_app() from here. Each instance reports its own name as "app" so
a test can tell which mount answered.

The answer holds:
  app        the name given to make_app()
  environ    every environ entry except the stream/callable objects, made JSON
             friendly (tuples become lists; anything else not JSON becomes repr)
  types      type name of every environ value (PEP 3333 wants native str for
             the CGI keys, a tuple for wsgi.version, bools for the flags)
  body       the request body read from wsgi.input, decoded latin-1 so any
             bytes survive the round trip
  sys_prefix, sys_path, pid, thread

Run it by hand:  python3 -c 'import wsgiref.simple_server as s, pwtest.envdump as e;
                 s.make_server("127.0.0.1", 8000, e.application).serve_forever()'
"""

import json
import os
import sys
import threading

# Objects, not data: reported only as present or not (see "types").
_OBJECTS = ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper")


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _read_body(environ):
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    if length:
        return stream.read(int(length))
    if environ.get("wsgi.input_terminated"):
        # PEP 3333 input_terminated extension: reading to EOF is safe,
        # which is how a chunked request body is consumed.
        return stream.read()
    return b""


def make_app(name):
    def application(environ, start_response):
        body = _read_body(environ)
        answer = {
            "app": name,
            "environ": {k: _jsonable(v) for k, v in environ.items()
                        if k not in _OBJECTS},
            "types": {k: type(v).__name__ for k, v in environ.items()},
            "body": body.decode("latin-1"),
            "sys_prefix": sys.prefix,
            "sys_path": sys.path,
            "pid": os.getpid(),
            "thread": threading.get_ident(),
        }
        payload = json.dumps(answer, sort_keys=True).encode("ascii")
        start_response("200 OK", [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
        ])
        return [payload]

    return application


application = make_app("module")


def create_app():
    """Factory for the `pwtest.envdump:create_app()` target form."""
    return make_app("factory")
