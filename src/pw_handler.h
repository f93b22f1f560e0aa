/*
 * pw_handler.h: the request hooks — which URLs are ours, and serving one.
 */
#ifndef PW_HANDLER_H
#define PW_HANDLER_H

#include "pw_common.h"

void pw_handler_register_hooks(apr_pool_t *p);

/* GIL of interp held, once per interpreter before its first request: the
 * request path's own state in it (wsgi.input's type, start_response's,
 * the environ template with errors as wsgi.errors).  0, or -1 with a
 * Python exception set. */
int pw_handler_interp_init(int interp, PyObject *errors);

/* GIL of main held, at child exit, before Python ends: the ASGI apps'
 * lifespan shutdown and their loop thread (ASGI runs in main only). */
void pw_handler_interp_fini(int interp, server_rec *s);

#endif /* PW_HANDLER_H */
