"""A small Flask application to try mod_pywsgi with.

Serve it with:  bin/pywsgi-run examples/flask_app.py
or in httpd:    PyWSGIScriptAlias / /path/to/examples/flask_app.py

Routes:
  GET  /               HTML page: Python version, process and thread model
  GET  /hello/<name>   a greeting
  GET  /api/info       the same facts as JSON
  GET  /form           a form; POST /form echoes what was submitted

Needs Flask (Debian: apt-get install python3-flask).
"""

import os
import platform
import sys
import threading

from flask import Flask, jsonify, render_template_string, request

app = Flask(__name__)


def server_model(environ):
    """Name the process/thread model from what the server says in environ.

    The WSGI environ cannot name the MPM, only what it implies (PEP 3333):
    wsgi.multithread is true under worker/event, wsgi.multiprocess when more
    than one child process can run.
    """
    multithread = bool(environ.get("wsgi.multithread"))
    multiprocess = bool(environ.get("wsgi.multiprocess"))
    if multithread and multiprocess:
        model = "worker or event MPM (several processes, several threads each)"
    elif multithread:
        model = "worker or event MPM (one process, several threads)"
    elif multiprocess:
        model = "prefork MPM (several single-threaded processes)"
    else:
        model = "a single process with a single thread"
    return {
        "model": model,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
    }


def facts():
    return {
        "server": "mod_pywsgi",
        "server_software": request.environ.get("SERVER_SOFTWARE", ""),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sys.prefix": sys.prefix,
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        **server_model(request.environ),
    }


HOME = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>mod_pywsgi example</title></head>
<body>
<h1>Served by mod_pywsgi</h1>
<p>This Flask application runs inside Apache httpd, in the Python embedded by
mod_pywsgi.</p>
<ul>
  <li>Python {{ f.python }} ({{ f.python_implementation }}),
      sys.prefix {{ f["sys.prefix"] }}</li>
  <li>Server model: {{ f.model }}
      (wsgi.multithread={{ f["wsgi.multithread"] }},
       wsgi.multiprocess={{ f["wsgi.multiprocess"] }})</li>
  <li>Process {{ f.pid }}, thread {{ f.thread }}</li>
  {% if f.server_software %}
  <li>Server software: {{ f.server_software }}</li>
  {% endif %}
</ul>
<p>Try <a href="{{ url_for('hello', name='world') }}">/hello/world</a>,
<a href="{{ url_for('info') }}">/api/info</a> (JSON) or
<a href="{{ url_for('form') }}">the form</a>.</p>
</body>
</html>
"""

FORM = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>mod_pywsgi form</title></head>
<body>
<h1>Form</h1>
{% if submitted is not none %}
<p>You sent: <strong>{{ submitted }}</strong></p>
{% endif %}
<form method="post" action="{{ url_for('form') }}">
  <label>Message <input name="message" value="{{ submitted or '' }}"></label>
  <button type="submit">Send</button>
</form>
<p><a href="{{ url_for('home') }}">Home</a></p>
</body>
</html>
"""


@app.route("/")
def home():
    return render_template_string(HOME, f=facts())


@app.route("/hello/<name>")
def hello(name):
    # render_template_string autoescapes: the name is shown, never run.
    return render_template_string("<p>Hello, {{ name }}!</p>\n", name=name)


@app.route("/api/info")
def info():
    return jsonify(facts())


@app.route("/form", methods=["GET", "POST"])
def form():
    submitted = None
    if request.method == "POST":
        submitted = request.form.get("message", "")
    return render_template_string(FORM, submitted=submitted)


# mod_pywsgi looks for "application" in a script file by default.
application = app

if __name__ == "__main__":
    # For comparison only: Flask's own development server.
    app.run(host="127.0.0.1", port=5000)
