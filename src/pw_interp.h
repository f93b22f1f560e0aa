/*
 * pw_interp.h: the Python interpreter of a child and the GIL.  The only
 * place that starts and finalises Python and that takes or drops the GIL
 * for a request (Py_BEGIN_ALLOW_THREADS around blocking calls excepted).
 */
#ifndef PW_INTERP_H
#define PW_INTERP_H

#include "pw_common.h"

/* child_init: start Python in this child.  Called without the GIL; returns
 * without it.  A failure is logged (PW0101) and requests then get 500. */
void pw_interp_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * Take the GIL for this thread, creating its thread state on first use and
 * keeping it for the thread's life; *waited is how long the GIL took.
 * Returns NULL (GIL not taken) when
 * Python could not be started in this child.
 */
PyThreadState *pw_interp_acquire(apr_interval_time_t *waited);

/* Give the GIL back; tstate is what pw_interp_acquire() returned. */
void pw_interp_release(PyThreadState *tstate);

#endif /* PW_INTERP_H */
