"""Radicale (Debian's radicale), a CalDAV/CardDAV server, as a WSGI app.
Users alice (password "secret") and mallory ("x"), from a plain htpasswd
file; each user owns /<user>/ only. Storage: corpusdata.data_dir("radicale").

Radicale reads the user from the Authorization header, so under mod_pywsgi
the mount needs `PyWSGIPassAuthorization On` (mod_wsgi:
WSGIPassAuthorization On).

    PYTHONPATH=.. python3 -m waitress --port=8080 app:application
"""
import os

import radicale
from radicale import config

import corpusdata

_dir = corpusdata.data_dir("radicale")
_users = os.path.join(_dir, "users")
with open(_users, "w") as f:
    f.write("alice:secret\nmallory:x\n")
_configuration = config.load()
_configuration.update({
    "auth": {"type": "htpasswd", "htpasswd_filename": _users,
             "htpasswd_encryption": "plain"},
    "rights": {"type": "owner_only"},
    "storage": {"filesystem_folder":
                os.path.join(_dir, "collections")},
    "logging": {"level": "warning", "mask_passwords": "True"},
}, "corpus", privileged=True)

application = radicale.Application(_configuration)
