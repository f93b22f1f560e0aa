/*
 * pw_interp.c: the interpreter registry and the GIL.
 *
 * Here: which interpreters this child has, each thread's Python thread
 * state in each of them (made on first use, freed when the thread ends),
 * which interpreter a thread is in, and taking and giving back the GIL.
 * Not here: starting or finalising Python, or setting an interpreter up
 * for requests (pw_python.c does both, calling down into each concern).
 * This file calls no other file of the module.
 * Locking: pw_interp_acquire() takes the GIL, pw_interp_release() gives it
 * back; the lifecycle functions are called with the GIL held.  free_lock
 * orders a thread's end (its states freed, GIL taken inside the lock)
 * against the child's exit (ready cleared inside it, GIL taken after).
 * An interpreter made on first use (pw_interp_acquire_new) is made under
 * create_lock, taken without the GIL; interps[] is then published with a
 * release store that pw_interp_acquire() reads with an acquire load.
 *
 * Interpreters with a GIL of their own (PyWSGIOwnGIL, PEP 684): a thread
 * holds at most one GIL at a time.  A request takes its interpreter's GIL
 * with PyEval_RestoreThread() of its own state there, as for any other;
 * the lifecycle moving between interpreters (switch_to) gives one GIL back
 * before it takes the other wherever either interpreter has its own, since
 * 3.12's PyThreadState_Swap() does not.  Nothing here ever holds two GILs,
 * and no Python object made in one interpreter is handed to another.
 *
 * Threads come and go: mod_http2 runs requests on worker threads that end
 * after H2MaxWorkerIdleSeconds.  A thread's states are freed by a
 * pthread key destructor when it ends, so thousands of h2 streams leave
 * no thread states (nor their threading.local data) behind.
 *
 * PyGILState_Ensure(), which ctypes callbacks, Cython "with gil" and
 * pybind11 use, binds to the first thread state made on each OS thread.
 * Every thread therefore gets its main-interpreter state first, whatever
 * interpreter it serves: C code calling back into Python from a thread
 * lands in main, the interpreter such code supports.
 */
#include "pw_interp.h"
#include <pthread.h>

/* A thread's states, one per interpreter; malloc'ed, so that the key's
 * destructor can still read it while the thread's TLS goes away. */
typedef struct {
    PyThreadState *ts[PW_MAX_INTERPS];
} thread_states_t;

/* How deep requests nest on one thread (ErrorDocument, #include virtual,
 * subrequests run inside a request): deeper ones keep the interpreter
 * bookkeeping of the outer ones they cannot restore. */
#define NEST_MAX 8

/* This child's interpreters; NULL where one could not be started. */
static PyInterpreterState *interps[PW_MAX_INTERPS];
static PyThreadState *main_tstate;
static volatile int ready;
static pthread_key_t states_key;
static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;

/* Interpreters made on first use: how to set one up (the lifecycle's
 * callback), and those that failed, not to be tried again. */
static pw_interp_setup_fn setup_fn;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static char create_failed[PW_MAX_INTERPS];

/* Interpreters made with a GIL of their own (set before they exist). */
static char own_gil[PW_MAX_INTERPS];

/* The thread state each interpreter made on first use was created with:
 * CPython 3.11 builds it in the interpreter's own preallocated slot, which
 * may not be deleted and made again while the interpreter lives ("Fatal
 * Python error: init_threadstate: thread state already initialized"), so
 * it outlives the thread that made it and goes with its interpreter. */
static PyThreadState *owner_ts[PW_MAX_INTERPS];

/* Each interpreter's name: the configured ones set at child start
 * (pw_interp_name_set), those handed out at run time by pw_interp_reserve
 * under create_lock. */
static int next_free = PW_MAX_INTERPS;
static const char *names[PW_MAX_INTERPS];

/* This thread's states, how many requests it is serving right now (nested
 * ones count), and the interpreter it is in, with the ones it was in
 * before each nested acquire. */
static __thread thread_states_t *my_states;
static __thread PyThreadState **thread_states;
static __thread int thread_busy;
static __thread int thread_interp;
static __thread int nest_interp[NEST_MAX];

static void thread_gone(void *data);

/* No GIL needed.  This thread's table of states, made on first use. */
static PyThreadState **states_of_thread(void)
{
    if (thread_states == NULL) {
        my_states = calloc(1, sizeof(*my_states));
        if (my_states == NULL) {
            return NULL;
        }
        thread_states = my_states->ts;
        pthread_setspecific(states_key, my_states);
    }
    return thread_states;
}

/* pthread key destructor: this thread is ending.  Its states go with it,
 * each deleted with the GIL of its interpreter held, unless the child is
 * already exiting (then Python's finalisation owns them). */
static void thread_gone(void *data)
{
    thread_states_t *st = data;
    int i;

    pthread_mutex_lock(&free_lock);
    if (ready) {
        /* Sub-interpreters first: main's state holds the gilstate
         * binding, which goes last. */
        for (i = PW_MAX_INTERPS - 1; i >= 0; i--) {
            if (st->ts[i] == NULL || interps[i] == NULL) {
                continue;
            }
            if (st->ts[i] == owner_ts[i]) {
                st->ts[i] = NULL; /* its interpreter's exit deletes it */
                continue;
            }
            PyEval_RestoreThread(st->ts[i]);
            PyThreadState_Clear(st->ts[i]);
            PyThreadState_DeleteCurrent();
            st->ts[i] = NULL;
        }
    }
    pthread_mutex_unlock(&free_lock);
    if (thread_states == st->ts) {
        thread_states = NULL;
        my_states = NULL;
    }
    free(st);
}

int pw_interp_current(void)
{
    return thread_interp;
}

/* No GIL.  This thread's state in interp, made on first use (main's
 * first of all, for the gilstate binding). */
static PyThreadState *state_for(int interp)
{
    PyThreadState **states = states_of_thread();

    if (states == NULL) {
        return NULL;
    }
    if (states[0] == NULL) {
        /* Public API only: PyThreadState_New needs no GIL. */
        states[0] = PyThreadState_New(interps[0]);
    }
    if (states[interp] == NULL && states[0] != NULL) {
        states[interp] = PyThreadState_New(interps[interp]);
    }
    return states[interp];
}

PyThreadState *pw_interp_acquire(int interp, apr_interval_time_t *waited)
{
    PyThreadState *tstate;
    apr_time_t before;

    if (!ready || __atomic_load_n(&interps[interp], __ATOMIC_ACQUIRE) == NULL
        || interps[0] == NULL) {
        return NULL;
    }
    tstate = state_for(interp);
    if (tstate == NULL) {
        return NULL;
    }
    before = apr_time_now();
    PyEval_RestoreThread(tstate);
    *waited = apr_time_now() - before;
    if (thread_busy < NEST_MAX) {
        nest_interp[thread_busy] = thread_interp;
    }
    thread_busy++;
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
        names[interp] = name;
    }
    pthread_mutex_unlock(&create_lock);
    return interp;
}

void pw_interp_name_set(int interp, const char *name)
{
    names[interp] = name;
}

const char *pw_interp_name(int interp)
{
    const char *name =
        interp >= 0 && interp < PW_MAX_INTERPS ? names[interp] : NULL;

    return name ? name : "?";
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
            /* This thread has a table now: pw_interp_acquire(0) made it. */
            thread_states[interp] = sub;
            thread_interp = interp;
            if (setup_fn(interp) < 0) {
                Py_EndInterpreter(sub);
                thread_states[interp] = NULL;
                PyThreadState_Swap(tstate);
                create_failed[interp] = 1;
            }
            else {
                owner_ts[interp] = sub;
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
    /* A nested request (an ErrorDocument, an #include virtual) returns
     * the thread to the outer one's interpreter, whose state it then
     * restores itself. */
    if (thread_busy > 0) {
        thread_busy--;
        if (thread_busy < NEST_MAX) {
            thread_interp = nest_interp[thread_busy];
        }
    }
    PyEval_SaveThread();
}

/* A GIL held, with this thread's state in thread_interp current.  Make
 * to, this thread's state in interpreter interp, current: a swap between
 * interpreters that share the GIL; where either has its own, that GIL is
 * given back and the other taken. */
static void switch_to(PyThreadState *to, int interp)
{
    if (own_gil[thread_interp] || own_gil[interp]) {
        PyEval_SaveThread();
        PyEval_RestoreThread(to);
    }
    else {
        PyThreadState_Swap(to);
    }
    thread_interp = interp;
}

/* After Py_EndInterpreter(), which leaves no thread state current: back
 * to main.  A shared GIL is still held; an interpreter's own GIL went with
 * it, so main's is taken. */
static void back_to_main_after_end(int ended)
{
    if (own_gil[ended]) {
        PyEval_RestoreThread(main_tstate);
    }
    else {
        PyThreadState_Swap(main_tstate);
    }
    thread_interp = 0;
}

void pw_interp_adopt_main(PyThreadState *tstate)
{
    main_tstate = tstate;
    interps[0] = PW_TSTATE_INTERP(tstate);
    pthread_key_create(&states_key, thread_gone);
    /* This thread serves requests under prefork: its state is main's. */
    states_of_thread()[0] = tstate;
    thread_interp = 0;
}

int pw_interp_create(int interp, int own)
{
    PyThreadState *tstate = NULL;

#if PW_HAVE_OWN_GIL
    if (own) {
        /* PEP 684's isolated interpreter: its own GIL needs its own object
         * allocator and multi-phase-init extensions only (a single-phase
         * one's module state is process-global, shared across GILs).
         * fork() would copy a process with several GILs in any state;
         * fork+exec (subprocess) and threads, daemon ones too, stay allowed,
         * as in the other interpreters. */
        PyInterpreterConfig config = {
            .use_main_obmalloc = 0,
            .allow_fork = 0,
            .allow_exec = 1,
            .allow_threads = 1,
            .allow_daemon_threads = 1,
            .check_multi_interp_extensions = 1,
            .gil = PyInterpreterConfig_OWN_GIL,
        };
        PyStatus status = Py_NewInterpreterFromConfig(&tstate, &config);

        if (PyStatus_Exception(status)) {
            tstate = NULL;
        }
        else {
            own_gil[interp] = 1;
        }
    }
    else
#endif
    {
        (void)own;
        tstate = Py_NewInterpreter();
    }
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
    switch_to(thread_states[interp], interp);
    return 0;
}

void pw_interp_discard(int interp)
{
    Py_EndInterpreter(thread_states[interp]);
    interps[interp] = NULL;
    thread_states[interp] = NULL;
    back_to_main_after_end(interp);
}

void pw_interp_set_ready(int r)
{
    /* Once cleared, no ending thread touches Python any more. */
    pthread_mutex_lock(&free_lock);
    ready = r;
    pthread_mutex_unlock(&free_lock);
}

void pw_interp_acquire_for_exit(void)
{
    pw_interp_set_ready(0);
    PyEval_RestoreThread(main_tstate);
    thread_interp = 0;
}

int pw_interp_own_gil(int interp)
{
    return interp >= 0 && interp < PW_MAX_INTERPS && own_gil[interp];
}

int pw_interp_busy(void)
{
    return thread_busy;
}

/* GIL held, in interp: the threads the app started there are asked to
 * finish, as Python's own finalisation does (threading._shutdown() joins
 * the non-daemon ones; PyWSGIShutdownTimeout's watchdog bounds the wait).
 * Returns how many still run (daemon threads). */
static long app_threads_stop(void)
{
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *threading = name ? PyImport_GetModule(name) : NULL;
    PyObject *thread = NULL, *res = NULL;
    long left = 0;

    Py_XDECREF(name);
    if (threading) {
        res = PyObject_CallMethod(threading, "_shutdown", NULL);
        Py_XDECREF(res);
    }
    PyErr_Clear();
    thread = PyImport_ImportModule("_thread");
    res = thread ? PyObject_CallMethod(thread, "_count", NULL) : NULL;
    if (res) {
        left = PyLong_AsLong(res);
    }
    PyErr_Clear();
    if (left == 0) {
        /* A thread that just ended may still be deleting its state. */
        Py_BEGIN_ALLOW_THREADS
            apr_sleep(apr_time_from_msec(20));
        Py_END_ALLOW_THREADS
    }
    Py_XDECREF(res);
    Py_XDECREF(thread);
    Py_XDECREF(threading);
    return left < 0 ? 0 : left;
}

/* Py_EndInterpreter() refuses to run while another thread state of its
 * interpreter exists.  Those of Apache's threads are idle for good (the
 * threads are joined, or never run Python again: ready is cleared) and are
 * deleted first; those of threads the app started are never deleted under
 * them: when some still run, the interpreter is left as it is. */
long pw_interp_end(int i, pw_interp_setup_fn teardown)
{
    PyThreadState *mine = thread_states ? thread_states[i] : NULL;
    PyThreadState *t, *next;
    long left;

    if (interps[i] == NULL || thread_states == NULL) {
        return 0;
    }
    if (mine == NULL) {
        /* Made on first use by a worker thread (its owner state stays,
         * owner_ts): ending it from this thread was seen to hang past
         * PyWSGIShutdownTimeout under 3.11; it is left to the process's
         * exit, as an interpreter whose threads still run is. */
        return -1;
    }
    switch_to(mine, i);
    if (teardown != NULL) {
        teardown(i);
    }
    left = app_threads_stop();
    if (left == 0) {
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
        back_to_main_after_end(i);
    }
    else {
        switch_to(main_tstate, 0);
    }
    return left;
}
