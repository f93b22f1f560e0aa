/*
 * pw_interp.c: the interpreter registry and the GIL.
 *
 * Here: which interpreters this child has, each Apache thread's Python
 * thread state in each of them (made on first use, kept until the child
 * exits), which interpreter a thread is in, and taking and giving back the
 * GIL.  Not here: starting or finalising Python, or setting an interpreter
 * up for requests (pw_python.c does both, calling down into each concern).
 * This file calls no other file of the module.
 * Locking: pw_interp_acquire() takes the GIL, pw_interp_release() gives it
 * back; the lifecycle functions are called with the GIL held.  An
 * interpreter made on first use (pw_interp_acquire_new) is made under
 * create_lock, taken without the GIL; interps[] is then published with a
 * release store that pw_interp_acquire() reads with an acquire load.
 */
#include "pw_interp.h"
#include <pthread.h>

/* This child's interpreters; NULL where one could not be started. */
static PyInterpreterState *interps[PW_MAX_INTERPS];
static PyThreadState *main_tstate;
static volatile int ready;

/* Interpreters made on first use: how to set one up (the lifecycle's
 * callback), and those that failed, not to be tried again. */
static pw_interp_setup_fn setup_fn;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static char create_failed[PW_MAX_INTERPS];

/* Indexes handed out at run time (pw_interp_reserve), under create_lock. */
static int next_free = PW_MAX_INTERPS;
static const char *runtime_names[PW_MAX_INTERPS];

/* This Apache thread's Python thread state in each interpreter, whether it
 * is serving a request right now, and the interpreter it is in. */
static __thread PyThreadState *thread_states[PW_MAX_INTERPS];
static __thread int thread_busy;
static __thread int thread_interp;

int pw_interp_current(void)
{
    return thread_interp;
}

PyThreadState *pw_interp_acquire(int interp, apr_interval_time_t *waited)
{
    PyThreadState *tstate = thread_states[interp];
    apr_time_t before;

    if (!ready || __atomic_load_n(&interps[interp], __ATOMIC_ACQUIRE) == NULL) {
        return NULL;
    }
    if (tstate == NULL) {
        /* Public API only: PyThreadState_New needs no GIL. */
        tstate = PyThreadState_New(interps[interp]);
        if (tstate == NULL) {
            return NULL;
        }
        thread_states[interp] = tstate;
    }
    before = apr_time_now();
    PyEval_RestoreThread(tstate);
    *waited = apr_time_now() - before;
    thread_busy = 1;
    thread_interp = interp;
    return tstate;
}

void pw_interp_set_setup(pw_interp_setup_fn fn, int first_free)
{
    setup_fn = fn;
    next_free = first_free;
}

int pw_interp_reserve(const char *name)
{
    int interp = -1;

    pthread_mutex_lock(&create_lock);
    if (next_free < PW_MAX_INTERPS) {
        interp = next_free++;
        runtime_names[interp] = name;
    }
    pthread_mutex_unlock(&create_lock);
    return interp;
}

const char *pw_interp_runtime_name(int interp)
{
    return interp >= 0 && interp < PW_MAX_INTERPS ? runtime_names[interp]
                                                  : NULL;
}

PyThreadState *pw_interp_acquire_new(int interp, apr_interval_time_t *waited)
{
    PyThreadState *tstate;

    if (!ready || setup_fn == NULL || interp <= 0) {
        return NULL;
    }
    pthread_mutex_lock(&create_lock);
    if (interps[interp] == NULL && !create_failed[interp]
        && (tstate = pw_interp_acquire(0, waited)) != NULL) {
        PyThreadState *sub = Py_NewInterpreter();

        if (sub == NULL) {
            PyThreadState_Swap(tstate);
            create_failed[interp] = 1;
        }
        else {
            thread_states[interp] = sub;
            thread_interp = interp;
            if (setup_fn(interp) < 0) {
                Py_EndInterpreter(sub);
                thread_states[interp] = NULL;
                PyThreadState_Swap(tstate);
                create_failed[interp] = 1;
            }
            else {
                __atomic_store_n(&interps[interp], PW_TSTATE_INTERP(sub),
                                 __ATOMIC_RELEASE);
            }
        }
        pw_interp_release(NULL); /* whichever state is current */
    }
    pthread_mutex_unlock(&create_lock);
    return create_failed[interp] ? NULL : pw_interp_acquire(interp, waited);
}

void pw_interp_release(PyThreadState *tstate)
{
    thread_busy = 0;
    PyEval_SaveThread();
}

void pw_interp_adopt_main(PyThreadState *tstate)
{
    main_tstate = tstate;
    interps[0] = PW_TSTATE_INTERP(tstate);
    /* This thread serves requests under prefork: its state is main's. */
    thread_states[0] = tstate;
    thread_interp = 0;
}

int pw_interp_create(int interp)
{
    PyThreadState *tstate = Py_NewInterpreter();

    if (tstate == NULL) {
        PyThreadState_Swap(main_tstate);
        thread_interp = 0;
        return -1;
    }
    interps[interp] = PW_TSTATE_INTERP(tstate);
    thread_states[interp] = tstate;
    thread_interp = interp;
    return 0;
}

int pw_interp_enter(int interp)
{
    if (thread_states[interp] == NULL) {
        return -1;
    }
    PyThreadState_Swap(thread_states[interp]);
    thread_interp = interp;
    return 0;
}

void pw_interp_discard(int interp)
{
    Py_EndInterpreter(thread_states[interp]);
    interps[interp] = NULL;
    thread_states[interp] = NULL;
    PyThreadState_Swap(main_tstate);
    thread_interp = 0;
}

void pw_interp_set_ready(int r)
{
    ready = r;
}

int pw_interp_busy(void)
{
    return thread_busy;
}

/* Py_FinalizeEx() refuses to run while sub-interpreters live, and
 * Py_EndInterpreter() while another thread state of its interpreter does:
 * the worker threads' states go first. */
void pw_interp_end_all(void)
{
    int i;

    for (i = 1; i < PW_MAX_INTERPS; i++) {
        PyThreadState *mine = thread_states[i], *t, *next;
        if (interps[i] == NULL) {
            continue;
        }
        if (mine == NULL) {
            /* Made on first use by a worker thread: this one needs a state
             * there to end it. */
            mine = PyThreadState_New(interps[i]);
            if (mine == NULL) {
                continue;
            }
        }
        PyThreadState_Swap(mine);
        for (t = PyInterpreterState_ThreadHead(interps[i]); t; t = next) {
            next = PyThreadState_Next(t);
            if (t != mine) {
                PyThreadState_Clear(t);
                PyThreadState_Delete(t);
            }
        }
        Py_EndInterpreter(mine);
        interps[i] = NULL;
        thread_states[i] = NULL;
        PyThreadState_Swap(main_tstate);
    }
    thread_interp = 0;
}
