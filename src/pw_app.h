/*
 * pw_app.h: a WSGI application as configured (a script file or a
 * module:callable) and its loaded callable in this child.
 */
#ifndef PW_APP_H
#define PW_APP_H

#include "pw_common.h"
#include "pw_interp.h"

typedef enum {
    PW_TARGET_SCRIPT, /* /srv/app/app.py, callable "application" */
    PW_TARGET_MODULE  /* package.module:callable, as gunicorn writes it */
} pw_target_kind_t;

typedef struct pw_app_t {
    const char *target; /* as written in the config, for log lines */
    pw_target_kind_t kind;
    const char *path;        /* script file, or dotted module name */
    const char *callable;    /* attribute, may be dotted */
    int call_factory;        /* "create_app()": call it once, no args */
    const char *module_name; /* sys.modules key of a script file */
    const char *python_path; /* python-path=, "DIR:DIR", or NULL */

    /* This child's state, per interpreter; touched with its GIL held. */
    PyObject *obj[PW_MAX_INTERPS];    /* the WSGI callable, once loaded */
    apr_time_t mtime[PW_MAX_INTERPS]; /* of the file, for PyWSGIReload */
    const char *file[PW_MAX_INTERPS]; /* the module's file; malloc'ed */
} pw_app_t;

/*
 * Parse TARGET (and an optional callable= value) at configuration time.
 * The same target named twice gives the same pw_app_t, so it is loaded once
 * per child.  Returns NULL and sets *err on a malformed target.  No GIL.
 */
pw_app_t *pw_app_declare(apr_pool_t *pconf, const char *target,
                         const char *callable, const char *python_path,
                         const char **err);

/* child_init: create the load lock.  No GIL. */
void pw_app_child_init(apr_pool_t *pchild);

/*
 * The app's callable in interpreter interp, loading it on first use (and
 * again when reload is set and its file changed).  The GIL of interp held
 * (released while waiting for another thread's load).  Returns a new
 * reference, or NULL after logging why the app could not be loaded.  r may
 * be NULL (preloading at child start); then s is used for the log.
 */
PyObject *pw_app_callable(pw_app_t *app, int interp, int reload, request_rec *r,
                          server_rec *s);

#endif /* PW_APP_H */
