"""Drives Django's admin with python3-requests as a browser would (one
session: cookies kept, CSRF token sent back from the form):

    python3 client.py http://127.0.0.1:8080/django

log in (CSRF, a session cookie), be refused without the CSRF token, add a
Document with a 20 MiB file through the admin's form (multipart; Django
spools it to FILE_UPLOAD_TEMP_DIR), find it in the change list, read it
back and log out.
"""
import hashlib
import os
import random
import re
import sys

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from corpusclient import Steps, check, base_url   # noqa: E402

url = base_url()
prefix = "/" + url.split("/", 3)[3] if url.count("/") > 2 else ""
web = requests.Session()
upload = random.Random(14).randbytes(20 * 1024 * 1024)
state = {}


def csrf_from(page):
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    check(m, "no csrfmiddlewaretoken in the form")
    return m.group(1)


def login_refused_without_csrf():
    r = requests.post(url + "/admin/login/", timeout=30,
                      data={"username": "admin", "password": "corpus-pw"})
    return r.status_code


def login():
    r = web.get(url + "/admin/login/?next=%s/admin/" % prefix, timeout=30)
    check(r.status_code == 200, "login page: %d" % r.status_code)
    r = web.post(url + "/admin/login/?next=%s/admin/" % prefix, timeout=30,
                 data={"username": "admin", "password": "corpus-pw",
                       "csrfmiddlewaretoken": csrf_from(r.text),
                       "next": prefix + "/admin/"},
                 headers={"Referer": url + "/admin/login/"})
    check(r.status_code == 200, "after login: %d" % r.status_code)
    check("Site administration" in r.text, "not the admin index: %s"
          % r.text[:300])
    return {"redirects": [h.status_code for h in r.history],
            "session": "sessionid" in web.cookies,
            "landed": r.url.replace(url, "")}


def upload_20mib():
    add = url + "/admin/docs/document/add/"
    r = web.get(add, timeout=30)
    check(r.status_code == 200, "add page: %d" % r.status_code)
    r = web.post(add, timeout=120, allow_redirects=False,
                 data={"title": "twenty MiB", "_save": "Save",
                       "csrfmiddlewaretoken": csrf_from(r.text)},
                 files={"file": ("big.bin", upload,
                                 "application/octet-stream")},
                 headers={"Referer": add})
    check(r.status_code == 302, "POST add: %d %s" % (r.status_code,
                                                     r.text[:500]))
    return r.headers["Location"].replace(url, "")


def change_list():
    r = web.get(url + "/admin/docs/document/", timeout=30)
    check(r.status_code == 200, "change list: %d" % r.status_code)
    ids = re.findall(r'/admin/docs/document/(\d+)/change/', r.text)
    check(ids, "no document in the change list")
    state["id"] = ids[0]
    return {"twenty MiB": "twenty MiB" in r.text,
            "TemporaryUploadedFile": "TemporaryUploadedFile" in r.text}


def read_back():
    r = web.get(url + "/docs/%s/info" % state["id"], timeout=30)
    check(r.status_code == 200, "info: %d" % r.status_code)
    info = r.json()
    check(info["sha256"] == hashlib.sha256(upload).hexdigest(),
          "stored file differs: %s" % info)
    r = web.get(url + info["url"], timeout=60)
    check(r.status_code == 200, "media GET: %d" % r.status_code)
    check(hashlib.sha256(r.content).hexdigest() == info["sha256"],
          "downloaded file differs")
    del info["url"]    # the stored name may get a suffix
    return info


def logout():
    r = web.get(url + "/admin/logout/", timeout=30)
    check(r.status_code == 200, "logout: %d" % r.status_code)
    r = web.get(url + "/admin/", timeout=30, allow_redirects=False)
    return [r.status_code, r.headers.get("Location", "").replace(url, "")]


s = Steps()
s.run("login without the CSRF token: 403", login_refused_without_csrf)
s.run("login (CSRF, session cookie)", login)
s.run("admin add form: 20 MiB upload", upload_20mib,
      needs=["login (CSRF, session cookie)"])
s.run("change list shows it, spooled to disk", change_list,
      needs=["admin add form: 20 MiB upload"])
s.run("stored and served bytes match", read_back,
      needs=["change list shows it, spooled to disk"])
s.run("logout ends the session", logout,
      needs=["login (CSRF, session cookie)"])
