#!/usr/bin/python3
"""The stress target: every long-running reliability check, one command.

    t/stress/run.py short     # make -f Makefile.apxs stress-short (< 3 min, CI)
    t/stress/run.py long      # make -f Makefile.apxs stress (< 25 min)

                           short                      long
  soak (event, prefork)    5,000 requests, report     1,000,000 requests, RSS
                           the RSS growth only        growth over 2% fails
  restarts                 event, prefork: >= 3,000   event, worker, prefork:
                           requests and               >= 20,000 requests and
                           5 graceful restarts,       30 graceful restarts,
                           5 PyWSGIMaxMemory          30 PyWSGIMaxMemory
                           recycles                   recycles
                           + graceful-stop + hard stop (both modes)
  memcheck                 a private httpd -X under   the same (3 rounds), and
                           valgrind, each kind of     the whole Apache::Test
                           request once               suite under valgrind
  fuzz (make fuzz)         15 s                       600 s

Each part's output goes to the terminal and its figures to
t/stress/out/<part>-<mode>.json; t/stress/out/summary-<mode>.json collects
them (docs/reliability.md quotes a long run). Exit status 1 when any part
failed. Nothing here needs the network or touches /etc/apache2; private
servers use 127.0.0.1:8720-8749 and are always stopped.
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "out")
PY = "/usr/bin/python3"

MODES = {
    "short": {
        "soak": ["--requests", "5000", "--report-only"],
        "restarts": ["--requests", "3000", "--restarts", "5",
                     "--recycles", "5"],
        "memcheck": [["private", "--rounds", "1"]],
        "fuzz_seconds": 15,
    },
    "long": {
        "soak": ["--requests", "1000000"],
        "restarts": ["--mpm", "event,worker,prefork", "--requests", "20000",
                     "--restarts", "30", "--recycles", "30"],
        "memcheck": [["private", "--rounds", "3"], ["suite"]],
        "fuzz_seconds": 600,
    },
}


def run(name, cmd, log):
    print("\n##### %s: %s" % (name, " ".join(cmd)), flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, cwd=TOP, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             errors="replace")
        for line in p.stdout:
            sys.stdout.write(line)
            f.write(line)
        rc = p.wait()
    took = time.time() - t0
    print("##### %s: %s in %.0f s" % (name, "ok" if rc == 0 else
                                      "FAILED (exit %d)" % rc, took),
          flush=True)
    return rc, took


def fuzz(seconds, mode):
    """make fuzz for a bounded time; its libFuzzer figures and findings."""
    log = os.path.join(OUT, "fuzz-%s.txt" % mode)
    before = set(os.listdir(TOP))
    corpus = os.path.join(TOP, "t", "fuzz", "corpus")
    n0 = len(os.listdir(corpus)) if os.path.isdir(corpus) else 0
    rc, took = run("fuzz", ["make", "-f", "Makefile.apxs", "fuzz",
                            "FUZZ_SECONDS=%d" % seconds], log)
    with open(log, errors="replace") as f:
        text = f.read()
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", text, re.M))
    cov = re.findall(r"cov: (\d+) ft: (\d+)", text)
    crashes = sorted(f for f in set(os.listdir(TOP)) - before
                     if f.startswith(("crash-", "leak-", "oom-",
                                      "timeout-")))
    findings = re.findall(r"^(==\d+==ERROR: .*|SUMMARY: .*|"
                          r"INFO: .*leak.*|ERROR: libFuzzer: .*)$", text,
                          re.M)
    res = {"exit": rc, "seconds": took, "requested_seconds": seconds,
           "executions": int(stats.get("number_of_executed_units", 0)),
           "exec_per_sec": int(stats.get("average_exec_per_sec", 0)),
           "new_units": int(stats.get("new_units_added", 0)),
           "peak_rss_mb": int(stats.get("peak_rss_mb", 0)),
           "coverage": {"cov": int(cov[-1][0]), "ft": int(cov[-1][1])}
           if cov else {},
           "corpus_before": n0,
           "corpus_after": len(os.listdir(corpus))
           if os.path.isdir(corpus) else 0,
           "artifacts": crashes, "findings": findings[:10]}
    res["ok"] = rc == 0 and not crashes and not findings
    print("fuzz: %d executions in %.0f s (%d/s), coverage %s, corpus %d ->"
          " %d, findings: %s" % (res["executions"], took,
                                 res["exec_per_sec"], res["coverage"], n0,
                                 res["corpus_after"],
                                 findings or crashes or "none"), flush=True)
    return res


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "short"
    if mode not in MODES:
        print(__doc__)
        return 2
    cfg = MODES[mode]
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(os.path.join(TOP, ".libs", "mod_pywsgi.so")):
        print("run make -f Makefile.apxs first")
        return 2
    t0 = time.time()
    summary = {"mode": mode, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
               "parts": {}}
    for part in ("soak", "restarts"):
        js = os.path.join(OUT, "%s-%s.json" % (part, mode))
        rc, took = run(part, [PY, os.path.join(HERE, part + ".py")]
                       + cfg[part] + ["--json", js],
                       os.path.join(OUT, "%s-%s.txt" % (part, mode)))
        summary["parts"][part] = {"ok": rc == 0, "seconds": took,
                                  "json": os.path.relpath(js, TOP)}
    for args in cfg["memcheck"]:
        name = "memcheck-" + args[0]
        js = os.path.join(OUT, "%s-%s.json" % (name, mode))
        rc, took = run(name, [PY, os.path.join(HERE, "memcheck.py")] + args
                       + ["--out", os.path.join(OUT, name), "--json", js],
                       os.path.join(OUT, "%s-%s.txt" % (name, mode)))
        summary["parts"][name] = {"ok": rc == 0, "seconds": took,
                                  "json": os.path.relpath(js, TOP)}
    res = fuzz(cfg["fuzz_seconds"], mode)
    with open(os.path.join(OUT, "fuzz-%s.json" % mode), "w") as f:
        json.dump(res, f, indent=1)
    summary["parts"]["fuzz"] = {"ok": res["ok"], "seconds": res["seconds"],
                                "json": "t/stress/out/fuzz-%s.json" % mode}
    summary["seconds"] = time.time() - t0
    with open(os.path.join(OUT, "summary-%s.json" % mode), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n===== stress %s: %.0f s" % (mode, summary["seconds"]))
    for part, r in summary["parts"].items():
        print("  %-18s %s  %4.0f s" % (part, "PASS" if r["ok"] else "FAIL",
                                       r["seconds"]))
    ok = all(r["ok"] for r in summary["parts"].values())
    print("===== %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
