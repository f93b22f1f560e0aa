#!/usr/bin/python3
"""Restarts and stops lose nothing and leave nothing behind.

    t/stress/restarts.py [--mpm event,prefork] [--requests 20000]
                         [--restarts 30] [--recycles 20] [--clients 4]
                         [--json FILE]

Per MPM, on a private httpd (t/stress/private.conf.in):

1. graceful restarts (SIGUSR1 to the parent) every second during a load
   run (hello, a 16 KiB upload, a generator, file_wrapper) that lasts for
   at least --restarts restarts and --requests requests, from --clients
   processes: half of them on keep-alive
   connections, half with "Connection: close". A request counts as failed
   unless it got its full, correct answer. The one exception, counted
   apart as a retry: a keep-alive connection the server closed (between
   requests) just as the next request was sent -- the race every HTTP/1.1
   client retries (RFC 9112 section 9.3.1); it cannot happen on the
   Connection: close clients, which are therefore never retried;
2. recycling under load: the same mix plus an app that keeps 256 KiB more
   on every request, PyWSGIMaxMemory 48, until --recycles children have
   been replaced: no request may fail (same retry rule), and under
   worker/event each child leaves through its MPM's graceful exit (PW0412);
3. graceful-stop (SIGWINCH) with 2 s requests in flight on every slot but
   one: each completes with 200, then every process is gone;
4. hard stop (SIGTERM) with a request blocked for ever in C, an app thread
   that never ends and 30 s requests in flight: every process is gone
   (Apache SIGKILLs a child that does not exit within ~10 s) and none is
   orphaned.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pwstress as P  # noqa: E402

A = "@TOP@/t/apps"
EXTRA = "PyWSGIShutdownTimeout 2\n" + "".join(
    "PyWSGIScriptAlias /s/%s %s/soak.py callable=%s\n" % (n, A, n)
    for n in ("hello", "upload", "file")) + "".join(
    "PyWSGIScriptAlias /fault/%s %s/faults.py callable=%s\n" % (n, A, n)
    for n in ("sleep", "block", "thread", "pid")) + \
    "PyWSGIScriptAlias /pep3333/generator %s/pep3333.py callable=generator\n" % A + \
    "PyWSGIScriptAlias /s/grow %s/soak.py callable=grow\n" % A

BODY = os.urandom(16384)
# (method, path, body, check(body) -> bool)
REQUESTS = [
    ("GET", "/s/hello", None, lambda b: b == b"Hello, world!"),
    ("POST", "/s/upload", BODY, lambda b: b.startswith(b"16384 ")),
    ("GET", "/pep3333/generator", None, lambda b: b.count(b"\n") == 5),
    ("GET", "/s/file", None, lambda b: len(b) > 30000),
]
# The same mix, and every other request one that grows the child by 256 KiB.
GROWING = [r for pair in zip(REQUESTS, [
    ("GET", "/s/grow", None, lambda b: b.startswith(b"pid="))] * 4)
    for r in pair]


def loader(port, count, keepalive, seed, stop, queue, requests=REQUESTS):
    """At least count requests, and on until stop is set."""
    done = failed = retries = 0
    errors = []
    conn = None
    used = 0
    i = -1
    while True:
        i += 1
        if i >= count and stop.is_set():
            break
        method, path, body, check = requests[(i + seed) % len(requests)]
        headers = {} if keepalive else {"Connection": "close"}
        for attempt in (1, 2):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port,
                                                  timeout=30)
                used = 0
            try:
                conn.request(method, path, body=body, headers=headers)
                res = conn.getresponse()
                data = res.read()
                ok = res.status == 200 and check(data)
                if not ok and len(errors) < 10:
                    errors.append("%s %s: %d %r" % (method, path, res.status,
                                                    data[:80]))
                if res.will_close:
                    conn.close()
                    conn = None
                else:
                    used += 1
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                stale = keepalive and used > 0 and attempt == 1
                conn.close()
                conn = None
                if stale:
                    retries += 1
                    continue
                ok = False
                if len(errors) < 10:
                    errors.append("%s %s: %r" % (method, path, e))
                break
            except (OSError, http.client.HTTPException) as e:
                ok = False
                if len(errors) < 10:
                    errors.append("%s %s: %r" % (method, path, e))
                if conn:
                    conn.close()
                conn = None
                break
        done += 1
        failed += 0 if ok else 1
    if conn:
        conn.close()
    queue.put({"keepalive": keepalive, "done": done, "failed": failed,
               "retries": retries, "errors": errors})


def run_load(srv, clients, requests, until, mix=REQUESTS):
    """Starts the clients (half on keep-alive), runs until(stop) here, which
    sets stop once the phase is over, and waits for the clients' figures:
    (results, seconds)."""
    queue = multiprocessing.Queue()
    stop = multiprocessing.Event()
    workers = []
    for k in range(clients):
        p = multiprocessing.Process(target=loader, args=(
            srv.port, requests // clients, k % 2 == 0, k, stop, queue, mix))
        p.start()
        workers.append(p)
    t0 = time.time()
    until(stop)
    results = [queue.get() for _ in workers]
    elapsed = time.time() - t0
    for p in workers:
        p.join()
    return results, elapsed


def tally(out, results, log):
    """The clients' figures and the log's crash lines, into out."""
    crashes = [l for l in log.splitlines() if P.CRASH_RE.search(l)]
    out.update({
        "done": sum(r["done"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "failed_keepalive": sum(r["failed"] for r in results
                                if r["keepalive"]),
        "failed_close": sum(r["failed"] for r in results
                            if not r["keepalive"]),
        "retries": sum(r["retries"] for r in results),
        "errors": sum((r["errors"] for r in results), [])[:10],
        "crash_lines": crashes[:10],
    })


def verdict(out, what, ok):
    out["ok"] = ok and out["failed"] == 0 and not out["crash_lines"]
    for e in out["errors"][:5]:
        P.say("    " + e)
    for c in out["crash_lines"][:5]:
        P.say("    LOG " + c)
    P.say("  %s %s: %s" % (what, out["mpm"], "PASS" if out["ok"] else "FAIL"))
    return out


def graceful_under_load(mpm, requests, restarts_wanted, clients):
    P.say("== graceful restarts every second under load: %s, >= %d requests"
          ", %d restarts" % (mpm, requests, restarts_wanted))
    procs, threads = (clients + 2, 1) if mpm == "prefork" else (2, 8)
    out = {"mpm": mpm, "requests": requests}
    restarts = 0
    pids = set()

    with P.Server(mpm, extra=EXTRA, procs=procs, threads=threads,
                  serverlimit=4 * procs) as srv:
        time.sleep(1)

        def restarter(stop):
            nonlocal restarts
            while restarts < restarts_wanted:
                time.sleep(1.0)
                pids.update(srv.children())
                srv.send(signal.SIGUSR1)
                restarts += 1
            time.sleep(1.0)     # the last generation serves too
            pids.update(srv.children())
            stop.set()

        results, elapsed = run_load(srv, clients, requests, restarter)
        time.sleep(1)
        tally(out, results, srv.log_text())
    out.update({"seconds": elapsed, "restarts": restarts,
                "children_seen": len(pids)})
    P.say("  %d requests in %.1f s, %d graceful restarts, %d children seen;"
          " failed: %d (keep-alive %d, Connection: close %d); keep-alive"
          " retries: %d" % (out["done"], elapsed, restarts, len(pids),
                            out["failed"], out["failed_keepalive"],
                            out["failed_close"], out["retries"]))
    return verdict(out, "graceful restarts", restarts > 0)


def recycling_under_load(mpm, requests, recycles_wanted, clients):
    """Children that grow past PyWSGIMaxMemory are replaced, again and
    again, while the load goes on: no request may fail, and under
    worker/event children leave through their MPM's graceful exit (PW0412),
    never the idle-exit fallback (PW0411).  (A child that is still letting
    keep-alive drain may take the parent's own word to leave first, when
    it trims spare processes: the same graceful exit, without PW0412.)"""
    P.say("== recycling past PyWSGIMaxMemory under load: %s, >= %d requests"
          ", >= %d recycles" % (mpm, requests, recycles_wanted))
    procs, threads = (clients + 2, 1) if mpm == "prefork" else (2, 8)
    extra = EXTRA + "PyWSGIMaxMemory 48\n"
    out = {"mpm": mpm, "requests": requests}

    def count(pattern, log):
        return len(re.findall(pattern, log))

    with P.Server(mpm, extra=extra, procs=procs, threads=threads,
                  serverlimit=4 * procs) as srv:
        time.sleep(1)

        def until_recycled(stop):
            t0 = time.time()
            while (time.time() - t0 < 120 and count(
                    r"PW0410: recycling", srv.log_text()) < recycles_wanted):
                time.sleep(0.5)
            stop.set()

        results, elapsed = run_load(srv, clients, requests, until_recycled,
                                    GROWING)
        # The last children recycled may still be letting keep-alive drain.
        deadline = time.time() + 10
        while True:
            log = srv.log_text()
            if (mpm == "prefork" or time.time() > deadline
                    or count(r"PW041[12]: ", log)
                    >= count(r"PW0410: recycling", log)):
                break
            time.sleep(0.2)
        tally(out, results, log)
    out.update({"seconds": elapsed,
                "recycles": count(r"PW0410: recycling", log),
                "graceful_exits": count(r"PW0412: ", log),
                "idle_exits": count(r"PW0411: ", log)})
    P.say("  %d requests in %.1f s, %d children recycled (%d through the"
          " MPM's graceful exit, %d idle exits); failed: %d; keep-alive"
          " retries: %d" % (out["done"], elapsed, out["recycles"],
                            out["graceful_exits"], out["idle_exits"],
                            out["failed"], out["retries"]))
    return verdict(out, "recycling",
                   out["recycles"] >= recycles_wanted
                   and out["idle_exits"] == 0
                   and (mpm == "prefork" or out["graceful_exits"] > 0))


def graceful_stop(mpm):
    P.say("== graceful-stop with requests in flight: %s" % mpm)
    procs, threads = (6, 1) if mpm == "prefork" else (2, 8)
    n = procs * threads - 1
    srv = P.Server(mpm, extra=EXTRA, procs=procs, threads=threads)
    srv.start()
    try:
        time.sleep(1)
        results = []
        lock = threading.Lock()

        def one():
            st, body = P.request(srv.port, "GET", "/fault/sleep?2",
                                 timeout=20)
            with lock:
                results.append((st, body))

        ths = [threading.Thread(target=one) for _ in range(n)]
        for t in ths:
            t.start()
        time.sleep(0.8)
        t0 = time.time()
        srv.send(signal.SIGWINCH)
        for t in ths:
            t.join()
        left = srv.wait_gone(25)
        took = time.time() - t0
        log = srv.log_text()
    finally:
        killed = srv.stop()
    ok200 = sum(1 for st, b in results if st == 200 and b.startswith(
        b"slept 2.0"))
    out = {"mpm": mpm, "in_flight": n, "completed": ok200,
           "gone_after": took, "left": left, "killed": killed,
           "crash_lines": [l for l in log.splitlines()
                           if P.CRASH_RE.search(l)][:5]}
    out["ok"] = ok200 == n and not left and not killed and \
        not out["crash_lines"]
    P.say("  %d of %d requests in flight completed with 200; every process"
          " gone %.1f s after SIGWINCH; left %s: %s"
          % (ok200, n, took, left or "none", "PASS" if out["ok"] else "FAIL"))
    return out


def hard_stop(mpm):
    P.say("== hard stop with a request blocked for ever in C: %s" % mpm)
    procs, threads = (4, 1) if mpm == "prefork" else (2, 4)
    srv = P.Server(mpm, extra=EXTRA, procs=procs, threads=threads)
    srv.start()
    try:
        time.sleep(1)
        P.request(srv.port, "GET", "/fault/thread")
        ths = [threading.Thread(target=P.request, args=(
            srv.port, "GET", path), kwargs={"timeout": 40})
            for path in ("/fault/block", "/fault/sleep?30", "/fault/sleep?30")]
        for t in ths:
            t.start()
        time.sleep(0.8)
        before = srv.all_pids()
        t0 = time.time()
        srv.send(signal.SIGTERM)
        left = srv.wait_gone(30)
        took = time.time() - t0
        orphans = [p for p in before if P.alive(p)]
        log = srv.log_text()
        for t in ths:
            t.join(5)
    finally:
        killed = srv.stop()
    escal = [l[l.find("AH0004"):][:80] for l in log.splitlines()
             if "AH00045" in l or "AH00046" in l]
    out = {"mpm": mpm, "processes": len(before), "gone_after": took,
           "left": left, "orphans": orphans, "killed_by_us": killed,
           "apache_escalation": escal}
    out["ok"] = not left and not orphans and not killed
    P.say("  %d processes; all gone %.1f s after SIGTERM (Apache: %s);"
          " orphans: %s: %s" % (len(before), took,
                                "; ".join(escal[-2:]) or "no escalation",
                                orphans or "none",
                                "PASS" if out["ok"] else "FAIL"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mpm", default="event,prefork")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--restarts", type=int, default=30)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--recycles", type=int, default=20)
    ap.add_argument("--json")
    opts = ap.parse_args()
    results = []
    for mpm in opts.mpm.split(","):
        results.append(graceful_under_load(mpm, opts.requests, opts.restarts,
                                           opts.clients))
        results.append(recycling_under_load(mpm, opts.requests // 4,
                                            opts.recycles, opts.clients))
        results.append(graceful_stop(mpm))
        results.append(hard_stop(mpm))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
