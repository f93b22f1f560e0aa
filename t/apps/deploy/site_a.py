"""Virtual host a.deploy.test's app (t/deploy.t, t/conf/deploy.conf.in).

Answers JSON naming itself, the virtual host and the interpreter that ran it,
and a token drawn when this module was imported (a second import in the same
interpreter would draw a new one).
"""

import json
import os
import uuid

LOADED = uuid.uuid4().hex

try:        # CPython 3.11's private module; 0 is the main interpreter
    import _xxsubinterpreters as _subinterp

    def interp_id():
        return int(_subinterp.get_current())
except ImportError:
    def interp_id():
        return None


def application(environ, start_response):
    body = json.dumps({
        "app": "site-a",
        "pid": os.getpid(),
        "loaded": LOADED,
        "interp": interp_id(),
        "server_name": environ["SERVER_NAME"],
        "server_port": environ["SERVER_PORT"],
        "http_host": environ.get("HTTP_HOST"),
        "script_name": environ["SCRIPT_NAME"],
        "path_info": environ.get("PATH_INFO", ""),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
