"""Response framing and start_response cases for t/http.t and t/pep3333.t.

One app, mounted at /p3/resp: the first PATH_INFO segment names the case
(/p3/resp/cl_short), the query string may carry an `id` (so a test can find
the log lines of its own request) and case options.  Each case is an
ordinary WSGI callable below; run one by hand with wsgiref:

    python3 -c 'import wsgiref.simple_server as s, p3_response as a;
                s.make_server("127.0.0.1", 8000, a.application).serve_forever()'

Lines the tests look for in the error log start with PWTEST- and carry the
id, e.g. `PWTEST-close id=abc case=close_normal produced=3`.
"""

import hashlib
import io
import json
import os
import sys
import time
from urllib.parse import parse_qs

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                          keep_blank_values=True).items()}


def log(environ, text):
    """One line in the error log through wsgi.errors, tagged with the id."""
    q = query(environ)
    environ["wsgi.errors"].write(f"PWTEST-{text} id={q.get('id', '-')}\n")
    environ["wsgi.errors"].flush()


def text_headers(body=None):
    h = [("Content-Type", "text/plain")]
    if body is not None:
        h.append(("Content-Length", str(len(body))))
    return h


# --- framing: Content-Length, chunked, close-delimited ----------------------

@case
def fixed(environ, start_response):
    """A declared Content-Length that matches the body."""
    body = b"fixed body\n"
    start_response("200 OK", text_headers(body))
    return [body]


@case
def listed(environ, start_response):
    """A list, no Content-Length: the server may compute it."""
    start_response("200 OK", text_headers())
    return [b"one\n", b"two\n", b"three\n"]


@case
def gen(environ, start_response):
    """A generator, no Content-Length: chunked on 1.1, close on 1.0."""
    start_response("200 OK", text_headers())
    for word in (b"alpha\n", b"beta\n", b"gamma\n"):
        yield word


@case
def cl_short(environ, start_response):
    """Declares 100 bytes, sends 10: the client must see a truncated
    response (connection closed), the log PW0307."""
    start_response("200 OK", text_headers() + [("Content-Length", "100")])
    return [b"0123456789"]


@case
def cl_short_gen(environ, start_response):
    start_response("200 OK", text_headers() + [("Content-Length", "100")])
    yield b"01234"
    yield b"56789"


@case
def cl_long(environ, start_response):
    """Declares 5 bytes, sends 10: cut at 5, logged (PW0308)."""
    start_response("200 OK", text_headers() + [("Content-Length", "5")])
    return [b"0123456789"]


@case
def cl_long_gen(environ, start_response):
    start_response("200 OK", text_headers() + [("Content-Length", "5")])
    yield b"012"
    yield b"3456789"


@case
def no_content(environ, start_response):
    start_response("204 No Content", [])
    return []


@case
def no_content_body(environ, start_response):
    """A wrong app: a body with 204.  It must not reach the wire."""
    start_response("204 No Content", [])
    return [b"this body must not be sent"]


@case
def not_modified(environ, start_response):
    start_response("304 Not Modified", [("ETag", '"pwtest"')])
    return []


@case
def not_modified_body(environ, start_response):
    start_response("304 Not Modified", [("ETag", '"pwtest"')])
    return [b"this body must not be sent"]


@case
def latin1_header(environ, start_response):
    """A header value with a latin-1 character goes out as that byte."""
    body = b"latin-1 header\n"
    start_response("200 OK", text_headers(body) + [("X-Latin", "caf\xe9")])
    return [body]


@case
def reason(environ, start_response):
    """The app's own reason phrase."""
    body = b"teapot\n"
    start_response("418 Short And Stout", text_headers(body))
    return [body]


@case
def big_list(environ, start_response):
    """1 MiB in one item."""
    start_response("200 OK", text_headers())
    return [bytes(range(256)) * 4096]


# --- streaming ---------------------------------------------------------------

@case
def stream(environ, start_response):
    """Three chunks, `sleep` seconds apart; each says when it was made."""
    pause = float(query(environ).get("sleep", "0.5"))
    start_response("200 OK", text_headers())
    for i in range(3):
        if i:
            time.sleep(pause)
        yield f"chunk {i} made {time.time():.6f}\n".encode()


@case
def fail_after_chunk(environ, start_response):
    """Raises after the first chunk reached the client."""
    start_response("200 OK", text_headers())
    yield b"first chunk\n"
    time.sleep(0.2)
    raise RuntimeError("PWTEST failure after the first chunk")


@case
def fail_after_chunk_cl(environ, start_response):
    start_response("200 OK", text_headers() + [("Content-Length", "100")])
    yield b"first chunk\n"
    raise RuntimeError("PWTEST failure after the first chunk")


# --- close() -----------------------------------------------------------------

class Counted:
    """An iterable whose close() writes one line to the log: the tests count
    them (PEP 3333: close() is called once, whatever happened)."""

    def __init__(self, environ, name, items, fail_at=None, pause=0.0):
        self.environ = environ
        self.name = name
        self.items = items
        self.fail_at = fail_at
        self.pause = pause
        self.produced = 0

    def __iter__(self):
        for i, item in enumerate(self.items):
            if i == self.fail_at:
                raise RuntimeError(f"PWTEST {self.name} fails at item {i}")
            if i and self.pause:
                time.sleep(self.pause)
            self.produced += 1
            yield item

    def close(self):
        log(self.environ, f"close case={self.name} "
                          f"produced={self.produced}")


@case
def close_normal(environ, start_response):
    start_response("200 OK", text_headers())
    return Counted(environ, "close_normal", [b"a\n", b"b\n", b"c\n"])


@case
def close_exception(environ, start_response):
    """Fails after two items went out."""
    start_response("200 OK", text_headers())
    return Counted(environ, "close_exception", [b"a\n", b"b\n", b"c\n"],
                   fail_at=2)


@case
def close_exception_first(environ, start_response):
    """Fails before any body: a 500, and still close()."""
    start_response("200 OK", text_headers())
    return Counted(environ, "close_exception_first", [b"a\n"], fail_at=0)


@case
def close_str_item(environ, start_response):
    """A str item: a 500 (PW0305), and still close()."""
    start_response("200 OK", text_headers())
    return Counted(environ, "close_str_item", [b"a\n", "str\n"])


@case
def close_disconnect(environ, start_response):
    """400 chunks of 64 KiB, 5 ms apart: the client leaves after the first."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Counted(environ, "close_disconnect", [b"x" * 65536] * 400,
                   pause=0.005)


@case
def close_head(environ, start_response):
    """HEAD: the body is not sent, close() is still called."""
    start_response("200 OK", text_headers())
    return Counted(environ, "close_head", [b"a\n", b"b\n"])


# --- request body: 100-continue, LimitRequestBody ----------------------------

def read_all(stream):
    chunks = []
    while True:
        data = stream.read(8192)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


@case
def echo(environ, start_response):
    """Logs that it ran, reads the whole body (Content-Length or chunked),
    answers its length and md5 as JSON."""
    log(environ, "echo-called")
    body = read_all(environ["wsgi.input"])
    answer = json.dumps({"length": len(body),
                         "md5": hashlib.md5(body).hexdigest(),
                         "content_length": environ.get("CONTENT_LENGTH")})
    data = answer.encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


@case
def noread(environ, start_response):
    """Never touches wsgi.input."""
    log(environ, "noread-called")
    body = b"did not read the body\n"
    start_response("200 OK", text_headers(body))
    return [body]


# --- start_response: exc_info, write() --------------------------------------

@case
def excinfo_replace(environ, start_response):
    """Headers not sent yet: a second start_response with exc_info replaces
    status and headers (PEP 3333)."""
    start_response("200 OK", text_headers() + [("X-First", "1")])
    try:
        raise ValueError("PWTEST replaced before the body")
    except ValueError:
        start_response("500 Replaced", [("Content-Type", "text/plain"),
                                        ("X-Second", "1")], sys.exc_info())
    return [b"replaced\n"]


@case
def excinfo_first(environ, start_response):
    """exc_info on the first call is allowed."""
    try:
        raise KeyError("PWTEST")
    except KeyError:
        start_response("503 Busy", text_headers(), sys.exc_info())
    return [b"busy\n"]


@case
def excinfo_after_write(environ, start_response):
    """Headers sent (write()): start_response(exc_info) re-raises the
    original exception, which the app lets through."""
    write = start_response("200 OK", text_headers())
    write(b"partial body\n")
    try:
        raise ValueError("PWTEST original after write")
    except ValueError:
        start_response("500 Too Late", text_headers(), sys.exc_info())
    return [b"never sent\n"]


@case
def excinfo_after_yield(environ, start_response):
    start_response("200 OK", text_headers())
    yield b"partial body\n"
    try:
        raise ValueError("PWTEST original after yield")
    except ValueError:
        start_response("500 Too Late", text_headers(), sys.exc_info())
    yield b"never sent\n"


@case
def excinfo_reraise_identity(environ, start_response):
    """Catches what the late start_response raises: it must be the very
    exception passed in; the app then finishes normally."""
    write = start_response("200 OK", text_headers())
    write(b"partial body\n")
    original = ValueError("PWTEST identity")
    try:
        raise original
    except ValueError:
        try:
            start_response("500 Too Late", text_headers(), sys.exc_info())
            outcome = "did not raise"
        except BaseException as e:  # noqa: B902 - reporting what came back
            outcome = f"raised {type(e).__name__} same={e is original}"
    return [f"{outcome}\n".encode()]


@case
def writer(environ, start_response):
    write = start_response("200 OK", text_headers())
    write(b"one ")
    write(b"two ")
    return [b"three\n"]


@case
def writer_only(environ, start_response):
    write = start_response("200 OK", text_headers() + [("Content-Length",
                                                        "8")])
    write(b"only ")
    write(b"w\n")
    write(b"!")
    return []


# --- wsgi.file_wrapper -------------------------------------------------------

DATA_FILE = os.path.join(HERE, "p3_response.py")


class LoggedFile(io.FileIO):
    """A real file (fileno works: a FILE bucket) whose close() is logged."""

    def __init__(self, environ, path):
        super().__init__(path, "rb")
        self.environ = environ

    def close(self):
        if not self.closed:
            log(self.environ, "file-close")
        super().close()


@case
def file_plain(environ, start_response):
    start_response("200 OK", text_headers())
    return environ["wsgi.file_wrapper"](LoggedFile(environ, DATA_FILE), 4096)


@case
def file_offset(environ, start_response):
    """From where the file was left: tell() is 100."""
    f = LoggedFile(environ, DATA_FILE)
    f.seek(100)
    start_response("200 OK", text_headers())
    return environ["wsgi.file_wrapper"](f, 4096)


@case
def file_cl_small(environ, start_response):
    """Content-Length 100 for a bigger file: cut at 100."""
    start_response("200 OK", text_headers() + [("Content-Length", "100")])
    return environ["wsgi.file_wrapper"](LoggedFile(environ, DATA_FILE), 4096)


@case
def file_cl_big(environ, start_response):
    """Content-Length beyond the file: truncated, connection closed."""
    size = os.path.getsize(DATA_FILE)
    start_response("200 OK", text_headers() + [("Content-Length",
                                                 str(size + 1000))])
    return environ["wsgi.file_wrapper"](LoggedFile(environ, DATA_FILE), 4096)


@case
def file_bytesio(environ, start_response):
    """Not a real file: iterated in blksize pieces."""
    data = b"".join(b"line %05d\n" % i for i in range(5000))
    start_response("200 OK", text_headers())
    return environ["wsgi.file_wrapper"](io.BytesIO(data), 1000)


# --- issue 12: hardening ------------------------------------------------------

@case
def cl_stop_gen(environ, start_response):
    """The first item completes the declared Content-Length: PEP 3333 wants
    the server to stop iterating there (close() tells how far it went)."""
    start_response("200 OK", text_headers() + [("Content-Length", "10")])
    return Counted(environ, "cl_stop_gen",
                   [b"0123456789", b"more", b"more", b"more"])


@case
def not_modified_cl(environ, start_response):
    """A 304 may carry the representation's length (RFC 9110 8.6)."""
    start_response("304 Not Modified", [("ETag", '"pwtest"'),
                                        ("Content-Length", "1234")])
    return []


@case
def no_content_cl(environ, start_response):
    start_response("204 No Content", [("Content-Length", "5")])
    return []


@case
def cl_twice(environ, start_response):
    """The same Content-Length twice on a streamed response: sent once."""
    start_response("200 OK", text_headers() + [("Content-Length", "5"),
                                               ("Content-Length", "5")])
    yield b"012"
    yield b"34"


@case
def early_303(environ, start_response):
    """start_response before reading the body: with Expect: 100-continue
    the body must still be readable."""
    start_response("303 See Other", [("Location", "/elsewhere"),
                                     ("Content-Type", "application/json")])
    body = read_all(environ["wsgi.input"])
    return [json.dumps({"length": len(body)}).encode()]


@case
def list_mutated(environ, start_response):
    """A list of 1 MiB items that another thread empties while the server
    sends it (GIL released): the server must hold its own references."""
    import threading
    items = [bytes([65 + i]) * 1048576 for i in range(24)]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def clear():
        time.sleep(0.3)
        items.clear()
    threading.Thread(target=clear, daemon=True).start()
    return items


@case
def write_two_threads(environ, start_response):
    """write() from two threads of one request at once: one of them must get
    an error, not a corrupt response."""
    import threading
    write = start_response("200 OK", [("Content-Type",
                                       "application/octet-stream")])
    errors = []

    def writer(byte):
        try:
            for _ in range(8):
                write(byte * 1048576)
        except RuntimeError as e:
            errors.append(f"{type(e).__name__}: {e}")
        except OSError as e:
            errors.append(f"{type(e).__name__}: {e}")
    t = threading.Thread(target=writer, args=(b"b",))
    t.start()
    writer(b"a")
    t.join()
    log(environ, "two-writers " + " | ".join(errors or ["no error"]))
    return []


BIG_DIR = os.path.join(HERE, "..", "logs")


@case
def file_big(environ, start_response):
    """A large file through wsgi.file_wrapper; the test writes it to t/logs
    (name= in the query string, a plain file name)."""
    name = os.path.basename(query(environ).get("name", "pw-big.bin"))
    f = open(os.path.join(BIG_DIR, name), "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, 65536)


# --- issue 11 item 1: chunked request bodies --------------------------------

@case
def dechunk_self(environ, start_response):
    """An app that de-chunks wsgi.input itself when the environ says the body
    is chunked (some real apps do): that must not happen to a body the server
    has de-chunked already."""
    stream = environ["wsgi.input"]
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        parts = []
        while True:
            size = int(stream.readline().split(b";")[0].strip(), 16)
            if size == 0:
                break
            parts.append(stream.read(size))
            stream.read(2)
        body = b"".join(parts)
    else:
        body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    data = json.dumps({"length": len(body),
                       "md5": hashlib.md5(body).hexdigest()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


@case
def cl_reader(environ, start_response):
    """Reads exactly CONTENT_LENGTH bytes, ignoring wsgi.input_terminated."""
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n)
    data = json.dumps({"length": len(body),
                       "md5": hashlib.md5(body).hexdigest()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


def proc_status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


@case
def spool_probe(environ, start_response):
    """What a chunked body looks like to the app, and what it costs the
    child: environ keys, the temporary file (if any: it must be unlinked),
    memory, the body's length and md5 read in 64 KiB pieces."""
    tmpdir = query(environ).get("dir", "/tmp")
    before = proc_status()
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if os.path.basename(target).startswith("pywsgi-body"):
            held.append(target)
    in_dir = [n for n in os.listdir(tmpdir) if n.startswith("pywsgi-body")]
    digest = hashlib.md5()
    length = 0
    stream = environ["wsgi.input"]
    while True:
        data = stream.read(65536)
        if not data:
            break
        length += len(data)
        digest.update(data)
    after = proc_status()
    answer = json.dumps({
        "pid": os.getpid(), "before": before, "after": after,
        "length": length, "md5": digest.hexdigest(),
        "content_length": environ.get("CONTENT_LENGTH"),
        "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        "input_terminated": environ.get("wsgi.input_terminated"),
        "held": held, "in_dir": in_dir}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(answer)))])
    return [answer]


def application(environ, start_response):
    name = environ.get("PATH_INFO", "").strip("/").split("/")[0]
    fn = CASES.get(name)
    if fn is None:
        body = f"no case {name!r}\n".encode()
        start_response("404 Not Found", text_headers(body))
        return [body]
    return fn(environ, start_response)
