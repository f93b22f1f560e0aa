"""What every corpus client (t/apps/corpus/*/client.py) shares: it drives
one app at BASE_URL with the app's real client and prints one JSON line per
step:

    {"step": NAME, "ok": true|false, "value": ..., "error": "..."}

"value" is what must come out the same under every server (t/corpus.t
compares it with the waitress reference); "error" says why a step failed
(the client's own message). A failed step does not stop the later ones
unless they need its result (they then fail with "skipped: ...").
"""
import json
import subprocess
import sys
import traceback


class Steps:
    def __init__(self):
        self.failed = set()

    def run(self, name, func, needs=()):
        rec = {"step": name, "ok": False, "value": None, "error": None}
        missing = [n for n in needs if n in self.failed]
        if missing:
            rec["error"] = "skipped: %s failed" % ", ".join(missing)
        else:
            try:
                rec["value"] = func()
                rec["ok"] = True
            except Exception as exc:    # the step's failure is the result
                rec["error"] = "%s: %s" % (type(exc).__name__, exc)
                if not isinstance(exc, StepFailed):
                    rec["error"] += "\n" + traceback.format_exc(limit=3)
        if not rec["ok"]:
            self.failed.add(name)
        print(json.dumps(rec), flush=True)
        return rec["value"]


class StepFailed(Exception):
    """A check inside a step did not hold (message says what)."""


def check(cond, msg):
    if not cond:
        raise StepFailed(msg)


def run_cmd(argv, timeout=60, **kw):
    """Runs a real client command; raises StepFailed with its stderr's tail
    when it fails. Returns its stdout (text)."""
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, **kw)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip()
                         .splitlines()[-8:])
        raise StepFailed("%s exited %d: %s" % (" ".join(argv[:3]),
                                               proc.returncode, tail))
    return proc.stdout


def base_url():
    if len(sys.argv) != 2:
        sys.exit("usage: %s BASE_URL" % sys.argv[0])
    return sys.argv[1].rstrip("/")
