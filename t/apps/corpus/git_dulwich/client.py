"""Drives the dulwich git app with the real `git` client:

    python3 client.py http://127.0.0.1:8080/git

clone the empty repository, push a small commit (a Content-Length body),
push a 2 MiB incompressible file with http.postBuffer=65536 (git then
streams the pack with Transfer-Encoding: chunked), clone again and check
both commits and the file's bytes. Commits have fixed dates and authors,
so their ids are the same against every server.
"""
import hashlib
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from corpusclient import Steps, check, run_cmd, base_url   # noqa: E402

url = base_url() + "/repo.git"
work = tempfile.mkdtemp(prefix="corpus-git-")
env = dict(os.environ, HOME=work, GIT_CONFIG_NOSYSTEM="1",
           GIT_TERMINAL_PROMPT="0",
           GIT_AUTHOR_NAME="Corpus", GIT_AUTHOR_EMAIL="corpus@example.invalid",
           GIT_COMMITTER_NAME="Corpus",
           GIT_COMMITTER_EMAIL="corpus@example.invalid",
           GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
           GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
big = random.Random(11).randbytes(2 * 1024 * 1024)


def git(*args, cwd=None):
    return run_cmd(["git"] + list(args), cwd=cwd, env=env)


def clone_empty():
    git("clone", "-q", url, "a", cwd=work)
    return os.path.isdir(os.path.join(work, "a", ".git"))


def push_small():
    a = os.path.join(work, "a")
    git("checkout", "-q", "-b", "main", cwd=a)
    with open(os.path.join(a, "README"), "w") as f:
        f.write("corpus\n")
    git("add", "README", cwd=a)
    git("commit", "-q", "-m", "small", cwd=a)
    git("push", "-q", "origin", "main", cwd=a)
    return git("rev-parse", "HEAD", cwd=a).strip()


def push_large_chunked():
    a = os.path.join(work, "a")
    with open(os.path.join(a, "big.bin"), "wb") as f:
        f.write(big)
    git("add", "big.bin", cwd=a)
    git("commit", "-q", "-m", "large", cwd=a)
    git("-c", "http.postBuffer=65536", "push", "-q", "origin", "main", cwd=a)
    return git("rev-parse", "HEAD", cwd=a).strip()


def clone_verify():
    git("clone", "-q", "-b", "main", url, "b", cwd=work)
    b = os.path.join(work, "b")
    log = git("log", "--format=%H %s", cwd=b).splitlines()
    with open(os.path.join(b, "big.bin"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    check(digest == hashlib.sha256(big).hexdigest(), "big.bin differs")
    git("fsck", "--strict", cwd=b)
    return {"log": log, "big_sha256": digest}


s = Steps()
s.run("clone empty repository", clone_empty)
s.run("push a small commit", push_small, needs=["clone empty repository"])
s.run("push 2 MiB with http.postBuffer=65536 (chunked)", push_large_chunked,
      needs=["push a small commit"])
s.run("clone again and verify", clone_verify,
      needs=["push 2 MiB with http.postBuffer=65536 (chunked)"])
subprocess.run(["rm", "-rf", work])
