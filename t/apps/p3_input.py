"""wsgi.input, operation by operation, for t/pep3333.t.

The query string is a comma-separated list of operations done in order on
wsgi.input; the answer (JSON) gives what each returned, bytes shown as
latin-1 text:

    read:5  read  read:None  read:-1  read:0  readline  readline:3
    readlines  readlines:10  iter  next

e.g. /p3/input?ops=readline,read:4,iter.  "iter" collects `for line in
wsgi.input`; "next" is one next(), "" at the end.  Also reported:
CONTENT_LENGTH and wsgi.input_terminated.  With trace=1 the operations run
under tracemalloc and the answer gives its peak ("peak", bytes) and each
result as its length only (for bodies of megabytes).
"""

import json
import tracemalloc
from urllib.parse import parse_qs


def show(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, list):
        return [show(v) for v in value]
    return repr(value)


def lengths(value):
    if isinstance(value, list):
        return [len(v) for v in value]
    return len(value)


def run(stream, op):
    name, _, arg = op.partition(":")
    args = ()
    if arg == "None":
        args = (None,)
    elif arg:
        args = (int(arg),)
    if name in ("read", "readline", "readlines"):
        return getattr(stream, name)(*args)
    if name == "iter":
        return [line for line in stream]
    if name == "next":
        return next(iter(stream), b"")
    raise ValueError(f"unknown operation {op!r}")


def application(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    ops = [op for op in q.get("ops", [""])[-1].split(",") if op]
    stream = environ["wsgi.input"]
    trace = q.get("trace", ["0"])[-1] == "1"
    peak = None
    if trace:
        tracemalloc.start()
        try:
            results = [[op, lengths(run(stream, op))] for op in ops]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    else:
        results = [[op, show(run(stream, op))] for op in ops]
    body = json.dumps({
        "peak": peak,
        "results": results,
        "content_length": environ.get("CONTENT_LENGTH"),
        "input_terminated": environ.get("wsgi.input_terminated"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
