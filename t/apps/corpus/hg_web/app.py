"""A Mercurial repository served by hgweb (Debian's mercurial), the WSGI app
behind `hg serve`: `hg clone` / `hg push` http://host/<mount>/

The repository lives in corpusdata.data_dir("hg") and is created empty on
first import; pushing over plain HTTP by anyone is allowed (a test fixture).

    PYTHONPATH=.. python3 -m waitress --port=8080 app:application
"""
import os

from mercurial import hg, ui as uimod
from mercurial.hgweb import hgweb

import corpusdata

_path = os.path.join(corpusdata.data_dir("hg"), "repo")
_ui = uimod.ui.load()
_ui.setconfig(b"web", b"allow-push", b"*", b"corpus")
_ui.setconfig(b"web", b"push_ssl", b"false", b"corpus")
_ui.setconfig(b"ui", b"username", b"corpus <corpus@example.invalid>",
              b"corpus")
if not os.path.exists(os.path.join(_path, ".hg")):
    hg.repository(_ui, _path.encode(), create=True)

application = hgweb(_path.encode(), name=b"corpus", baseui=_ui)
