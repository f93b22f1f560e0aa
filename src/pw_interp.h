/*
 * pw_interp.h: the interpreter registry — this child's Python interpreters,
 * each Apache thread's thread state in them, and the GIL.  The only place
 * that takes or drops the GIL for a request (Py_BEGIN_ALLOW_THREADS around
 * blocking calls excepted).  It calls nothing else of the module.
 *
 * Interpreter 0 is "main", the one every C extension supports; named
 * sub-interpreters (PyWSGIInterpreter NAME) get the next indexes
 * (pw_config.h keeps their names).  pw_python.c starts and ends them.
 */
#ifndef PW_INTERP_H
#define PW_INTERP_H

#include "pw_common.h"

/*
 * Take the GIL for this thread in interpreter interp, creating the thread's
 * state for it on first use and keeping it for the thread's life (freed
 * when the thread ends); *waited is how long the GIL took.  Calls nest: a
 * request run inside another one on the same thread (ErrorDocument,
 * #include virtual) acquires and releases inside the outer one's pair.
 * Returns NULL (GIL not taken) when that interpreter could not be started
 * in this child, or Python is not ready.
 */
PyThreadState *pw_interp_acquire(int interp, apr_interval_time_t *waited);

/*
 * For an interpreter made on first use (pw_config_interp_lazy): make it if
 * no thread has, set it up with the lifecycle's callback, then take its GIL
 * as pw_interp_acquire() does.  No GIL held on entry.  NULL when it could
 * not be made or set up (then never tried again in this child).
 */
PyThreadState *pw_interp_acquire_new(int interp, apr_interval_time_t *waited);

/* An index for an interpreter made at run time (one per file served by
 * handler under %{RESOURCE}), named name (kept; not copied), or -1 when
 * the child has none left.  No GIL needed; made on first use through
 * pw_interp_acquire_new(). */
int pw_interp_reserve(const char *name);

/* Child start, before any request: the name of configured interpreter
 * interp (kept; not copied). */
void pw_interp_name_set(int interp, const char *name);

/* interp's name, for log lines: set above or given to pw_interp_reserve();
 * "?" for an index never named. */
const char *pw_interp_name(int interp);

/* Give the GIL back; tstate is what pw_interp_acquire() returned. */
void pw_interp_release(PyThreadState *tstate);

/* The interpreter whose GIL this thread holds (its last one). */
int pw_interp_current(void);

/* --- for the lifecycle (pw_python.c) only ----------------------------- */

/* Sets up a new interpreter for requests: called with its GIL held and its
 * thread state current; 0, or -1 after logging why. */
typedef int (*pw_interp_setup_fn)(int interp);

/* The set-up pw_interp_acquire_new() calls (registered at child start),
 * and the first index pw_interp_reserve() may hand out (the declared
 * interpreters' count). */
void pw_interp_set_setup(pw_interp_setup_fn fn, int first_free);

/* GIL held, right after Python started in this thread: main is
 * interpreter 0, and this thread's state in it is tstate. */
void pw_interp_adopt_main(PyThreadState *tstate);

/* GIL of main held.  A new sub-interpreter as index interp: the legacy
 * kind (shared GIL, single-phase extension modules accepted), or with own
 * set (PyWSGIOwnGIL, Python 3.12+) PEP 684's, with a GIL and an object
 * allocator of its own, multi-phase-init extensions only.  Returns with
 * its thread state current (holding its GIL, main's given back), or -1
 * (main current again) when it failed. */
int pw_interp_create(int interp, int own);

/* Whether interp was made with a GIL of its own.  No GIL needed. */
int pw_interp_own_gil(int interp);

/* GIL held.  Make this thread's state in interp current, to set it up or
 * preload into it; pw_interp_enter(0) returns to main.  -1 (nothing
 * changed) when this thread has no state in interp. */
int pw_interp_enter(int interp);

/* GIL held, in interp after pw_interp_create(): its set-up failed; end it
 * and return to main.  Requests for it then get 500. */
void pw_interp_discard(int interp);

/* Requests may take interpreters from now on (1), or no longer (0). */
void pw_interp_set_ready(int ready);

/* No GIL, at child exit, on the thread that started Python: no request or
 * ending thread takes an interpreter from now on; returns with main's GIL
 * held, for pw_interp_end() and finalisation. */
void pw_interp_acquire_for_exit(void);

/* Is this thread serving a request right now (then a signal-driven exit
 * on it must not finalise Python under its feet)? */
int pw_interp_busy(void);

/* GIL of main held, at child exit: end sub-interpreter interp, after
 * teardown (if not NULL) ran in it, its GIL held (what the request path
 * keeps running there: an ASGI loop and its lifespans), and after the
 * threads the app started in it were asked to finish (non-daemon ones are
 * joined).  Returns 0, or how many of them still run: then the
 * interpreter is left to the process's exit, never ended under them; -1
 * for an interpreter made on first use by a worker thread, which is left
 * to the process's exit too. */
long pw_interp_end(int interp, pw_interp_setup_fn teardown);

#endif /* PW_INTERP_H */
