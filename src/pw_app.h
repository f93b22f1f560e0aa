/*
 * pw_app.h: a WSGI application as configured (a script file or a
 * module:callable) and its loaded callable in this child.
 */
#ifndef PW_APP_H
#define PW_APP_H

#include "pw_common.h"

typedef enum {
    PW_TARGET_SCRIPT,   /* /srv/app/app.py, callable "application" */
    PW_TARGET_MODULE    /* package.module:callable, as gunicorn writes it */
} pw_target_kind_t;

typedef struct pw_app_t {
    const char *target;        /* as written in the config, for log lines */
    pw_target_kind_t kind;
    const char *path;          /* script file, or dotted module name */
    const char *callable;      /* attribute, may be dotted */
    int call_factory;          /* "create_app()": call it once, no args */
    const char *module_name;   /* sys.modules key of a script file */

    /* This child's state; touched only with the GIL held. */
    PyObject *obj;             /* the WSGI callable, once loaded */
} pw_app_t;

/*
 * Parse TARGET (and an optional callable= value) at configuration time.
 * The same target named twice gives the same pw_app_t, so it is loaded once
 * per child.  Returns NULL and sets *err on a malformed target.  No GIL.
 */
pw_app_t *pw_app_declare(apr_pool_t *pconf, const char *target,
                         const char *callable, const char **err);

/* child_init: create the load lock.  No GIL. */
void pw_app_child_init(apr_pool_t *pchild);

/*
 * The app's callable, loading it on first use.  GIL held (may release it
 * while waiting for another thread's load).  Returns a borrowed reference,
 * or NULL after logging why the app could not be loaded.
 */
PyObject *pw_app_callable(pw_app_t *app, request_rec *r);

#endif /* PW_APP_H */
