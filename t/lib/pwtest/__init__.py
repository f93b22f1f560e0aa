"""Helpers for mod_pywsgi's test apps (found through PyWSGIPythonPath t/lib)."""
