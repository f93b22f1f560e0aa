"""The smallest WSGI application: a 13-byte "Hello, world!".

Serve it with:  bin/pywsgi-run examples/hello.py
or in httpd:    PyWSGIScriptAlias / /path/to/examples/hello.py
"""

BODY = b"Hello, world!"
HEADERS = [
    ("Content-Type", "text/plain"),
    ("Content-Length", str(len(BODY))),
]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
