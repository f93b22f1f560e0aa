/*
 * pw_interp.h: the Python interpreters of a child and the GIL.  The only
 * place that starts and finalises Python and that takes or drops the GIL
 * for a request (Py_BEGIN_ALLOW_THREADS around blocking calls excepted).
 *
 * Interpreter 0 is "main", the one every C extension supports; named
 * sub-interpreters (PyWSGIInterpreter NAME) get the next indexes.
 */
#ifndef PW_INTERP_H
#define PW_INTERP_H

#include "pw_common.h"

#define PW_MAX_INTERPS 16

/* pre_config: forget the previous configuration's interpreter names. */
void pw_interp_pre_config(void);

/* Config time, no Python: the index of interpreter name ("main" is 0),
 * declaring it if new.  -1 and *err when the name is bad or too many. */
int pw_interp_declare(const char *name, const char **err);

/* Its name, for log lines. */
const char *pw_interp_name(int interp);

/* child_init: start Python and every declared interpreter in this child.
 * Called without the GIL; returns without it.  A failure is logged (PW0101)
 * and requests then get 500. */
void pw_interp_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * Take the GIL for this thread in interpreter interp, creating the thread's
 * state for it on first use and keeping it for the thread's life; *waited
 * is how long the GIL took.  Returns NULL (GIL not taken) when that
 * interpreter could not be started in this child.
 */
PyThreadState *pw_interp_acquire(int interp, apr_interval_time_t *waited);

/* The interpreter whose GIL this thread holds (its last one). */
int pw_interp_current(void);

/* Give the GIL back; tstate is what pw_interp_acquire() returned. */
void pw_interp_release(PyThreadState *tstate);

#endif /* PW_INTERP_H */
