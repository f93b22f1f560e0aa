"""Drives the Pyramid app with python3-requests (one session) and curl:

    python3 client.py http://127.0.0.1:8080/pyramid

a form POST refused without the CSRF token, two accepted with it (each a
redirect back to the form, with a flash message and the list kept in the
signed session cookie), a JSON POST with Content-Length and the same one
streamed chunked by curl (WebOb reads it to its end when the server sets
wsgi.input_terminated), and a 1 MiB file, whole and as a Range.
"""
import hashlib
import json
import os
import sys

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from corpusclient import Steps, check, run_cmd, base_url   # noqa: E402

url = base_url()
web = requests.Session()
doc = {"values": list(range(2000)), "label": "x" * 5000}
payload = json.dumps(doc)


def csrf_refused():
    r = web.post(url + "/form", data={"item": "no token"}, timeout=30)
    return r.status_code


def form_posts():
    token = web.get(url + "/form", timeout=30).json()["csrf"]
    seen = []
    for item in ["apple", "pear"]:
        r = web.post(url + "/form", data={"item": item, "csrf_token": token},
                     timeout=30)
        check(r.status_code == 200, "POST: %d" % r.status_code)
        hist = [(h.status_code, h.headers["Location"].replace(url, ""))
                for h in r.history]
        seen.append([hist, r.json()["flash"]])
    return {"posts": seen, "items": r.json()["items"]}


def json_post():
    r = web.post(url + "/echo", data=payload, timeout=30,
                 headers={"Content-Type": "application/json"})
    check(r.status_code == 200, "POST /echo: %d %s" % (r.status_code,
                                                      r.text[:200]))
    return r.json()


def json_post_chunked():
    out = run_cmd(["curl", "-sS", "-f", "-T", "-", "-X", "POST",
                   "-H", "Content-Type: application/json", url + "/echo"],
                  input=payload)
    data = json.loads(out)
    data.pop("content_length")    # may differ by design (buffered or not)
    return data


def file_whole_and_range():
    r = web.get(url + "/blob", timeout=30)
    check(r.status_code == 200, "GET /blob: %d" % r.status_code)
    want = web.get(url + "/blob.sha256", timeout=30).text
    check(hashlib.sha256(r.content).hexdigest() == want, "sha256 differs")
    part = web.get(url + "/blob", headers={"Range": "bytes=1000-1009"},
                   timeout=30)
    return {"length": len(r.content), "range_status": part.status_code,
            "range": list(part.content)}


s = Steps()
s.run("form POST without the CSRF token: 400", csrf_refused)
s.run("form POSTs with CSRF: redirect, flash, session", form_posts)
s.run("JSON POST", json_post)
s.run("JSON POST streamed chunked (curl -T -)", json_post_chunked)
s.run("FileResponse: whole file and a Range", file_whole_and_range)
