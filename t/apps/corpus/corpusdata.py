"""Where a corpus app keeps its data (t/apps/corpus/*).

CORPUS_DATA names a directory the server's user can write (the test makes
one per server and per app family; under Apache the children run as
nobody). Without it, a directory under the system's temporary directory is
used, so that a reader can simply run an app:

    cd t/apps/corpus/bottle_app && python3 -m waitress --port=8080 app:application
"""
import os
import tempfile


def data_dir(name):
    base = os.environ.get("CORPUS_DATA") or os.path.join(
        tempfile.gettempdir(), "pywsgi-corpus-%d" % os.getuid())
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=True)
    return path
