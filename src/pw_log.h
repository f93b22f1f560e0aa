/*
 * pw_log.h: Python's output into Apache's error log — exceptions with their
 * tracebacks, sys.stdout / sys.stderr, wsgi.errors.
 */
#ifndef PW_LOG_H
#define PW_LOG_H

#include "pw_common.h"
#include "pw_interp.h"

/* GIL held, exc taken (no error pending).  Is exc CPython refusing, in an
 * interpreter with its own GIL (check_multi_interp_extensions), a C
 * extension with single-phase init: ImportError "module NAME does not
 * support loading in subinterpreters"?  Then 1, and NAME in name (at most
 * size bytes with its NUL) unless name is NULL; else 0.  exc is left as it
 * is; no error is left pending. */
int pw_log_refused_extension(PyObject *exc, char *name, apr_size_t size);

/*
 * GIL held.  Log the current Python exception and clear it: one line
 * "<fmt...>: Type: message" at error level, then its traceback, one line
 * each, as "PW0303: ...".  r may be NULL; then s is used.
 */
void pw_log_exception(request_rec *r, server_rec *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* GIL held.  One line about r at level, formatted now and written with
 * the GIL released (a piped ErrorLog may block). */
void pw_log_rline(request_rec *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* GIL held, once per child after Python started: sys.stdout -> warn,
 * sys.stderr -> error.  Returns -1 with a Python error set on failure. */
int pw_log_init(server_rec *s, int interp);

/* GIL held, after an app was loaded: if it imported logging, make
 * logging.lastResort the level-keeping Apache handler. */
void pw_log_logging_hook(void);

/* GIL held.  The wsgi.errors stream of an interpreter (borrowed). */
PyObject *pw_log_errors(int interp);

/* GIL held: tie this thread's Python log lines to r (NULL: none), after
 * logging what it left unfinished for the request before; returns that
 * request, for a nested request to restore. */
request_rec *pw_log_set_request(request_rec *r);

/* GIL of main held, at child exit: flush what main's streams buffer. */
void pw_log_fini(void);

#endif /* PW_LOG_H */
