"""A Flask app for t/frameworks.t: forms, JSON, multipart upload, streaming,
send_file and errors.  Mounted at /p3/flask, and wrapped in
wsgiref.validate at /p3/v/flask (t/lib/pwtest/validated.py).

Run it alone:  python3 t/apps/flask_p3.py  (Flask's development server).
"""

import hashlib
import os
import time

from flask import (Flask, Response, abort, jsonify, render_template_string,
                   request, send_file, stream_with_context, url_for)

HERE = os.path.dirname(os.path.abspath(__file__))
application = Flask(__name__)

FORM = """<!doctype html>
<form method="post" action="{{ url_for('form') }}">
<input name="name"><input name="colour"><button>send</button>
</form>
"""


@application.route("/")
def index():
    return "flask p3 index\n"


@application.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "GET":
        return render_template_string(FORM)
    if not request.form.get("name"):
        abort(400, "name is required")
    return jsonify(name=request.form["name"],
                   colours=request.form.getlist("colour"),
                   mimetype=request.mimetype)


@application.route("/json", methods=["POST"])
def json_echo():
    data = request.get_json()      # 400 (Bad Request) when not JSON
    return jsonify(received=data, type=type(data).__name__), 201


@application.route("/upload", methods=["POST"])
def upload():
    files = {}
    for field, f in request.files.items(multi=True):
        data = f.read()
        files[field] = {"filename": f.filename, "length": len(data),
                        "md5": hashlib.md5(data).hexdigest(),
                        "mimetype": f.mimetype}
    return jsonify(files=files, form=request.form.to_dict(flat=False))


@application.route("/stream")
def stream():
    count = request.args.get("n", 3, type=int)
    pause = request.args.get("sleep", 0.0, type=float)

    def generate():
        # stream_with_context: `request` is still usable in here, after
        # the view returned.
        for i in range(count):
            if i and pause:
                time.sleep(pause)
            yield f"{request.path} part {i} {time.time():.6f}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@application.route("/file")
def file():
    # wsgi.file_wrapper under the hood (a FILE bucket in mod_pywsgi).
    return send_file(os.path.join(HERE, "flask_p3.py"),
                     mimetype="text/x-python", conditional=True)


@application.route("/abort")
def do_abort():
    abort(400)


@application.route("/boom")
def boom():
    raise RuntimeError("PWTEST flask boom")


@application.route("/urlfor")
def urlfor():
    return url_for("stream", n=2)


if __name__ == "__main__":
    application.run()
