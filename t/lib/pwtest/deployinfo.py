"""What the t/apps/deploy apps answer (t/deploy.t): JSON that names the app,
its process and the interpreter that ran it, plus whatever the app adds.

It lives here, on the test server's PyWSGIPythonPath, so that those apps keep
only what tells them apart (their name, their own clash_mod, their token).
"""

import json
import os

try:        # CPython's private module (3.8-3.12); 0 is the main interpreter
    import _xxsubinterpreters as _subinterp

    def interp_id():
        return int(_subinterp.get_current())
except ImportError:
    try:    # 3.13 renamed it; its get_current() gives (id, whence)
        import _interpreters as _subinterp

        def interp_id():
            current = _subinterp.get_current()
            if isinstance(current, tuple):
                current = current[0]
            return int(current)
    except ImportError:
        def interp_id():
            return None


def respond(start_response, app, **fields):
    body = json.dumps(dict(app=app, pid=os.getpid(), interp=interp_id(),
                           **fields)).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
