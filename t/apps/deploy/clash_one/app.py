"""An app of its own that imports a module named clash_mod from its own
directory -- so does t/apps/deploy/clash_two/app.py, with another clash_mod.

The script's directory is put in front of sys.path when it is loaded, so:
in two named interpreters each app finds its own clash_mod; in one
interpreter (main) the second app finds the first one's already in
sys.modules -- the first import wins.  t/deploy.t checks both.
"""

import json
import os

import clash_mod

APP = os.path.basename(os.path.dirname(os.path.abspath(__file__)))

try:        # CPython 3.11's private module; 0 is the main interpreter
    import _xxsubinterpreters as _subinterp

    def interp_id():
        return int(_subinterp.get_current())
except ImportError:
    def interp_id():
        return None


def application(environ, start_response):
    body = json.dumps({
        "app": APP,
        "pid": os.getpid(),
        "interp": interp_id(),
        "clash_mod": clash_mod.WHO,
        "clash_mod_loaded": clash_mod.LOADED,
        "clash_mod_file": clash_mod.__file__,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
