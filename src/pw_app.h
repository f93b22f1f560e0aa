/*
 * pw_app.h: loading a configured WSGI application (a pw_target_t of
 * pw_config.h) in a child, and keeping its callable per interpreter.
 */
#ifndef PW_APP_H
#define PW_APP_H

#include "pw_common.h"
#include "pw_config.h"

/* child_init, before any app is loaded: room for the n declared targets,
 * and the load lock.  No GIL. */
void pw_app_child_init(apr_pool_t *pchild, int n);

/*
 * The app's callable in interpreter interp, loading it on first use (and
 * again when reload is set and its file changed).  The GIL of interp held
 * (released while waiting for another thread's load).  Returns a new
 * reference, or NULL after logging why the app could not be loaded.  r may
 * be NULL (preloading at child start); then s is used for the log.
 */
PyObject *pw_app_callable(const pw_target_t *app, int interp, int reload,
                          request_rec *r, server_rec *s);

/* The target of a file served by handler (path: r->filename), callable
 * "application", made on its first request in this child and kept.  No GIL
 * needed. */
const pw_target_t *pw_app_file_target(const char *path);

/* The interpreter of the file's own (PyWSGIInterpreter %{RESOURCE}) for a
 * target of pw_app_file_target(): an index reserved in this child on first
 * use (and *name, "file:PATH"), or -1 when the child has none left. */
int pw_app_file_interp(const pw_target_t *app, const char **name);

#endif /* PW_APP_H */
