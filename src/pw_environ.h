/*
 * pw_environ.h: the WSGI environ of a request (PEP 3333 "environ
 * Variables"), built straight from request_rec.
 */
#ifndef PW_ENVIRON_H
#define PW_ENVIRON_H

#include "pw_common.h"
#include "pw_config.h"

/* GIL of interp held, once per child and interpreter: interned keys and
 * the template of constant entries, which holds errors (wsgi.errors) and
 * file_wrapper (wsgi.file_wrapper).  -1 with a Python error set. */
int pw_environ_interp_init(int interp, PyObject *errors,
                           PyObject *file_wrapper);

/* GIL of rc->interp held.  A new environ dict for r served by route (new
 * reference), or NULL with a Python error set.  spooled: the size of a
 * chunked body read before the app (pw_input_spooled_length), or -1. */
PyObject *pw_environ_build(request_rec *r, pw_route_t *route,
                           const pw_request_conf_t *rc, PyObject *input,
                           apr_off_t spooled);

#endif /* PW_ENVIRON_H */
