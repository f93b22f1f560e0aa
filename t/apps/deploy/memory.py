"""Reports its pid and resident size; ?alloc makes it take 60 MB and keep
them (t/lifecycle.t, PyWSGIMaxMemory)."""

import os

HELD = []


def resident_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGESIZE") / (1024 * 1024)


def application(environ, start_response):
    if environ.get("QUERY_STRING") == "alloc" and not HELD:
        # Written, not just reserved: the pages are really resident.
        HELD.append(b"\x01" * (60 * 1024 * 1024))
    body = ("pid=%d rss_mb=%d\n" % (os.getpid(), resident_mb())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
