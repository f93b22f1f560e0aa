"""What an app writes for the operator, for the logging table of
t/pep3333.t.  Mounted at /p3/log (and /p3/log-debug, where LogLevel is
pywsgi:debug): the first PATH_INFO segment names the case; each writes one
marker `PWTEST-log-<case>-<id>` (id from the query string) its own way.
Python's logging is not configured: mod_pywsgi's handler is
logging.lastResort, which keeps the record's level.
"""

import logging
import sys
from urllib.parse import parse_qs

logger = logging.getLogger("pwtest.p3")
verbose = logging.getLogger("pwtest.p3.verbose")
verbose.setLevel(logging.DEBUG)


def marker(environ, name):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    return f"PWTEST-log-{name}-{q.get('id', ['-'])[-1]}"


CASES = {
    "warning": lambda m, env: logger.warning("%s", m),
    "error": lambda m, env: logger.error("%s", m),
    # Below the logger's effective level (WARNING): never emitted.
    "info_default_level": lambda m, env: logger.info("%s", m),
    "info": lambda m, env: verbose.info("%s", m),
    "debug": lambda m, env: verbose.debug("%s", m),
    "exception": lambda m, env: log_exception(m),
    "multiline": lambda m, env: logger.warning("%s first\n%s second", m, m),
    "print": lambda m, env: print(m, flush=True),
    "stdout": lambda m, env: (sys.stdout.write(m + "\n"),
                              sys.stdout.flush()),
    "stderr": lambda m, env: (sys.stderr.write(m + "\n"), sys.stderr.flush()),
    "wsgi_errors": lambda m, env: (env["wsgi.errors"].write(m + "\n"),
                                   env["wsgi.errors"].flush()),
    "wsgi_errors_writelines": lambda m, env: (
        env["wsgi.errors"].writelines([m + " one\n", m + " two\n"]),
        env["wsgi.errors"].flush()),
}


def log_exception(m):
    try:
        raise KeyError("PWTEST logged exception")
    except KeyError:
        logger.exception("%s", m)


def application(environ, start_response):
    name = environ.get("PATH_INFO", "").strip("/")
    action = CASES.get(name)
    if action is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [f"no case {name!r}\n".encode()]
    action(marker(environ, name), environ)
    body = f"logged {name}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
