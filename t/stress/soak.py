#!/usr/bin/python3
"""Soak: does a child's memory stay flat over many requests?

    t/stress/soak.py [--mpm event,prefork] [--requests 200000]
                     [--clients 4] [--limit 2.0] [--report-only]
                     [--only PATH,...] [--json FILE]

Runs a private httpd per MPM (t/stress/private.conf.in; PyWSGIMaxRequests
0 and MaxConnectionsPerChild 0, so the children live through it all) with
the test suite's apps and t/apps/soak.py mounted, and drives a fixed mix of
requests at it -- hello, environ dumps, Flask, every misbehaving app of
t/apps/errors.py, generators, write(), file_wrapper, uploads (Content-Length
and chunked), a stream the client hangs up on, the app's and Apache's 404s
-- from --clients processes on keep-alive connections.

Each child's VmRSS, and Pss and Private_Dirty (smaps_rollup), is sampled
with the server idle after a warm-up of 10% of the requests, then at 40%,
70% and 100%. The growth from the warm-up sample to the last is reported
per child; RSS growth of more than --limit percent (default 2) on any child
fails the run, unless --report-only (short mode). (Pss also moves when
pages shared with the parent and the siblings are touched: reported, not
judged.) It also fails when a child was replaced, when
any response was not what the app gives, or when the error log shows a
crash.

--only keeps the rows of the mix whose path contains one of the given
strings (--only /err/ soaks the failing apps alone): to find which kind of
request a growth comes with.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pwstress as P  # noqa: E402

APPS = "@TOP@/t/apps"
EXTRA = """
PyWSGIMaxRequests 0
PyWSGIScriptAlias /s/hello    {a}/soak.py callable=hello
PyWSGIScriptAlias /s/upload   {a}/soak.py callable=upload
PyWSGIScriptAlias /s/file     {a}/soak.py callable=file
PyWSGIScriptAlias /s/stream   {a}/soak.py callable=stream
PyWSGIScriptAlias /s/notfound {a}/soak.py callable=notfound
PyWSGIScriptAlias /env        {a}/env.py
PyWSGIScriptAlias /flask      {a}/flask_app.py
PyWSGIScriptAlias /pep3333/filewrap  {a}/pep3333.py callable=filewrap
PyWSGIScriptAlias /pep3333/writer    {a}/pep3333.py callable=writer
PyWSGIScriptAlias /pep3333/generator {a}/pep3333.py callable=generator
PyWSGIScriptAlias /pep3333/headers   {a}/pep3333.py callable=headers
""".format(a=APPS) + "".join(
    "PyWSGIScriptAlias /err/{0} {1}/errors.py callable={0}\n".format(n, APPS)
    for n in ("raises", "str_items", "non_iterable", "no_start_response",
              "bad_status", "header_crlf", "header_name_type", "twice",
              "stream_fail", "chatty"))

# (weight, method, path, body: None | ("cl"|"chunked", size), expected)
# expected: a status, or "truncated" (the app fails after the headers, so
# the response is cut short), or "hangup" (the client leaves early).
MIX = [
    (20, "GET", "/s/hello", None, 200),
    (8, "GET", "/env/soak/path?a=1&b=2", None, 200),
    (5, "GET", "/flask/hello/soak", None, 200),
    (2, "GET", "/flask/no/such/route", None, 404),
    (5, "GET", "/err/raises", None, 500),
    (1, "GET", "/err/str_items", None, 500),
    (1, "GET", "/err/non_iterable", None, 500),
    (1, "GET", "/err/no_start_response", None, 500),
    (1, "GET", "/err/bad_status", None, 500),
    (1, "GET", "/err/header_crlf", None, 500),
    (1, "GET", "/err/header_name_type", None, 500),
    (1, "GET", "/err/twice", None, 500),
    (1, "GET", "/err/chatty", None, 200),
    (2, "GET", "/err/stream_fail", None, "truncated"),
    (8, "GET", "/pep3333/generator", None, 200),
    (3, "GET", "/pep3333/writer", None, 200),
    (2, "GET", "/pep3333/headers", None, 201),
    (8, "GET", "/s/file", None, 200),
    (3, "GET", "/pep3333/filewrap", None, 200),
    (10, "POST", "/s/upload", ("cl", 16384), 200),
    (3, "POST", "/s/upload", ("chunked", 8192), 200),
    (5, "GET", "/s/stream", None, "hangup"),
    (3, "GET", "/s/notfound", None, 404),
    (3, "GET", "/no/such/file", None, 404),
]

SAMPLE_AT = (0.10, 0.40, 0.70, 1.00)


def plan(total, seed, only=None):
    """The request sequence: the mix's proportions, shuffled."""
    rnd = random.Random(seed)
    rows = [i for i, row in enumerate(MIX)
            if not only or any(o in row[2] for o in only)]
    weights = [MIX[i][0] for i in rows]
    return rnd.choices(rows, weights=weights, k=total)


def chunks(data, size=4096):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def worker(port, indices, queue):
    """Runs its share of the requests; puts its tallies on the queue."""
    counts = {}
    failures = []
    retries = 0
    conn = None
    used = 0
    payload = {n: os.urandom(n) for n in (8192, 16384)}

    def fail(path, what):
        if len(failures) < 20:
            failures.append("%s: %s" % (path, what))

    for i in indices:
        _, method, path, body, expected = MIX[i]
        key = "%s %s" % (method, path)
        if expected == "hangup":
            try:
                status = P.hang_up_early(port, path)
                ok = status == 200
            except OSError as e:
                ok = False
                status = repr(e)
            counts[key] = counts.get(key, 0) + 1
            if not ok:
                fail(path, "hang-up client saw %s" % status)
            continue
        for attempt in (1, 2):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port,
                                                  timeout=30)
                used = 0
            try:
                headers = {}
                data = None
                if body:
                    kind, size = body
                    if kind == "cl":
                        data = payload[size]
                    else:
                        data = chunks(payload[size])
                        headers["Transfer-Encoding"] = "chunked"
                    headers["Content-Type"] = "application/octet-stream"
                conn.request(method, path, body=data, headers=headers,
                             encode_chunked=bool(body and body[0] ==
                                                 "chunked"))
                res = conn.getresponse()
                res.read()
                status = res.status
                if res.will_close:
                    conn.close()
                    conn = None
                used += 1
                break
            except http.client.IncompleteRead:
                status = "truncated"
                conn.close()
                conn = None
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                # A keep-alive connection the server had closed before it
                # read the request (RFC 9112 9.3.1: retry is allowed).
                conn.close()
                conn = None
                if attempt == 1 and used > 0:
                    retries += 1
                    continue
                status = repr(e)
                break
            except (OSError, http.client.HTTPException) as e:
                status = repr(e)
                conn.close() if conn else None
                conn = None
                break
        counts[key] = counts.get(key, 0) + 1
        if status != expected:
            fail(path, "expected %s, got %s" % (expected, status))
    if conn:
        conn.close()
    queue.put({"counts": counts, "failures": failures, "retries": retries,
               "requests": len(indices)})


def run_phase(port, indices, clients):
    queue = multiprocessing.Queue()
    procs = []
    for k in range(clients):
        share = indices[k::clients]
        p = multiprocessing.Process(target=worker, args=(port, share, queue))
        p.start()
        procs.append(p)
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    total = {"counts": {}, "failures": [], "retries": 0, "requests": 0}
    for r in results:
        for k, v in r["counts"].items():
            total["counts"][k] = total["counts"].get(k, 0) + v
        total["failures"] += r["failures"]
        total["retries"] += r["retries"]
        total["requests"] += r["requests"]
    return total


def sample(srv):
    return {pid: P.memory(pid) for pid in srv.children()}


def soak(mpm, requests, clients, limit, report_only, only=None):
    P.say("== soak: %s, %d requests, %d clients%s" % (
        mpm, requests, clients, ", only " + ",".join(only) if only else ""))
    seq = plan(requests, seed=6, only=only)
    result = {"mpm": mpm, "requests": requests, "clients": clients,
              "samples": [], "failures": [], "retries": 0, "counts": {}}
    # prefork: a child per client's keep-alive connection, and two more
    # for the hang-up client's fresh connections.
    procs, threads = (clients + 2, 1) if mpm == "prefork" else (2, 8)
    with P.Server(mpm, extra=EXTRA, procs=procs, threads=threads) as srv:
        # Let every child start Python before the first sample.
        time.sleep(1)
        start_children = srv.children()
        done = 0
        t0 = time.time()
        for frac in SAMPLE_AT:
            upto = int(requests * frac)
            r = run_phase(srv.port, seq[done:upto], clients)
            done = upto
            for k, v in r["counts"].items():
                result["counts"][k] = result["counts"].get(k, 0) + v
            result["failures"] += r["failures"]
            result["retries"] += r["retries"]
            time.sleep(0.5)    # idle: let the last requests finish
            mem = sample(srv)
            elapsed = time.time() - t0
            result["samples"].append({"after": done, "seconds": elapsed,
                                      "mem": mem})
            P.say("  %6d requests, %5.1f s (%4.0f req/s): %s" % (
                done, elapsed, done / elapsed, "  ".join(
                    "pid %d rss %s pss %s" % (pid, P.fmt_kb(m.get("rss", 0)),
                                              P.fmt_kb(m.get("pss", 0)))
                    for pid, m in sorted(mem.items()))))
        result["seconds"] = time.time() - t0
        end_children = srv.children()
        log = srv.log_text()
    result["children_start"] = start_children
    result["children_end"] = end_children
    result["crash_lines"] = [l for l in log.splitlines()
                             if P.CRASH_RE.search(l)][:10]
    result["pw_lines"] = {}
    for m in re.finditer(r"\] (PW\d{4}):", log):
        result["pw_lines"][m.group(1)] = result["pw_lines"].get(
            m.group(1), 0) + 1

    # Growth per child, warm-up sample to the last.
    warm, last = result["samples"][0]["mem"], result["samples"][-1]["mem"]
    growth = {}
    for pid in sorted(set(warm) & set(last)):
        g = {}
        for k in ("rss", "pss", "private"):
            if warm[pid].get(k):
                g[k] = 100.0 * (last[pid][k] - warm[pid][k]) / warm[pid][k]
                g[k + "_kb"] = (warm[pid][k], last[pid][k])
        growth[pid] = g
    result["growth"] = growth

    problems = []
    if set(start_children) != set(end_children):
        problems.append("children changed: %s -> %s"
                        % (start_children, end_children))
    if result["failures"]:
        problems.append("%d unexpected responses, e.g. %s"
                        % (len(result["failures"]), result["failures"][:3]))
    if result["crash_lines"]:
        problems.append("crash in the error log: %s"
                        % result["crash_lines"][:3])
    over = {pid: g for pid, g in growth.items() if g.get("rss", 0) > limit}
    P.say("  growth after warm-up (%d -> %d requests):" % (
        result["samples"][0]["after"], requests))
    for pid, g in sorted(growth.items()):
        P.say("    pid %d: RSS %s -> %s (%+.2f%%), PSS %s -> %s (%+.2f%%),"
              " private dirty %s -> %s (%+.2f%%)" % (
                  pid, P.fmt_kb(g["rss_kb"][0]), P.fmt_kb(g["rss_kb"][1]),
                  g["rss"], P.fmt_kb(g["pss_kb"][0]),
                  P.fmt_kb(g["pss_kb"][1]), g["pss"],
                  P.fmt_kb(g["private_kb"][0]), P.fmt_kb(g["private_kb"][1]),
                  g["private"]))
    if over:
        msg = "RSS growth over %.1f%% in %s" % (limit, sorted(over))
        if report_only:
            P.say("  (report only) " + msg)
        else:
            problems.append(msg)
    P.say("  %.0f req/s over %.1f s; %d keep-alive retries; PW lines: %s"
          % (requests / result["seconds"], result["seconds"],
             result["retries"], result["pw_lines"]))
    result["problems"] = problems
    for p in problems:
        P.say("  FAIL: " + p)
    P.say("  soak %s: %s" % (mpm, "FAIL" if problems else "PASS"))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mpm", default="event,prefork")
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--limit", type=float, default=2.0,
                    help="max growth in percent (default 2)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--only", help="comma-separated parts of paths")
    ap.add_argument("--json", help="write the results here")
    opts = ap.parse_args()
    only = opts.only.split(",") if opts.only else None
    results = [soak(m, opts.requests, opts.clients, opts.limit,
                    opts.report_only, only) for m in opts.mpm.split(",")]
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True, default=str)
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
