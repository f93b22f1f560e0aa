"""Misbehaving apps for the bad-behaviour table of t/pep3333.t.

Mounted once at /p3/bad: the first PATH_INFO segment names the case.  Each
case breaks one PEP 3333 rule (or, for the rows marked "valid", stays just
inside one); t/pep3333.t holds, per case, the status the client must get and
the error-log line mod_pywsgi must write.
"""

CT = ("Content-Type", "text/plain")
BODY = [b"body of a bad app\n"]


def status(value):
    def app(environ, start_response):
        start_response(value, [CT])
        return BODY
    return app


def headers(value):
    def app(environ, start_response):
        start_response("200 OK", value)
        return BODY
    return app


def header(name, value):
    return headers([CT, (name, value)])


def returns(value):
    def app(environ, start_response):
        start_response("200 OK", [CT])
        return value
    return app


def yields(*items):
    def app(environ, start_response):
        start_response("200 OK", [CT])
        yield from items
    return app


class RaisingClose:
    def __iter__(self):
        return iter([b"complete body\n"])

    def close(self):
        raise RuntimeError("PWTEST close failed")


def close_raises(environ, start_response):
    start_response("200 OK", [CT, ("Content-Length", "14")])
    return RaisingClose()


class RaisingIter:
    def __iter__(self):
        raise RuntimeError("PWTEST __iter__ failed")


def iter_raises(environ, start_response):
    start_response("200 OK", [CT])
    return RaisingIter()


def twice(environ, start_response):
    start_response("200 OK", [CT])
    start_response("404 Not Found", [CT])
    return BODY


def bad_exc_info(environ, start_response):
    start_response("200 OK", [CT], "not a tuple")
    return BODY


def write_str(environ, start_response):
    write = start_response("200 OK", [CT])
    write("a str\n")
    return []


def raises_after_start(environ, start_response):
    """Headers set (X-Leak) but no body yet: a plain 500 without X-Leak."""
    start_response("200 OK", [CT, ("X-Leak", "1")])
    raise LookupError("PWTEST raised after start_response")


def no_start_response_gen(environ, start_response):
    yield b"body before start_response\n"


CASES = {
    # status line
    "status_no_reason": status("200"),
    "status_two_digits": status("20 OK"),
    "status_no_space": status("200OK"),
    "status_four_digits": status("2000 OK"),
    "status_leading_space": status(" 200 OK"),
    "status_below_100": status("099 Low"),
    "status_crlf": status("200 OK\r\nX-Injected: 1"),
    "status_non_latin1": status("200 \u2603"),
    "status_bytes": status(b"200 OK"),
    "status_int": status(200),
    # 1xx are interim responses, never the final one (RFC 9110 15.2)
    "status_100": status("100 Continue"),
    "status_102": status("102 Processing"),
    "status_199": status("199 Whatever"),
    # header names and values
    "name_space": header("X Bad", "1"),
    "name_colon": header("X-Bad:", "1"),
    "name_empty": header("", "1"),
    "name_non_latin1": header("X-\u2603", "1"),
    "value_cr": header("X-Bad", "a\rb"),
    "value_lf": header("X-Bad", "a\nb"),
    "value_nul": header("X-Bad", "a\0b"),
    "value_ctl_01": header("X-Bad", "a\x01b"),
    "value_ctl_1f": header("X-Bad", "a\x1fb"),
    "value_del": header("X-Bad", "a\x7fb"),
    "value_htab": header("X-Bad", "a\tb"),
    "value_non_latin1": header("X-Bad", "snow \u2603"),
    "value_int": header("X-Bad", 1),
    "value_bytes": header("X-Bad", b"1"),
    # hop-by-hop headers (PEP 3333; wsgiref.util.is_hop_by_hop)
    "hop_connection": header("Connection", "close"),
    "hop_keep_alive": header("Keep-Alive", "timeout=5"),
    "hop_transfer_encoding": header("Transfer-Encoding", "chunked"),
    "hop_upgrade": header("Upgrade", "websocket"),
    "hop_te": header("TE", "trailers"),
    "hop_trailers": header("Trailers", "X-Foo"),
    "hop_proxy_authenticate": header("Proxy-Authenticate", "Basic"),
    "hop_proxy_authorization": header("Proxy-Authorization", "Basic eA=="),
    "hop_lowercase": header("transfer-encoding", "chunked"),
    # the shape of the header list
    "headers_dict": headers({"Content-Type": "text/plain"}),
    "headers_tuple": headers(((CT),)),
    "headers_lists": headers([["Content-Type", "text/plain"]]),
    "headers_triple": headers([("Content-Type", "text/plain", "x")]),
    "headers_none": headers(None),
    # Content-Length
    "cl_two_different": headers([CT, ("Content-Length", "18"),
                                 ("Content-Length", "5")]),
    "cl_two_same": headers([CT, ("Content-Length", "18"),
                            ("Content-Length", "18")]),
    "cl_negative": header("Content-Length", "-1"),
    "cl_not_number": header("Content-Length", "12abc"),
    "cl_empty": header("Content-Length", ""),
    # what the app returns
    "returns_none": returns(None),
    "returns_str": returns("a str body\n"),
    "returns_bytes": returns(b"bytes, not a list\n"),
    "returns_int": returns(42),
    "yields_int": yields(b"ok\n", 7),
    "yields_str": yields("str\n"),
    "yields_none": yields(None),
    "close_raises": close_raises,
    "iter_raises": iter_raises,
    "no_start_response_gen": no_start_response_gen,
    # start_response misuse
    "twice": twice,
    "bad_exc_info": bad_exc_info,
    "write_str": write_str,
    "raises_after_start": raises_after_start,
}


def application(environ, start_response):
    name = environ.get("PATH_INFO", "").strip("/")
    app = CASES.get(name)
    if app is None:
        start_response("404 Not Found", [CT])
        return [f"no case {name!r}\n".encode()]
    return app(environ, start_response)
