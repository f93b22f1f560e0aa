"""Fails while being imported: the request must be a 500 and the log must
say `failed to load` with the traceback."""

raise RuntimeError("PWTEST import failure")


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
