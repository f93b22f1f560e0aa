"""Script-file form of the environ dump (see t/lib/pwtest/envdump.py).

Imports its helper from t/lib, which is on sys.path through PyWSGIPythonPath.
"""

from pwtest.envdump import make_app

application = make_app("script")

# Mounted with `callable=alt_application`.
alt_application = make_app("script-alt")
