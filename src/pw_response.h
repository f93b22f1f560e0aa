/*
 * pw_response.h: start_response, write() and the response body — from what
 * the application returns to buckets in Apache's output filters.
 */
#ifndef PW_RESPONSE_H
#define PW_RESPONSE_H

#include "pw_common.h"

/* GIL of interp held, once per child and interpreter: ready the types.
 * -1 with a Python error. */
int pw_response_interp_init(int interp);

/* GIL of interp held.  Its wsgi.file_wrapper (borrowed). */
PyObject *pw_response_file_wrapper(int interp);

/* GIL held.  The start_response callable for r (new reference); target
 * names the app in log lines; input is the request's wsgi.input; interp is
 * the interpreter whose GIL is held (the caller's acquire said which). */
PyObject *pw_response_new(request_rec *r, const char *target, PyObject *input,
                          int interp);

/*
 * GIL held.  Send what the app returned, then call its close() (exactly
 * once, whatever happened).  Returns OK, or HTTP_INTERNAL_SERVER_ERROR when
 * the app failed before anything reached the client (the cause is logged).
 * Failures after that abort the connection so the client sees a truncated
 * response, and return OK.
 */
int pw_response_send(PyObject *start_response, PyObject *result);

/* GIL held.  The app raised from its call: log it (PW0301, or PW0312 at
 * info when a broken request body was the cause) and return the status
 * the handler returns, as pw_response_send() would. */
int pw_response_failed(PyObject *start_response);

/*
 * GIL held.  The request is over: later start_response()/write() raise.
 * *bytes_sent is the body bytes taken from the app; returns 1 when the app
 * misbehaved (raised, wrong types, short body), else 0.
 */
int pw_response_finish(PyObject *start_response, apr_off_t *bytes_sent);

#endif /* PW_RESPONSE_H */
