"""Imports a module that exists only in t/venv's site-packages.

t/run-mpms writes venvonly_mod.py there; without PyWSGIVirtualEnv taking
effect the import fails and the request is a 500.
"""

import sys

import venvonly_mod


def application(environ, start_response):
    body = f"{venvonly_mod.MARKER} prefix={sys.prefix}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
