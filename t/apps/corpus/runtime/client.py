"""Drives the runtime app with python3-requests: each endpoint once, then
numpy, Pillow and asyncio from 6 threads at once (3 rounds), so that
threaded servers run them in parallel threads of one process.

    python3 client.py http://127.0.0.1:8080/runtime
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from corpusclient import Steps, check, base_url   # noqa: E402

url = base_url()


def get_json(path):
    r = requests.get(url + path, timeout=30)
    check(r.status_code == 200, "GET %s: %d %s" % (path, r.status_code,
                                                   r.text[:200]))
    return r.json()


def concurrent():
    paths = ["/numpy", "/pillow", "/asyncio"] * 6
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(get_json, paths))
    by_path = {}
    for path, answer in zip(paths, answers):
        by_path.setdefault(path, []).append(answer)
    for path, seen in by_path.items():
        check(all(a == seen[0] for a in seen),
              "%s answered differently under load: %s" % (path, seen))
    return {p: v[0] for p, v in sorted(by_path.items())}


s = Steps()
s.run("subprocess with sys.executable", lambda: get_json("/subprocess"))
s.run("numpy", lambda: get_json("/numpy"))
s.run("Pillow", lambda: get_json("/pillow"))
s.run("asyncio.run() in a request", lambda: get_json("/asyncio"))
s.run("sys.stdout/sys.stderr as libraries use them", lambda: get_json("/stdio"))
s.run("numpy, Pillow, asyncio from 6 threads", concurrent,
      needs=["numpy", "Pillow", "asyncio.run() in a request"])
