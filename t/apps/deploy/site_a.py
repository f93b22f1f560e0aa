"""Virtual host a.deploy.test's app (t/deploy.t, t/conf/pw_deploy.conf.in).

Answers JSON naming itself, the virtual host and the interpreter that ran it,
and a token drawn when this module was imported (a second import in the same
interpreter would draw a new one).
"""

import uuid

from pwtest.deployinfo import respond

LOADED = uuid.uuid4().hex


def application(environ, start_response):
    return respond(start_response, "site-a",
                   loaded=LOADED,
                   server_name=environ["SERVER_NAME"],
                   server_port=environ["SERVER_PORT"],
                   http_host=environ.get("HTTP_HOST"),
                   script_name=environ["SCRIPT_NAME"],
                   path_info=environ.get("PATH_INFO", ""))
