"""An app of its own that imports a module named clash_mod from its own
directory -- so does t/apps/deploy/clash_one/app.py, with another clash_mod.

The script's directory is put in front of sys.path when it is loaded, so:
in two named interpreters each app finds its own clash_mod; in one
interpreter (main) the second app finds the first one's already in
sys.modules -- the first import wins.  t/deploy.t checks both.
"""

import os

import clash_mod
from pwtest.deployinfo import respond

APP = os.path.basename(os.path.dirname(os.path.abspath(__file__)))


def application(environ, start_response):
    return respond(start_response, APP,
                   clash_mod=clash_mod.WHO,
                   clash_mod_loaded=clash_mod.LOADED,
                   clash_mod_file=clash_mod.__file__)
