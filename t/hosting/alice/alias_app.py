"""A PyWSGIScriptAlias app in alice's host with interpreter=%{SERVER}
(t/conf/hosting.conf.in): it must share her handler-served files'
interpreter (t/hosting.t)."""
import json
import os

try:        # CPython 3.11's private module; 0 is the main interpreter
    import _xxsubinterpreters as _subinterp
    INTERP = int(_subinterp.get_current())
except ImportError:
    INTERP = None


def application(environ, start_response):
    body = json.dumps(dict(pid=os.getpid(), interp=INTERP)).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
