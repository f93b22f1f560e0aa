"""Drives the Bottle app with python3-requests, as a browser would (one
session: cookies kept, redirects followed):

    python3 client.py http://127.0.0.1:8080/bottle

(with waitress: --url-prefix=/bottle, so the app sees the same
SCRIPT_NAME and its redirects the same paths).
"""
import hashlib
import os
import random
import sys

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from corpusclient import Steps, check, base_url   # noqa: E402

url = base_url()
path = url.split("/", 3)[3] if url.count("/") > 2 else ""
script_name = "/" + path if path else ""
web = requests.Session()
upload = random.Random(13).randbytes(300 * 1024)


def get(p, **kw):
    return web.get(url + p, timeout=30, **kw)


def post(p, **kw):
    return web.post(url + p, timeout=30, **kw)


def index():
    r = get("/")
    check(r.status_code == 200, "GET /: %d" % r.status_code)
    return r.text


def needs_login():
    r = get("/me", allow_redirects=False)
    check(r.status_code in (302, 303), "GET /me: %d" % r.status_code)
    return [r.status_code, "/" + r.headers["Location"].split("/", 3)[3]]


def wrong_password():
    r = post("/login", data={"name": "zoë", "password": "nope"})
    return r.status_code


def login():
    r = post("/login", data={"name": "zoë", "password": "pw"})
    check(r.status_code == 200, "login: %d %s" % (r.status_code, r.text[:200]))
    check([h.status_code for h in r.history] == [303],
          "redirects: %s" % [h.status_code for h in r.history])
    data = r.json()
    # Bottle's script_name ends with "/".
    check(data["script_name"] == script_name + "/",
          "script_name %r, want %r" % (data["script_name"], script_name + "/"))
    return {"user": data["user"], "cookie": "user" in web.cookies}


def notes():
    for text in ["first note", "naïve café ☕"]:
        r = post("/notes", data={"text": text})
        check(r.status_code == 200, "note: %d" % r.status_code)
    return r.json()


def upload_file():
    r = post("/upload", files={"data": ("blob.bin", upload)},
             data={"comment": "two hundred"})
    check(r.status_code == 200, "upload: %d" % r.status_code)
    data = r.json()
    check(data["sha256"] == hashlib.sha256(upload).hexdigest(), "sha256")
    return data


def logout():
    r = get("/logout")
    check(r.status_code == 200, "logout: %d" % r.status_code)
    r = get("/notes")
    return [r.status_code, "user" in web.cookies]


def not_found():
    return get("/nowhere").status_code


s = Steps()
s.run("index", index)
s.run("a page that needs login redirects", needs_login)
s.run("wrong password: 403", wrong_password)
s.run("login: signed cookie, 303 redirect", login)
s.run("notes in SQLite (form POST, redirect)", notes, needs=["login: signed cookie, 303 redirect"])
s.run("multipart upload", upload_file)
s.run("logout clears the cookie", logout, needs=["login: signed cookie, 303 redirect"])
s.run("404", not_found)
