"""One app mounted in several places (both virtual hosts, a URL prefix of the
main server, a named interpreter) by t/conf/deploy.conf.in.

LOADED is drawn when the module is imported: every mount in the same child
and interpreter must report the same one (the app is loaded once), a named
interpreter its own.
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
        "app": "common",
        "pid": os.getpid(),
        "loaded": LOADED,
        "interp": interp_id(),
        "server_name": environ["SERVER_NAME"],
        "script_name": environ["SCRIPT_NAME"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
