"""A small Flask app for t/flask.t, mounted at /flask."""

from flask import Flask, jsonify, request, url_for

application = Flask(__name__)


@application.route("/")
def index():
    return "flask index\n"


@application.route("/hello/<name>")
def hello(name):
    return f"hello {name}\n"


@application.route("/query")
def query():
    return jsonify(args=request.args.to_dict(flat=False))


@application.route("/form", methods=["POST"])
def form():
    return jsonify(mimetype=request.mimetype,
                   form=request.form.to_dict(flat=False))


@application.route("/json", methods=["POST"])
def json_post():
    data = request.get_json()
    return jsonify(received=data, keys=sorted(data))


@application.route("/urlfor")
def urlfor():
    # Flask builds URLs from SCRIPT_NAME: this shows the mount point.
    return url_for("hello", name="x")


if __name__ == "__main__":
    application.run()
