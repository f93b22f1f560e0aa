/*
 * pw_environ.h: the WSGI environ of a request (PEP 3333 "environ
 * Variables"), built straight from request_rec.
 */
#ifndef PW_ENVIRON_H
#define PW_ENVIRON_H

#include "pw_common.h"
#include "pw_config.h"

/* GIL held, once per child: interned keys and the template of constant
 * entries.  -1 with a Python error set. */
int pw_environ_interp_init(server_rec *s, int interp);

/* GIL held.  A new environ dict for r served by route (new reference), or
 * NULL with a Python error set. */
PyObject *pw_environ_build(request_rec *r, pw_route_t *route, int interp,
                           PyObject *input);

#endif /* PW_ENVIRON_H */
