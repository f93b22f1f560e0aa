"""mod_pywsgi as Apache's authentication provider (PyWSGIAuthScript), for
t/apache.t.  Users:

  alice / alicepw   member of "admins" and "staff"
  bob   / bobpw     member of "staff"
  boom              check_password and get_realm_hash raise
  weird             check_password answers a str, get_realm_hash an int
  envdump           any password; the environ is logged as one JSON line
                    "PWFEAT-AUTHENV {...}" (print -> error log)
  where             password "main" is right in the main interpreter, "sub"
                    in a named one
  grpboom           password grpboom; groups_for_user raises for it
  grpweird          password grpweird; groups_for_user answers an int
  spin              check_password never returns (t/faults.t:
                    PyWSGIRequestTimeout must stop it)
Anyone else is unknown (None).
"""
import hashlib
import json
import sys

USERS = {"alice": "alicepw", "bob": "bobpw"}
GROUPS = {"alice": ["admins", "staff"], "bob": ["staff"]}


def _interpreter():
    try:
        import _xxsubinterpreters as xx
        return "main" if xx.get_current() == xx.get_main() else "sub"
    except ImportError:  # pragma: no cover - every Debian 12 Python has it
        return "?"


def check_password(environ, user, password):
    if user == "spin":
        while True:
            pass
    if user == "boom":
        raise RuntimeError("the user database is down")
    if user == "weird":
        return "yes"
    if user == "envdump":
        keep = {k: v for k, v in environ.items() if isinstance(v, str)}
        print("PWFEAT-AUTHENV " + json.dumps(keep, sort_keys=True))
        sys.stdout.flush()
        return True
    if user == "where":
        return password == _interpreter()
    if user in ("grpboom", "grpweird"):
        return password == user
    if user not in USERS:
        return None
    return USERS[user] == password


def get_realm_hash(environ, user, realm):
    if user == "boom":
        raise RuntimeError("the user database is down")
    if user == "weird":
        return 42
    if user not in USERS:
        return None
    return hashlib.md5(("%s:%s:%s" % (user, realm, USERS[user]))
                       .encode()).hexdigest()


def groups_for_user(environ, user):
    if user == "grpboom":
        raise LookupError("no group service")
    if user == "grpweird":
        return 7
    return GROUPS.get(user, [])
