"""Drives the hgweb app with the real `hg` client:

    python3 client.py http://127.0.0.1:8080/hg

clone the empty repository, commit and push a text file and a 1 MiB
incompressible file, clone again and check the log and the bytes, and read
the repository's page as a browser would (hgweb's HTML). Commits have fixed
dates and users, so their ids are the same against every server.
"""
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from corpusclient import Steps, check, run_cmd, base_url   # noqa: E402

url = base_url() + "/"
work = tempfile.mkdtemp(prefix="corpus-hg-")
env = dict(os.environ, HOME=work, HGRCPATH="", HGPLAIN="1",
           HGUSER="Corpus <corpus@example.invalid>", HGENCODING="utf-8")
big = random.Random(12).randbytes(1024 * 1024)


def hg(*args, cwd=None):
    return run_cmd(["hg"] + list(args), cwd=cwd, env=env)


def clone_empty():
    hg("clone", "-q", url, "a", cwd=work)
    return os.path.isdir(os.path.join(work, "a", ".hg"))


def commit_push():
    a = os.path.join(work, "a")
    with open(os.path.join(a, "README"), "w") as f:
        f.write("corpus\n")
    with open(os.path.join(a, "big.bin"), "wb") as f:
        f.write(big)
    hg("add", "-q", "README", "big.bin", cwd=a)
    hg("commit", "-q", "-m", "first", "-d", "2026-01-01 00:00 +0000", cwd=a)
    with open(os.path.join(a, "README"), "a") as f:
        f.write("second line\n")
    hg("commit", "-q", "-m", "second", "-d", "2026-01-02 00:00 +0000", cwd=a)
    hg("push", "-q", url, cwd=a)
    return hg("log", "-r", "tip", "-T", "{node}", cwd=a)


def clone_verify():
    hg("clone", "-q", url, "b", cwd=work)
    b = os.path.join(work, "b")
    log = hg("log", "-T", "{node} {desc}\n", cwd=b).splitlines()
    with open(os.path.join(b, "big.bin"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    check(digest == hashlib.sha256(big).hexdigest(), "big.bin differs")
    hg("verify", "-q", cwd=b)
    return {"log": log, "big_sha256": digest}


def web_page():
    with urllib.request.urlopen(url + "log", timeout=30) as r:
        page = r.read().decode()
        check(r.status == 200, "status %d" % r.status)
    return {"second": "second" in page, "first": "first" in page}


s = Steps()
s.run("clone empty repository", clone_empty)
s.run("commit and push 1 MiB", commit_push, needs=["clone empty repository"])
s.run("clone again and verify", clone_verify, needs=["commit and push 1 MiB"])
s.run("hgweb log page", web_page)
subprocess.run(["rm", "-rf", work])
