"""Apps for t/hostile.t and t/isolation.t.

`application` is a naive app of the common kind: it reads the whole body as
the request declares it (Content-Length, else to EOF) without guarding
against errors, and answers with what it got. Before and after reading it
appends a line to the file named by the PWTEST_CALLS environ variable
(SetEnv), so that a test can tell whether a hostile request reached the app
at all, and whether it got a body:

    called <QUERY_STRING>
    body <QUERY_STRING> <length>

`whoami` reports the user the app runs as; `secret_error` fails with an
exception whose message holds a path and an environment value (neither may
reach the client); `mark` and `look` probe interpreter isolation.
"""

import json
import os
import sys


def _record(environ, line):
    path = environ.get("PWTEST_CALLS")
    if not path:
        return
    with open(path, "a") as f:
        f.write(line + "\n")


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    query = environ.get("QUERY_STRING", "")
    _record(environ, "called " + query)
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else stream.read()
    _record(environ, "body %s %d" % (query, len(body)))
    keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
            "CONTENT_LENGTH", "CONTENT_TYPE", "REMOTE_ADDR", "HTTPS",
            "wsgi.url_scheme")
    return _json(start_response, {
        "body_len": len(body),
        "body": body.decode("latin-1"),
        "environ": {k: environ[k] for k in keys if k in environ},
        "http": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    })


def whoami(environ, start_response):
    return _json(start_response, {
        "uid": os.getuid(), "euid": os.geteuid(),
        "gid": os.getgid(), "egid": os.getegid(),
        "groups": os.getgroups(), "pid": os.getpid(),
    })


def secret_error(environ, start_response):
    raise RuntimeError("PWTEST secret %s in %s (home %s)" % (
        environ.get("PWTEST_SECRET"), __file__, sys.prefix))


# --- interpreter isolation (mounted with interpreter=NAME) -----------------

def mark(environ, start_response):
    """Leaves a module behind in this interpreter's sys.modules."""
    import types
    mod = types.ModuleType("pwtest_isolation_marker")
    mod.owner = environ.get("QUERY_STRING", "")
    sys.modules["pwtest_isolation_marker"] = mod
    return look(environ, start_response)


def look(environ, start_response):
    """Which markers and app modules this interpreter can see."""
    marker = sys.modules.get("pwtest_isolation_marker")
    return _json(start_response, {
        "pid": os.getpid(),
        "marker": getattr(marker, "owner", None),
        "modules_id": id(sys.modules),
        "hostile_modules": sorted(n for n, m in sys.modules.items()
                                  if getattr(m, "__file__", None) == __file__),
    })
