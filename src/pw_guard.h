/*
 * pw_guard.h: the safety nets mod_wsgi only has in daemon mode — a request
 * timeout, and recycling a child after N requests or past a memory size.
 */
#ifndef PW_GUARD_H
#define PW_GUARD_H

#include "pw_common.h"

/* child_init, first thing, before Python starts: notes what recycling under
 * worker/event needs to know of the process as Apache made it. */
void pw_guard_child_early(server_rec *s);

/* child_init, after Python started: the watchdog thread, when a
 * PyWSGIRequestTimeout is set anywhere.  No GIL. */
void pw_guard_child_init(apr_pool_t *pchild, server_rec *s);

/* What one request's guard holds, kept by the handler between begin and
 * end: the request's timeout slot and what the thread was doing before
 * (a request may run inside another one on the same thread). */
typedef struct {
    void *slot;
    char what[256];
} pw_guard_saved_t;

/* GIL of interp held: this thread starts running r's app (or r's
 * PyWSGIAuthScript function), which may run for timeout (0: no limit). */
void pw_guard_begin(request_rec *r, int interp, apr_interval_time_t timeout,
                    pw_guard_saved_t *saved);

/* GIL held: the app is done; the thread goes back to what it did before.
 * Returns 1 when the timeout interrupted it. */
int pw_guard_end(pw_guard_saved_t *saved);

/* No GIL: a request ended; recycle the child if it is due. */
void pw_guard_after(request_rec *r);

#endif /* PW_GUARD_H */
