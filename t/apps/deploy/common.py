"""One app mounted in several places (both virtual hosts, a URL prefix of the
main server, a named interpreter) by t/conf/pw_deploy.conf.in.

LOADED is drawn when the module is imported: every mount in the same child
and interpreter must report the same one (the app is loaded once), a named
interpreter its own.
"""

import uuid

from pwtest.deployinfo import respond

LOADED = uuid.uuid4().hex


def application(environ, start_response):
    return respond(start_response, "common", loaded=LOADED,
                   server_name=environ["SERVER_NAME"],
                   script_name=environ["SCRIPT_NAME"])
