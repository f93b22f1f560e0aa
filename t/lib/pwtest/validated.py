"""The suite's apps a second time, each wrapped in wsgiref.validate.validator.

wsgiref's validator checks both sides of PEP 3333 as they happen: the
environ and wsgi.input/wsgi.errors mod_pywsgi hands over, and what the app
gives back.  A violation is an AssertionError (a 500, logged) or a
WSGIWarning (written to sys.stderr, so to the error log); t/pep3333.t and
t/frameworks.t request these mounts and fail on either.

Mount an app of t/apps as `pwtest.validated:<file>__<callable>`:

    PyWSGIScriptAlias /p3/v/writer pwtest.validated:pep3333__writer

loads t/apps/pep3333.py (under its own module name) and wraps its `writer`;
a "__" inside the file part is a "/": `deploy__ping__application` is
t/apps/deploy/ping.py's `application`.  Apps that are modules elsewhere have
a name in MODULE_APPS.
"""

import importlib
import importlib.util
import os
import sys
import warnings
from wsgiref.validate import WSGIWarning, validator

# Every warning, every time (not once per place): each request's own log
# must show it.
warnings.simplefilter("always", WSGIWarning)

APPS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "apps")

MODULE_APPS = {
    "envdump": ("pwtest.envdump", "application"),
    "django": ("pwsite.wsgi", "application"),   # needs python-path=
}


def _load_script(stem):
    name = f"pwtest_validated_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    relative = stem.replace("__", "/") + ".py"
    path = os.path.join(APPS_DIR, relative)
    if not os.path.isfile(path):
        raise AttributeError(f"no t/apps/{relative}")
    if APPS_DIR not in sys.path:
        sys.path.insert(0, APPS_DIR)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module      # Flask finds its root_path through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def __getattr__(name):
    """PEP 562: `envdump`, or `<file>__<callable>` for t/apps/<file>.py."""
    if name.startswith("__"):
        raise AttributeError(name)
    if name in MODULE_APPS:
        module_name, attr = MODULE_APPS[name]
        app = getattr(importlib.import_module(module_name), attr)
    else:
        stem, sep, attr = name.rpartition("__")
        if not sep or not stem:
            raise AttributeError(f"{name}: expected <file>__<callable>")
        app = getattr(_load_script(stem), attr)
    wrapped = validator(app)
    globals()[name] = wrapped       # one wrapper per name and process
    return wrapped
