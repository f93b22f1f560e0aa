/*
 * pw_input.h: wsgi.input, the request body as a Python binary stream.
 */
#ifndef PW_INPUT_H
#define PW_INPUT_H

#include "pw_common.h"

/* GIL of interp held, once per interpreter: make its Input type. -1 with
 * a Python error. */
int pw_input_interp_init(int interp);

/* A chunked request body read to its end (pw_input_spool). */
typedef struct pw_spool pw_spool_t;

/*
 * No GIL, before the app runs (PyWSGIChunkedRequest Buffer).  Reads r's
 * chunked body to its end: the first mem_max bytes in memory, the rest in
 * an unlinked temporary file in tmpdir (NULL: the system's).  Returns OK
 * with *spool set, or what the handler returns instead: AP_FILTER_ERROR
 * when Apache answered already (413 past LimitRequestBody, 400), another
 * HTTP status otherwise (logged).
 */
int pw_input_spool(request_rec *r, apr_size_t mem_max, const char *tmpdir,
                   pw_spool_t **spool);

/* GIL of interp held.  A new wsgi.input reading r's body, or the spooled
 * one when spool is not NULL (new reference). */
PyObject *pw_input_new(request_rec *r, pw_spool_t *spool, int interp);

/* GIL held.  The size of a spooled body (its CONTENT_LENGTH), or -1. */
apr_off_t pw_input_spooled_length(PyObject *input);

/*
 * GIL held.  The request is over: later reads raise.  Returns the HTTP
 * status a failed body read maps to (413 past LimitRequestBody, 400 for a
 * malformed or cut-off body) — AP_FILTER_ERROR when Apache already sent
 * that error response —, or 0 when reading went well.  *bytes_read is how
 * much of the body the app read.
 */
int pw_input_finish(PyObject *input, apr_off_t *bytes_read);

/* No GIL needed.  The HTTP status of a failed body read so far, or 0. */
int pw_input_error(PyObject *input);

/* No GIL needed.  Did a failed read make Apache answer already?  Then
 * nothing of the app's response may follow. */
int pw_input_error_sent(PyObject *input);

#endif /* PW_INPUT_H */
