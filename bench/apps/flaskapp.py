"""flask: a one-route Flask application returning "Hello, world!"."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello, world!"


application = app
