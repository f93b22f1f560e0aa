"""Stands in for a C extension that cannot be loaded in a sub-interpreter
(numpy, psycopg2, pydantic-core, ...): importing it anywhere but the main
interpreter fails the way such extensions do.  t/deploy.t mounts it in main
(200) and in a named interpreter (500, with log lines that say why and
suggest PyWSGIInterpreter main).
"""

from pwtest.deployinfo import interp_id   # 0 is the main interpreter

if interp_id() != 0:
    raise ImportError("module needs_main does not support loading in "
                      "subinterpreters")


def application(environ, start_response):
    body = b"main interpreter only\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
