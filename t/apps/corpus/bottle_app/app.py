"""A small Bottle app (Debian's python3-bottle): a login form that sets a
signed cookie and redirects, a page that needs the cookie, notes kept in
SQLite (shared by every process), a multipart upload, logout, a 404.

    PYTHONPATH=.. python3 -m waitress --port=8080 app:application
"""
import hashlib
import os
import sqlite3

import bottle

import corpusdata

SECRET = "corpus-test-secret"
_db = os.path.join(corpusdata.data_dir("bottle"), "notes.sqlite3")

app = bottle.Bottle()


def db():
    conn = sqlite3.connect(_db, timeout=10)
    conn.execute("CREATE TABLE IF NOT EXISTS notes"
                 " (id INTEGER PRIMARY KEY, user TEXT, text TEXT)")
    return conn


def user():
    return bottle.request.get_cookie("user", secret=SECRET)


@app.get("/")
def index():
    return "bottle corpus\n"


@app.get("/login")
def login_form():
    return ('<form method="post" action="%s">'
            '<input name="name"><input name="password" type="password">'
            '</form>' % app.get_url("/login"))


@app.post("/login")
def login():
    name = bottle.request.forms.getunicode("name")
    if bottle.request.forms.get("password") != "pw":
        bottle.abort(403, "wrong password")
    bottle.response.set_cookie("user", name, secret=SECRET, httponly=True,
                               path=bottle.request.script_name)
    bottle.redirect(app.get_url("/me"), 303)


@app.get("/me")
def me():
    name = user()
    if name is None:
        bottle.redirect(app.get_url("/login"))
    return {"user": name, "script_name": bottle.request.script_name}


@app.post("/notes")
def add_note():
    name = user() or bottle.abort(401, "log in first")
    with db() as conn:
        conn.execute("INSERT INTO notes (user, text) VALUES (?, ?)",
                     (name, bottle.request.forms.getunicode("text")))
    bottle.redirect(app.get_url("/notes"), 303)


@app.get("/notes")
def notes():
    name = user() or bottle.abort(401, "log in first")
    with db() as conn:
        rows = conn.execute("SELECT text FROM notes WHERE user = ?"
                            " ORDER BY id", (name,)).fetchall()
    return {"notes": [r[0] for r in rows]}


@app.post("/upload")
def upload():
    f = bottle.request.files.get("data")
    body = f.file.read()
    return {"filename": f.raw_filename, "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "comment": bottle.request.forms.comment}


@app.get("/logout")
def logout():
    bottle.response.delete_cookie("user", path=bottle.request.script_name)
    bottle.redirect(app.get_url("/"))


application = app
