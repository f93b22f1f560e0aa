/*
 * pw_guard.c: request timeout and child recycling.
 *
 * Timeout: each running request with a timeout holds a slot with its
 * deadline, claimed at its start and given back at its end (per request,
 * not per thread: mod_http2's worker threads come and go, and a request
 * nested in another on one thread -- an ErrorDocument, an #include
 * virtual -- must not take over the outer one's deadline).  A watchdog
 * thread (one per child, only when some server sets
 * PyWSGIRequestTimeout) looks at the slots ten times a second; past a
 * deadline it takes that interpreter's GIL and raises RequestTimeout in the
 * request's thread (PyThreadState_SetAsyncExc).  The exception derives from
 * BaseException, so `except Exception:` in the app does not swallow it.
 * Python checks for it between bytecodes: a loop is cut at once, a call
 * blocked in C (time.sleep, a socket read) when it returns.  A process
 * forked from a child after child_init (mpm-itk's one per connection) has
 * no watchdog -- a thread does not survive fork() -- so its first request
 * with a timeout starts one there (a pthread_atfork handler marks it).
 *
 * Recycling: after PyWSGIMaxRequests requests, or once the resident size
 * passes PyWSGIMaxMemory, the child stops taking connections and exits
 * when its requests are done; Apache starts a fresh one.  A child cannot
 * ask worker/event for a graceful exit later on (their children ignore
 * signals and listen only to the parent's pipe), so:
 * - prefork: exact; MaxConnectionsPerChild is set to N in child_init so
 *   prefork counts connections from the first one, the Nth request says
 *   "Connection: close", and after it the budget is cut to what was used,
 *   so the child leaves before its next accept();
 * - worker/event, both limits: responses say "Connection: close"; once
 *   no keep-alive connection is left (or after KeepAliveTimeout), the child
 *   asks its own MPM for the graceful exit a parent's "graceful" would give
 *   it (see graceful_via_pod below): in-flight requests finish, the listener
 *   stops accepting, nothing is lost.  Where that cannot be done (not Linux,
 *   an MPM that does not wait on its pipe of death), the child falls back to
 *   exiting once the scoreboard shows it idle, which can drop a connection
 *   accepted in that instant (PW0411 says so).  PyWSGIMaxRequests N also
 *   sets the MPM's own MaxConnectionsPerChild budget to N in child_init (the
 *   MPM reads it just after), so the child leaves after N to 2N requests
 *   even where the graceful exit cannot be reached; it never falls back to
 *   the idle exit.
 *
 * Crashes: an app that takes its process down (a C extension's segfault,
 * os.abort()) should at least say which request did it.  A handler for the
 * fatal signals writes "PW0003 ... while serving GET /path" to the error log
 * (fd 2, which Apache points at it) with write(2), then hands the signal on
 * to whoever had it before (Apache's core-dump handler, or the default).
 * Python's faulthandler, enabled on the same fd, adds the Python stack.
 *
 * Locking: slots are written by their own thread and read by the watchdog
 * with atomic loads; the watchdog takes the GIL only to fire.
 */
#include "pw_guard.h"
#include "pw_config.h"
#include "pw_interp.h"
#include "pw_metrics.h"
#include "ap_mpm.h"
#include "mpm_common.h"
#include "scoreboard.h"
#include "apr_atomic.h"
#include "apr_thread_proc.h"
#include <execinfo.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#endif

APLOG_USE_MODULE(pywsgi);

typedef struct {
    volatile apr_time_t deadline; /* 0: no request with a timeout */
    volatile unsigned long ident; /* the thread, as Python names it */
    volatile int interp;
    volatile apr_uint32_t seq; /* which request of this thread */
    volatile int fired;
    volatile apr_uint32_t taken; /* a request holds this slot */
} guard_slot_t;

static guard_slot_t *slots;
static int slot_count;
/* How many requests this thread is running, nested ones included. */
static __thread int guard_depth;
static PyObject *timeout_exc[PW_MAX_INTERPS];

static volatile apr_uint32_t requests_done, in_flight;
static volatile int stopping; /* the child is exiting: watchdog, stand down */

/* What this thread serves, for the crash line: "GET /path". */
static __thread char crash_what[256];
static struct sigaction crash_prev[NSIG];
static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
static volatile apr_uint32_t recycling;
/* worker/event recycling: what it was for, since when, and the descriptor
 * that now holds our private pipe (-1: none) -- so that PW0412 is said even
 * when the child finishes its graceful exit before the recycling thread
 * sees the character taken (recycle_exit_note). */
static const char *recycle_why;
static apr_time_t recycle_start;
static volatile int pod_swapped_fd = -1;
static volatile apr_uint32_t pw0412_said;
static apr_status_t recycle_exit_note(void *data);
static int threaded, threads_per_child = 1, max_requests;
static apr_off_t max_memory;
static server_rec *main_server;
/* Set in a process forked from this child (pthread_atfork): the watchdog
 * stayed behind; the first request with a timeout starts one here. */
static volatile apr_uint32_t watchdog_lost;

/* No GIL.  Scan the slots; fire at the overdue ones. */
static void *APR_THREAD_FUNC watchdog(apr_thread_t *thd, void *data)
{
    while (!stopping) {
        apr_time_t now = apr_time_now();
        int i;

        for (i = 0; i < slot_count; i++) {
            guard_slot_t *sl = &slots[i];
            apr_time_t deadline = sl->deadline;
            apr_uint32_t seq = sl->seq;
            apr_interval_time_t waited;
            PyThreadState *ts;
            int interp = sl->interp;

            if (deadline == 0 || now < deadline || sl->fired || stopping) {
                continue;
            }
            ts = pw_interp_acquire(interp, &waited);
            if (ts == NULL) {
                return NULL; /* Python is going away */
            }
            /* Still the same request, still running? (It cannot finish its
             * Python part while this thread holds the GIL.) */
            if (sl->deadline == deadline && sl->seq == seq && !sl->fired
                && timeout_exc[interp]) {
                PyThreadState_SetAsyncExc(sl->ident, timeout_exc[interp]);
                sl->fired = 1;
            }
            pw_interp_release(ts);
        }
        apr_sleep(apr_time_from_msec(100));
    }
    return NULL;
}

/* Async-signal-safe: only write(2) and plain memory. */
static void crash_write(const char *s)
{
    ssize_t n = (ssize_t)strlen(s);

    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, (size_t)n);
        if (w <= 0) {
            return;
        }
        s += w;
        n -= w;
    }
}

static void crash_num(long v)
{
    char buf[24], *p = buf + sizeof(buf) - 1;

    *p = '\0';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && p > buf);
    crash_write(p);
}

static void crash_handler(int sig, siginfo_t *info, void *ctx)
{
    struct sigaction *prev = &crash_prev[sig];

    crash_write("[pywsgi:crit] [pid ");
    crash_num((long)getpid());
    crash_write("] PW0003: the process is crashing on signal ");
    crash_num(sig);
    if (crash_what[0]) {
        crash_write(" while serving ");
        crash_write(crash_what);
    }
    else {
        crash_write(" outside any request");
    }
    crash_write("\n");
    {
        /* The C stack too: a crash in a C extension or in the module is
         * otherwise a mystery.  backtrace() was called once at install
         * time, so libgcc is loaded and nothing allocates here. */
        void *frames[48];
        int n = backtrace(frames, 48);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
    }

    /* Hand it on: Apache's handler or the default action (core, exit). */
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, info, ctx);
        return;
    }
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void crash_handlers_install(void)
{
    struct sigaction sa;
    size_t i;

    void *warm[2];

    (void)backtrace(warm, 2);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++) {
        sigaction(crash_signals[i], &sa, &crash_prev[crash_signals[i]]);
    }
}

/* pchild cleanup, run before Python is finalised (registered after it):
 * the watchdog must not take a GIL from here on. */
static apr_status_t guard_stop(void *data)
{
    stopping = 1;
    return APR_SUCCESS;
}

static void watchdog_forked(void);
static void watchdog_start(server_rec *s);

void pw_guard_child_init(apr_pool_t *pchild, server_rec *s)
{
    server_rec *v;
    int threads = 1, need_watchdog = 0;

    main_server = s;
    crash_handlers_install();
    ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded);
    threaded = threaded != AP_MPMQ_NOT_SUPPORTED;
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads_per_child);
    max_requests = pw_config_max_requests(s);
    max_memory = pw_config_max_memory(s);
    if (max_requests > 0
        && (ap_max_requests_per_child == 0
            || ap_max_requests_per_child > max_requests)) {
        /* This child's connection budget: worker/event read it right after
         * child_init, prefork counts against it only while it is set. */
        ap_max_requests_per_child = max_requests;
    }
    if (threaded && (max_requests > 0 || max_memory > 0)) {
        apr_pool_cleanup_register(pchild, NULL, recycle_exit_note,
                                  apr_pool_cleanup_null);
    }
    for (v = s; v; v = v->next) {
        if (pw_config_request_timeout(v) > 0) {
            need_watchdog = 1;
        }
    }
    if (!need_watchdog) {
        return;
    }
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    /* Requests at once: the MPM's threads, mod_http2's workers (up to
     * 3/2 of them by default) and nested requests. */
    slot_count = (threads > 0 ? threads : 1) * 4 + 16;
    /* Not from pchild: the detached watchdog may still look at them while
     * pchild is being destroyed at exit.  They live as long as the
     * process. */
    slots = calloc((size_t)slot_count, sizeof(*slots));
    if (slots == NULL) {
        return;
    }
    apr_pool_cleanup_register(pchild, NULL, guard_stop, apr_pool_cleanup_null);
    watchdog_start(s);
    pthread_atfork(NULL, NULL, watchdog_forked);
}

/* A fork() in this process: the copy has no watchdog thread. */
static void watchdog_forked(void)
{
    watchdog_lost = 1;
}

static void watchdog_start(server_rec *s)
{
    apr_thread_t *thd;
    apr_threadattr_t *attr;

    apr_threadattr_create(&attr, s->process->pool);
    apr_threadattr_detach_set(attr, 1);
    if (apr_thread_create(&thd, attr, watchdog, NULL, s->process->pool)
        != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "PW0400: could not start "
                     "the PyWSGIRequestTimeout watchdog in pid %" APR_PID_T_FMT
                     "; requests will not time out",
                     getpid());
    }
}

void pw_guard_begin(request_rec *r, int interp, apr_interval_time_t timeout,
                    pw_guard_saved_t *saved)
{
    guard_slot_t *slot = NULL;
    int i;

    apr_atomic_inc32(&in_flight);
    saved->slot = NULL;
    memcpy(saved->what, crash_what, sizeof(saved->what));
    guard_depth++;
    apr_snprintf(crash_what, sizeof(crash_what), "%s %s", r->method, r->uri);
    if (recycling
        || (max_requests
            && apr_atomic_read32(&requests_done) + 1
                   >= (apr_uint32_t)max_requests)) {
        /* Tell this client to go elsewhere next time ("Connection:
         * close"): the child is on its way out. */
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    if (slots == NULL || timeout == 0) {
        return;
    }
    for (i = 0; i < slot_count && slot == NULL; i++) {
        if (apr_atomic_cas32(&slots[i].taken, 1, 0) == 0) {
            slot = &slots[i];
        }
    }
    if (slot == NULL) {
        return; /* more requests at once than foreseen: no timeout */
    }
    if (watchdog_lost && apr_atomic_cas32(&watchdog_lost, 0, 1) == 1) {
        watchdog_start(main_server);
    }
    if (timeout_exc[interp] == NULL) {
        /* The exception this interpreter raises, made in it on its first
         * request with a timeout: a virtual host's or a file's own
         * interpreter is made after child_init. */
        PyObject *exc = PyErr_NewExceptionWithDoc(
            "mod_pywsgi.RequestTimeout",
            "The request ran past PyWSGIRequestTimeout.", PyExc_BaseException,
            NULL);

        if (exc == NULL) {
            PyErr_Clear();
        }
        else if (timeout_exc[interp] == NULL) {
            timeout_exc[interp] = exc;
        }
        else {
            Py_DECREF(exc); /* made meanwhile by another request */
        }
    }
    if (guard_depth == 1) {
        /* A timeout that fired just as the last request ended must not
         * hit this one (but an outer request's must stay). */
        PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
    }
    slot->ident = PyThread_get_thread_ident();
    slot->interp = interp;
    slot->fired = 0;
    slot->seq++;
    slot->deadline = apr_time_now() + timeout;
    saved->slot = slot;
}

int pw_guard_end(pw_guard_saved_t *saved)
{
    guard_slot_t *slot = saved->slot;
    int fired = 0;

    guard_depth--;
    apr_atomic_dec32(&in_flight);
    memcpy(crash_what, saved->what, sizeof(crash_what));
    if (slot) {
        slot->deadline = 0;
        fired = slot->fired;
        if (guard_depth == 0) {
            PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
        }
        apr_atomic_set32(&slot->taken, 0);
    }
    return fired;
}

/* No GIL.  Does this child hold no connection and run no request? */
static int child_idle(void)
{
    apr_proc_t proc;
    process_score *ps;
    int slot, i;

    if (apr_atomic_read32(&in_flight) != 0) {
        return 0;
    }
    proc.pid = getpid();
    slot = ap_find_child_by_pid(&proc);
    if (slot < 0) {
        return 0;
    }
    ps = ap_get_scoreboard_process(slot);
    if (ps->connections != 0 || ps->keep_alive != 0) {
        return 0;
    }
    for (i = 0; i < threads_per_child; i++) {
        worker_score *ws = ap_get_scoreboard_worker_from_indexes(slot, i);
        if (ws->status != SERVER_READY && ws->status != SERVER_DEAD
            && ws->status != SERVER_STARTING) {
            return 0;
        }
    }
    return 1;
}

/* No GIL.  Does this child hold no idle keep-alive connection?  (Only
 * event keeps that count; under worker it is always 0.) */
static int child_drained(void)
{
    apr_proc_t proc;
    int slot;

    proc.pid = getpid();
    slot = ap_find_child_by_pid(&proc);
    return slot < 0 || ap_get_scoreboard_process(slot)->keep_alive == 0;
}

#if defined(__linux__)
/*
 * A graceful exit on the child's own initiative, worker/event.  Their
 * child's main thread sits in read(fd, &c, 1) on the pipe of death it
 * shares with the other children of its bucket, and leaves gracefully when
 * it reads AP_MPM_PODX_GRACEFUL_CHAR.  It also has SIGTERM unblocked with a
 * handler that does nothing: the MPM's own listener sends SIGTERM to end
 * that read() when MaxConnectionsPerChild runs out, and the main thread then
 * reads again from the same descriptor number.  So: put a private pipe
 * holding the graceful character under that number (dup3: the shared pipe
 * stays as it was for the other children) and interrupt the read.
 *
 * Which descriptor: the pipe of death is a blocking pipe whose two ends
 * this process both holds (inherited from the parent).  The candidates are
 * noted when the child starts, before Python and any app code run
 * (pw_guard_child_early), so an app's own pipe is never one.  (/proc would
 * name the descriptor the main thread reads, but a child that dropped root
 * is not dumpable and may not read its own /proc/self/task/N/syscall.)
 * Each candidate is tried in turn and kept only if the main thread took the
 * character within 200 ms; otherwise the original is put back.  Returns the
 * descriptor, or -1 when no candidate was taken.
 */
#define POD_MAX_FDS        4096
#define POD_MAX_CANDIDATES 8

/* Blocking pipe read ends whose write end this child also holds, as found
 * before Python started: the app cannot have made them (an app's own pipe,
 * read by one of its threads, must never get the character). */
static struct {
    int fd;
    dev_t dev;
    ino_t ino;
} pod_cand[POD_MAX_CANDIDATES];
static int pod_ncand;

static void pod_candidates_note(void)
{
    struct {
        int fd;
        dev_t dev;
        ino_t ino;
        int mode;
    } pipes[64];
    int n = 0, fd, i, j;

    for (fd = 0;
         fd < POD_MAX_FDS && n < (int)(sizeof(pipes) / sizeof(pipes[0]));
         fd++) {
        struct stat st;
        int fl;
        if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)
            || (fl = fcntl(fd, F_GETFL)) < 0) {
            continue;
        }
        pipes[n].fd = fd;
        pipes[n].dev = st.st_dev;
        pipes[n].ino = st.st_ino;
        pipes[n].mode = fl;
        n++;
    }
    for (i = 0; i < n && pod_ncand < POD_MAX_CANDIDATES; i++) {
        if ((pipes[i].mode & O_ACCMODE) != O_RDONLY
            || (pipes[i].mode & O_NONBLOCK)) {
            continue;
        }
        for (j = 0; j < n; j++) {
            if ((pipes[j].mode & O_ACCMODE) == O_WRONLY
                && pipes[j].ino == pipes[i].ino
                && pipes[j].dev == pipes[i].dev) {
                pod_cand[pod_ncand].fd = pipes[i].fd;
                pod_cand[pod_ncand].dev = pipes[i].dev;
                pod_cand[pod_ncand].ino = pipes[i].ino;
                pod_ncand++;
                break;
            }
        }
    }
}

static int pod_try(int fd, pid_t pid)
{
    const char c = AP_MPM_PODX_GRACEFUL_CHAR;
    int saved, p[2], waited, left = 1;

    if ((saved = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        return 0;
    }
    if (pipe2(p, O_CLOEXEC) != 0) {
        close(saved);
        return 0;
    }
    if (write(p[1], &c, 1) != 1 || dup3(p[0], fd, O_CLOEXEC) < 0) {
        close(p[0]);
        close(p[1]);
        close(saved);
        return 0;
    }
    close(p[0]);
    pod_swapped_fd = fd;
    syscall(SYS_tgkill, pid, pid, SIGTERM); /* ends the blocked read() */
    for (waited = 0; waited < 200; waited += 2) {
        apr_sleep(apr_time_from_msec(2));
        if (ioctl(fd, FIONREAD, &left) == 0 && left == 0) {
            /* Taken.  p[1] stays open (a read that found the pipe closed
             * would return 0, and the MPM would read it again at once). */
            close(saved);
            return 1;
        }
    }
    pod_swapped_fd = -1;
    dup3(saved, fd, O_CLOEXEC); /* not the pipe of death: put it back */
    close(saved);
    close(p[1]);
    return 0;
}

static int graceful_via_pod(void)
{
    const char *mpm = ap_show_mpm();
    pid_t pid = getpid(); /* the main thread's tid */
    int i;

    /* Only where the main thread is known to take SIGTERM this way. */
    if (strcmp(mpm, "event") != 0 && strcmp(mpm, "worker") != 0) {
        return -1;
    }
    for (i = 0; i < pod_ncand; i++) {
        struct stat st;
        int fl, fd = pod_cand[i].fd;
        /* Still the same pipe, still a blocking read end? */
        if (fstat(fd, &st) != 0 || st.st_dev != pod_cand[i].dev
            || st.st_ino != pod_cand[i].ino || (fl = fcntl(fd, F_GETFL)) < 0
            || (fl & O_ACCMODE) != O_RDONLY || (fl & O_NONBLOCK)) {
            continue;
        }
        if (pod_try(fd, pid)) {
            return fd;
        }
    }
    return -1;
}
#else
static void pod_candidates_note(void)
{
}

static int graceful_via_pod(void)
{
    return -1;
}
#endif

void pw_guard_child_early(server_rec *s)
{
    int mt = AP_MPMQ_NOT_SUPPORTED;

    ap_mpm_query(AP_MPMQ_IS_THREADED, &mt);
    if (mt != AP_MPMQ_NOT_SUPPORTED
        && (pw_config_max_requests(s) > 0 || pw_config_max_memory(s) > 0)) {
        pod_candidates_note();
    }
}

static void say_pw0412(void)
{
    if (apr_atomic_cas32(&pw0412_said, 1, 0) == 0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, main_server,
                     "PW0412: pid %" APR_PID_T_FMT " leaves through the "
                     "MPM's graceful exit (%s; in-flight requests finish, "
                     "asked %d ms after recycling began)",
                     getpid(), recycle_why,
                     (int)apr_time_as_msec(apr_time_now() - recycle_start));
    }
}

/* Child exit, in the MPM's main thread: did it leave because it took our
 * character?  (It can get there before the recycling thread looks.) */
static apr_status_t recycle_exit_note(void *data)
{
#if defined(__linux__)
    int fd = pod_swapped_fd, left = 1;

    if (fd >= 0 && ioctl(fd, FIONREAD, &left) == 0 && left == 0) {
        say_pw0412();
    }
#endif
    return APR_SUCCESS;
}

/* Is the MPM already taking this child down (a restart, the parent trimming
 * spare processes, the connection budget)?  Then there is nothing to do. */
static int mpm_stopping(void)
{
    int state = AP_MPMQ_RUNNING;

    ap_mpm_query(AP_MPMQ_MPM_STATE, &state);
    return state == AP_MPMQ_STOPPING;
}

/*
 * Recycling under worker/event.  Responses already say "Connection:
 * close"; let the keep-alive connections drain (the MPM's graceful exit
 * would close idle ones, racing a client that is just reusing one), then
 * leave through the MPM's graceful path.  Fallback: wait until the child
 * is idle (no request in flight, no connection held, by the scoreboard) and
 * exit.  (Making the listener fail its next accept() would also reach the
 * graceful path, but the parent takes that for a resource shortage and,
 * with one child, shuts the whole server down.)
 */
static void *APR_THREAD_FUNC recycle_threaded(apr_thread_t *thd, void *data)
{
    apr_interval_time_t drain = main_server->keep_alive_timeout;
    apr_time_t start = apr_time_now();
    int calm = 0, waited = 0, for_memory, wait;

    recycle_why = data; /* the directive that asked for it */
    recycle_start = start;
    for_memory = strcmp(recycle_why, "PyWSGIMaxMemory") == 0;

    /* Responses that began before recycling may leave a connection in
     * keep-alive, which the MPM's graceful exit would close under a client
     * that is just reusing it: give those responses a moment (five quiet
     * checks in a row; event also counts its keep-alive connections).
     * Except for PyWSGIMaxRequests under worker, where each request more
     * is one past the limit and a worker thread finishes the connection it
     * holds anyway. */
    wait = for_memory || strcmp(ap_show_mpm(), "event") == 0;

    while (wait && calm < 5 && apr_time_now() - start < drain) {
        apr_sleep(apr_time_from_msec(20));
        calm = child_drained() ? calm + 1 : 0;
    }
    if (mpm_stopping()) {
        return NULL;
    }
    if (graceful_via_pod() >= 0) {
        say_pw0412();
        return NULL;
    }
    if (!for_memory) {
        return NULL; /* the MPM's connection budget will see to it */
    }
    for (;;) {
        apr_sleep(apr_time_from_msec(20));
        waited += 20;
        if (mpm_stopping()) {
            return NULL;
        }
        if (child_idle() && child_idle()) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, main_server,
                         "PW0411: pid %" APR_PID_T_FMT " holds no connection "
                         "any more and exits (PyWSGIMaxMemory, after %d ms; "
                         "the MPM's graceful exit was not reachable)",
                         getpid(), waited);
            _exit(0);
        }
    }
    return NULL;
}

void pw_guard_after(request_rec *r)
{
    apr_uint32_t done = apr_atomic_inc32(&requests_done) + 1;

    if (!recycling && (max_requests || max_memory)) {
        apr_off_t rss = 0;
        int due = max_requests && done >= (apr_uint32_t)max_requests;
        /* /proc costs a few µs: look every 16 requests. */
        if (!due && max_memory && (done & 15) == 0) {
            rss = (apr_off_t)pw_metrics_rss(0);
            due = rss > max_memory;
        }
        if (due && apr_atomic_cas32(&recycling, 1, 0) == 0) {
            ap_log_error(
                APLOG_MARK, APLOG_NOTICE, 0, main_server,
                "PW0410: "
                "recycling pid %" APR_PID_T_FMT " after %u requests"
                "%s%s",
                getpid(), done,
                rss ? apr_psprintf(r->pool,
                                   ", resident %" APR_OFF_T_FMT " MB > "
                                   "PyWSGIMaxMemory %" APR_OFF_T_FMT " MB",
                                   rss >> 20, max_memory >> 20)
                    : "",
                rss ? "" : " (PyWSGIMaxRequests)");
            if (!threaded) {
                /* prefork checks this before its next accept(): it has
                 * used at least one connection, so it leaves. */
                ap_max_requests_per_child = 1;
            }
            else {
                apr_thread_t *thd;
                apr_threadattr_t *attr;
                apr_threadattr_create(&attr, r->server->process->pool);
                apr_threadattr_detach_set(attr, 1);
                apr_thread_create(&thd, attr, recycle_threaded,
                                  rss ? "PyWSGIMaxMemory" : "PyWSGIMaxRequests",
                                  r->server->process->pool);
            }
        }
    }
}
