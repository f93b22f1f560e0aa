"""git's smart HTTP protocol served by dulwich (Debian's python3-dulwich),
as a WSGI app: `git clone` / `git push` http://host/<mount>/repo.git

The bare repository lives in corpusdata.data_dir("git") and is created
empty on first import. make_wsgi_chain is dulwich's own recommended stack
(GunzipFilter + LimitedInputFilter); handlers include receive-pack, so
pushes are allowed (no authentication: a test fixture).

    PYTHONPATH=.. python3 -m waitress --port=8080 app:application
"""
import os

from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import make_wsgi_chain

import corpusdata

_path = os.path.join(corpusdata.data_dir("git"), "repo.git")
if not os.path.exists(os.path.join(_path, "HEAD")):
    os.makedirs(_path, exist_ok=True)
    Repo.init_bare(_path)
_repo = Repo(_path)

application = make_wsgi_chain(DictBackend({"/repo.git": _repo}))
