"""Flask's development server for the benchmark: werkzeug run_simple(threaded=True), request log off.

usage: /usr/bin/python3 devserver.py PORT MODULE   (MODULE is an app module in this directory)
"""
import importlib
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from werkzeug.serving import run_simple  # noqa: E402

port, module = int(sys.argv[1]), sys.argv[2]
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log, like the other servers
app = importlib.import_module(module).application
run_simple("127.0.0.1", port, app, threaded=True)
