#!/usr/bin/python3
"""Memory check of mod_pywsgi under valgrind's memcheck.

    t/stress/memcheck.py private [--mpm event] [--rounds 2] [--out DIR]
    t/stress/memcheck.py suite   [--mpm event] [--out DIR]
    t/stress/memcheck.py report  DIR...

private: a private httpd with one child, parent and child under valgrind
(t/stress/valgrind-httpd), every kind of request once per round -- apps
that work, raise, stream, upload, read a file, time out, run in a named
interpreter, and hostile requests -- then a stop, which finalises Python
in the child.  Under a minute; part of `make -f Makefile.apxs
stress-short`.

suite: the whole Apache::Test suite against an httpd whose every process
runs under valgrind (HTTPD=t/stress/valgrind-httpd t/run-mpms MPM, under
the test lock).  Tests with tight time limits may fail under valgrind's
slowdown: that is reported, not judged here.

Either way the reports (one per process) are then read and every error
and leak is classed: "module" when a frame of its stack is in
mod_pywsgi.so (for a leak: the first frame past the allocator), else
"Python/Apache noise".  Leaks whose stack holds a module frame only below
Python's or APR's are listed apart ("via-api"): usually an object the
module keeps for the life of the process.  Exit status 1 when the
module has any error (invalid access, uninitialised value) or a definite
leak.

valgrind tracks malloc; Python's small-object allocator (pymalloc) hands
out pieces of its own arenas, which memcheck does not see, and mod_pywsgi
runs Python with the isolated configuration, which ignores PYTHONMALLOC:
leaks of small Python objects are out of its sight (the soak's RSS figures
cover them).
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pwstress as P  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = os.path.join(HERE, "valgrind-httpd")
A = "@TOP@/t/apps"
EXTRA = """
PyWSGIRequestTimeout 3
PyWSGIScriptAlias /s/hello    {a}/soak.py callable=hello
PyWSGIScriptAlias /s/upload   {a}/soak.py callable=upload
PyWSGIScriptAlias /s/file     {a}/soak.py callable=file
PyWSGIScriptAlias /s/stream   {a}/soak.py callable=stream
PyWSGIScriptAlias /env        {a}/env.py
PyWSGIScriptAlias /flask      {a}/flask_app.py
PyWSGIScriptAlias /pep3333/writer    {a}/pep3333.py callable=writer
PyWSGIScriptAlias /pep3333/generator {a}/pep3333.py callable=generator
PyWSGIScriptAlias /fault/spin      {a}/faults.py callable=spin
PyWSGIScriptAlias /fault/sys_exit  {a}/faults.py callable=sys_exit
PyWSGIScriptAlias /fault/sys_exit_close {a}/faults.py callable=sys_exit_close
PyWSGIScriptAlias /fault/recursion {a}/faults.py callable=recursion
PyWSGIScriptAlias /iso/a  {a}/hostile.py callable=mark interpreter=iso_a
PyWSGIScriptAlias /iso/b  {a}/hostile.py callable=look interpreter=iso_b
<Location /limited>
    LimitRequestBody 1024
</Location>
PyWSGIScriptAlias /limited {a}/soak.py callable=upload
""".format(a=A) + "".join(
    "PyWSGIScriptAlias /err/{0} {1}/errors.py callable={0}\n".format(n, A)
    for n in ("raises", "str_items", "non_iterable", "no_start_response",
              "bad_status", "header_crlf", "header_name_type", "twice",
              "stream_fail", "chatty"))

GETS = ["/s/hello", "/env/x?y=1", "/flask/hello/vg", "/flask/none",
        "/pep3333/writer", "/pep3333/generator", "/s/file", "/iso/a?x",
        "/iso/b", "/fault/sys_exit", "/fault/sys_exit_close",
        "/fault/recursion", "/no/such/file"] + [
    "/err/" + n for n in ("raises", "str_items", "non_iterable",
                          "no_start_response", "bad_status", "header_crlf",
                          "header_name_type", "twice", "stream_fail",
                          "chatty")]
RAW = [
    b"POST /s/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /s/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"POST /limited HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n",
    b"POST /s/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
    b"Connection: close\r\n\r\nshort",
    b"GET /env/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /env HTTP/1.1\r\nHost: x\r\nX_Spoof: 1\r\nProxy: x\r\n"
    b"Authorization: Basic eDp5\r\nConnection: close\r\n\r\n",
]


def raw(port, data, timeout=60):
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(data)
        if b"Content-Length: 100" in data:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
        return out.split(b"\r\n", 1)[0].decode("latin-1")
    except OSError as e:
        return repr(e)
    finally:
        s.close()


def run_private(mpm, rounds, out):
    os.environ["PW_VALGRIND_OUT"] = out
    P.say("== memcheck (private server under valgrind, %s, %d rounds)"
          % (mpm, rounds))
    t0 = time.time()
    srv = P.Server(mpm, extra=EXTRA, procs=1, threads=4, httpd=WRAPPER,
                   start_timeout=180)
    srv.start()
    P.say("  started in %.0f s" % (time.time() - t0))
    n = 0
    statuses = {}
    try:
        for _ in range(rounds):
            for path in GETS:
                st, _ = P.request(srv.port, "GET", path, timeout=120)
                statuses[path] = st
                n += 1
            st, _ = P.request(srv.port, "POST", "/s/upload",
                              body=os.urandom(20000), timeout=120)
            statuses["POST /s/upload"] = st
            P.hang_up_early(srv.port, "/s/stream", timeout=120)
            for data in RAW:
                statuses[data.split(b"\r\n")[0].decode()[:40]] = raw(
                    srv.port, data)
            n += 2 + len(RAW)
        st, _ = P.request(srv.port, "GET", "/fault/spin", timeout=120)
        statuses["/fault/spin"] = st
        n += 1
        P.say("  %d requests in %.0f s" % (n, time.time() - t0))
        log = srv.log_text()
    finally:
        # SIGTERM: httpd stops its child, whose pool cleanups finalise
        # Python; then valgrind checks each process for leaks and writes
        # its report.
        srv.stop(timeout=300, keep_dir=True)
    P.say("  stopped after %.0f s" % (time.time() - t0))
    srv.cleanup()
    crashes = [l for l in log.splitlines() if P.CRASH_RE.search(l)]
    return {"requests": n, "seconds": time.time() - t0,
            "statuses": statuses, "crash_lines": crashes[:5]}


def run_suite(mpm, out):
    P.say("== memcheck (Apache::Test suite, %s, every httpd process under"
          " valgrind)" % mpm)
    env = dict(os.environ, HTTPD=WRAPPER, PW_VALGRIND_OUT=out,
               APACHE_TEST_STARTUP_TIMEOUT="300")
    t0 = time.time()
    log = os.path.join(out, "suite-%s.out" % mpm)
    cmd = ["flock", "/tmp/pw-test.lock", "sh", "-c",
           "./t/run-mpms %s; rc=$?; cp t/run-logs/%s.out %s; exit $rc"
           % (mpm, mpm, log)]
    rc = subprocess.run(cmd, cwd=P.TOP, env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.STDOUT).returncode
    # httpd's port closes before valgrind has written its reports.
    deadline = time.time() + 300
    while time.time() < deadline and list(_valgrinds(out)):
        time.sleep(1)
    with open(log, errors="replace") as f:
        text = f.read()
    summary = [l for l in text.splitlines()
               if l.startswith(("Files=", "Result:")) or "Failed test" in l
               or l.startswith("t/") and "Wstat" in l]
    P.say("  suite exit %d after %.0f s" % (rc, time.time() - t0))
    for l in summary[-12:]:
        P.say("    " + l)
    return {"exit": rc, "seconds": time.time() - t0, "summary": summary}


def _valgrinds(out):
    """Live valgrind processes writing into out."""
    for pid in P.pids_with_arg("--log-file=%s/" % out):
        yield pid


# ---------------------------------------------------------------- reports

# "==123== " before every line of a valgrind log.
PREFIX = re.compile(r"^==(\d+)== ?(.*)$")
FRAME = re.compile(r"^\s+(?:at|by) 0x[0-9A-Fa-f]+: (.*?) \((?:in )?(.*)\)$")
LEAK = re.compile(r"are (definitely|indirectly|possibly) lost")
ALLOC = ("malloc", "calloc", "realloc", "free", "operator new", "memalign",
         "posix_memalign", "strdup", "strndup", "aligned_alloc")


def is_module_frame(where):
    base = os.path.basename(where.split(":")[0])
    return base in ("mod_pywsgi.so", "mod_pywsgi.c") or \
        (base.startswith("pw_") and base.endswith(".c"))


def parse_log(path):
    """The errors of one valgrind text log: [{kind, what, stack}], and the
    process' command line."""
    blocks, cur, args = [], [], ""
    with open(path, errors="replace") as f:
        for line in f:
            m = PREFIX.match(line.rstrip("\n"))
            if not m:
                continue
            text = m.group(2)
            if text.startswith("Command: "):
                args = text[len("Command: "):]
            if text.strip() == "":
                if cur:
                    blocks.append(cur)
                cur = []
            else:
                cur.append(text)
    if cur:
        blocks.append(cur)
    errors = []
    for b in blocks:
        frames = []
        for line in b[1:]:
            fm = FRAME.match(line)
            if fm:
                frames.append((fm.group(1), fm.group(2)))
            elif frames:
                break       # "Address ... is ..." and the second stack
        if not frames or b[0].startswith(("HEAP SUMMARY", "LEAK SUMMARY",
                                          "Memcheck", "Copyright",
                                          "Using Valgrind", "Command")):
            continue
        lm = LEAK.search(b[0])
        kind = ("Leak_%sLost" % lm.group(1).capitalize()) if lm else b[0]
        errors.append({"kind": kind, "what": b[0], "frames": frames})
    return errors, args


def classify(err):
    frames = err["frames"]
    idx = [i for i, (_, where) in enumerate(frames) if is_module_frame(where)]
    if not idx:
        cls = "noise"
    elif not err["kind"].startswith("Leak_"):
        cls = "module"
    else:
        # Leaks: the module's own allocation when its frame is the first
        # one that is not an allocator or valgrind's own.
        first = next((i for i, (fn, where) in enumerate(frames)
                      if not fn.startswith(ALLOC) and "vgpreload" not in where
                      and "rtld-malloc" not in where), 0)
        cls = "module" if idx[0] == first else "via-api"
    return {"kind": err["kind"], "what": err["what"], "class": cls,
            "stack": ["%s (%s)" % (fn, where if ":" in where
                                   else os.path.basename(where))
                      for fn, where in frames[:14]]}


def report(out_dirs):
    files = []
    for d in out_dirs:
        files += sorted(glob.glob(os.path.join(d, "vg.*.log")))
    res = {"files": len(files), "processes": [], "errors": []}
    for path in files:
        errs, args = parse_log(path)
        errs = [classify(e) for e in errs]
        res["processes"].append({"file": os.path.basename(path),
                                 "command": args[-120:],
                                 "errors": len(errs)})
        res["errors"] += errs
    by = {}
    for e in res["errors"]:
        key = (e["class"], e["kind"] if e["kind"].startswith("Leak_")
               else "error")
        by[key] = by.get(key, 0) + 1
    res["counts"] = {"%s %s" % k: v for k, v in sorted(by.items())}
    bad = [e for e in res["errors"] if e["class"] == "module" and (
        not e["kind"].startswith("Leak_")
        or e["kind"] == "Leak_DefinitelyLost")]
    res["module_problems"] = len(bad)
    P.say("  valgrind: %d process(es); %s" % (
        len(files), ", ".join("%s: %d" % kv for kv in res["counts"].items())
        or "no error, no leak"))
    for cls, title in (("module", "attributable to mod_pywsgi"),
                       ("via-api", "a mod_pywsgi frame below Python's or "
                                   "APR's (objects kept for the child's "
                                   "life)")):
        shown = [e for e in res["errors"] if e["class"] == cls]
        if shown:
            P.say("  %s (%d):" % (title, len(shown)))
        seen = set()
        for e in shown:
            key = tuple(e["stack"][:8])
            if key in seen:
                continue
            seen.add(key)
            if len(seen) > 8:
                break
            P.say("    " + e["what"])
            for fr in e["stack"][:9]:
                P.say("        " + fr)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("private", "suite", "report"))
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--mpm", default="event")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--json")
    opts = ap.parse_args()
    if opts.mode == "report":
        res = {"report": report(opts.dirs)}
    else:
        out = opts.out or os.path.join(P.TOP, "t", "stress", "out",
                                       "memcheck-" + opts.mode)
        os.makedirs(out, exist_ok=True)
        for f in glob.glob(os.path.join(out, "vg.*")):  # a previous run
            os.unlink(f)
        if opts.mode == "private":
            res = {"run": run_private(opts.mpm, opts.rounds, out)}
        else:
            res = {"run": run_suite(opts.mpm, out)}
        res["report"] = report([out])
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    bad = res["report"]["module_problems"]
    P.say("  memcheck: %s (%d error(s) or definite leak(s) attributable to "
          "mod_pywsgi)" % ("FAIL" if bad else "PASS", bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
