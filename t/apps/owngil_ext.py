"""A C extension module with single-phase initialisation, imported at load:
CPython's own _testsinglephase (lib-dynload of 3.12+ builds), made for
exactly this.  It loads in main and in shared-GIL sub-interpreters; an
interpreter with its own GIL refuses it (PEP 684, PEP 489)."""
import _testsinglephase  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"imported %s\n" % _testsinglephase.__name__.encode()]
