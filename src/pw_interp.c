/*
 * pw_interp.c: Python's life in an Apache child, and the GIL.
 *
 * Here: initialisation in child_init (never in the parent, which runs as
 * root and re-reads its config on restart), the startup self-report,
 * thread states (one per Apache thread, made on first use, kept until the
 * child exits), and bounded finalisation at child exit.  Locking: this file
 * takes and drops the GIL; its callers hold nothing when they call in.
 *
 * Decisions, after CPython's "Python Initialization Configuration" (PEP 587):
 * - the isolated configuration: no PYTHON* environment variables, no user
 *   site-packages, no signal handlers (Apache owns the signals);
 * - UTF-8 mode: Apache children run in the C locale, where Python would
 *   otherwise use ASCII for file names and open();
 * - program_name is the Python the module was built for, or the
 *   virtualenv's bin/python: Python then finds its prefix, and the venv's
 *   pyvenv.cfg, the way the interpreter on the command line does, whatever
 *   PATH the children inherited.
 */
#include "pw_interp.h"
#include "pw_config.h"
#include "pw_log.h"
#include "pw_environ.h"
#include "pw_input.h"
#include "pw_response.h"
#include "pw_app.h"
#include "ap_mpm.h"
#include "apr_lib.h"
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

static apr_status_t interp_cleanup(void *data);
static int interp_setup(server_rec *s, int interp);
static void report_startup(server_rec *s);
static void start_subinterpreters(server_rec *s);
static void preload_apps(server_rec *s);
static void end_subinterpreters(void);

/* Names declared by the configuration (parent, then inherited by fork). */
static const char *interp_names[PW_MAX_INTERPS] = { "main" };
static int interp_count = 1;

/* This child's interpreters; NULL where one could not be started. */
static PyInterpreterState *interps[PW_MAX_INTERPS];
static PyThreadState *main_tstate;
static int python_ready;
static server_rec *main_server;

/* This Apache thread's Python thread state in each interpreter, and
 * whether it is serving a request right now (then an exit from a signal
 * handler must not finalise under its feet). */
static __thread PyThreadState *thread_states[PW_MAX_INTERPS];
static __thread int thread_busy;
static __thread int thread_interp;

int pw_interp_current(void)
{
    return thread_interp;
}

void pw_interp_pre_config(void)
{
    interp_count = 1;
}

int pw_interp_declare(const char *name, const char **err)
{
    const char *c;
    int i;

    if (*name == '\0') {
        *err = "an interpreter needs a name ('main' or letters, digits, "
               "'_', '-', '.')";
        return -1;
    }
    for (c = name; *c; c++) {
        if (!apr_isalnum(*c) && *c != '_' && *c != '-' && *c != '.') {
            *err = apr_psprintf(apr_hook_global_pool,
                                "interpreter name "
                                "'%s' may hold only letters, digits, '_', "
                                "'-' and '.'",
                                name);
            return -1;
        }
    }
    for (i = 0; i < interp_count; i++) {
        if (strcmp(interp_names[i], name) == 0) {
            return i;
        }
    }
    if (interp_count == PW_MAX_INTERPS) {
        *err = apr_psprintf(apr_hook_global_pool,
                            "more than %d "
                            "interpreters; '%s' is one too many",
                            PW_MAX_INTERPS - 1, name);
        return -1;
    }
    /* The hook pool lives as long as the configuration does. */
    interp_names[interp_count] = apr_pstrdup(apr_hook_global_pool, name);
    return interp_count++;
}

const char *pw_interp_name(int interp)
{
    return interp_names[interp];
}

PyThreadState *pw_interp_acquire(int interp, apr_interval_time_t *waited)
{
    PyThreadState *tstate = thread_states[interp];
    apr_time_t before;

    if (!python_ready || interps[interp] == NULL) {
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

void pw_interp_release(PyThreadState *tstate)
{
    thread_busy = 0;
    PyEval_SaveThread();
}

void pw_interp_child_init(apr_pool_t *pchild, server_rec *s)
{
    const char *venv = pw_config_venv(s);
    const char *program;
    char *argv0 = "mod_pywsgi";
    PyPreConfig preconfig;
    PyConfig config;
    PyStatus status;

    main_server = s;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;
    status = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(status)) {
        goto fail_status;
    }

    PyConfig_InitIsolatedConfig(&config);
    program = venv ? apr_pstrcat(pchild, venv, "/bin/python", NULL)
                   : PW_PYTHON_PREFIX "/bin/python" PW_PY_MAJOR_MINOR;
    status = PyConfig_SetBytesString(&config, &config.program_name, program);
    if (!PyStatus_Exception(status)) {
        /* sys.argv[0]: some libraries read it; there is no script. */
        status = PyConfig_SetBytesArgv(&config, 1, &argv0);
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        goto fail_status;
    }

    main_tstate = PyThreadState_Get();
    interps[0] = PW_TSTATE_INTERP(main_tstate);
    if (interp_setup(s, 0) < 0) {
        pw_log_exception(NULL, s,
                         "PW0101: Python started but mod_pywsgi "
                         "could not set it up in pid %" APR_PID_T_FMT
                         "; requests will get 500:",
                         getpid());
        PyEval_SaveThread();
        return;
    }
    report_startup(s);
    /* This thread serves requests under prefork: its state is main's. */
    thread_states[0] = main_tstate;
    start_subinterpreters(s);
    python_ready = 1;
    preload_apps(s);
    PyEval_SaveThread();
    apr_pool_cleanup_register(pchild, NULL, interp_cleanup,
                              apr_pool_cleanup_null);
    return;

fail_status:
    /* Never Py_ExitStatusException(): it would exit the child. */
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                 "PW0101: Python could not "
                 "start in pid %" APR_PID_T_FMT ": %s%s%s (program %s, "
                 "virtualenv %s); requests will get 500",
                 getpid(), status.func ? status.func : "",
                 status.func ? ": " : "",
                 status.err_msg ? status.err_msg : "unknown error",
                 venv ? apr_pstrcat(pchild, venv, "/bin/python", NULL)
                      : PW_PYTHON_PREFIX "/bin/python" PW_PY_MAJOR_MINOR,
                 venv ? venv : "none");
}

/* GIL held.  Everything per interpreter is prepared here, once. */
static int interp_setup(server_rec *s, int interp)
{
    const apr_array_header_t *dirs = pw_config_python_path(s);
    PyObject *sys_path;
    int i;

    PyObject *threading;

    if (pw_log_init(s, interp) < 0 || pw_input_interp_init() < 0
        || pw_response_interp_init() < 0
        || pw_environ_interp_init(s, interp) < 0) {
        return -1;
    }
    /* threading takes the thread that first imports it for the main
     * thread, and finalisation waits for that thread to end.  Import it
     * here, in the thread that will finalise, not in a worker thread that
     * lives until the child exits. */
    threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return -1;
    }
    Py_DECREF(threading);
    if (interp == 0) {
        /* A crash in a C extension then leaves the Python stack of the
         * crashing thread in the error log (Apache's stderr), after the
         * module's own PW0003 line. */
        PyObject *fh = PyImport_ImportModule("faulthandler");
        PyObject *res =
            fh ? PyObject_CallMethod(fh, "enable", "ii", 2, 0) : NULL;
        Py_XDECREF(res);
        Py_XDECREF(fh);
        if (res == NULL) {
            PyErr_Clear();
        }
    }
    sys_path = PySys_GetObject("path"); /* borrowed */
    if (sys_path == NULL || !PyList_Check(sys_path)) {
        PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
        return -1;
    }
    /* PyWSGIPythonPath A B: A first, then B, then the rest. */
    for (i = dirs->nelts - 1; i >= 0; i--) {
        const char *dir = APR_ARRAY_IDX(dirs, i, const char *);
        PyObject *d = PyUnicode_DecodeFSDefault(dir);
        if (d == NULL || PyList_Insert(sys_path, 0, d) < 0) {
            Py_XDECREF(d);
            return -1;
        }
        Py_DECREF(d);
    }
    return 0;
}

/* GIL of main held; returns with it.  Each named interpreter gets its own
 * modules, sys.path and globals (Py_NewInterpreter: the legacy kind, which
 * shares the GIL and accepts single-phase extension modules). */
static void start_subinterpreters(server_rec *s)
{
    int i;

    for (i = 1; i < interp_count; i++) {
        PyThreadState *tstate = Py_NewInterpreter();
        thread_interp = i;
        if (tstate == NULL) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "PW0105: "
                         "sub-interpreter '%s' could not be created in pid "
                         "%" APR_PID_T_FMT "; its apps will get 500",
                         interp_names[i], getpid());
            PyThreadState_Swap(main_tstate);
            continue;
        }
        if (interp_setup(s, i) < 0) {
            pw_log_exception(NULL, s,
                             "PW0105: sub-interpreter '%s' could not"
                             " be set up in pid %" APR_PID_T_FMT "; its apps "
                             "will get 500:",
                             interp_names[i], getpid());
            Py_EndInterpreter(tstate);
            PyThreadState_Swap(main_tstate);
            continue;
        }
        interps[i] = PW_TSTATE_INTERP(tstate);
        thread_states[i] = tstate;
        PyThreadState_Swap(main_tstate);
    }
    thread_interp = 0;
}

/* GIL of main held; returns with it.  PyWSGIPreload: the first request
 * should not pay for the import. */
static void preload_apps(server_rec *s)
{
    const apr_array_header_t *pre = pw_config_preloads(s);
    int i;

    for (i = 0; i < pre->nelts; i++) {
        const pw_preload_t *p = &APR_ARRAY_IDX(pre, i, pw_preload_t);
        PyObject *obj;
        if (interps[p->interp] == NULL) {
            continue;
        }
        PyThreadState_Swap(thread_states[p->interp]);
        thread_interp = p->interp;
        obj = pw_app_callable(p->app, p->interp, 0, NULL, s);
        Py_XDECREF(obj);
        PyThreadState_Swap(main_tstate);
        thread_interp = 0;
    }
}

/* One line per child that answers "which Python is this, really?" — the
 * question behind most mod_wsgi set-up reports. */
static void report_startup(server_rec *s)
{
    const char *venv = pw_config_venv(s);
    const char *prefix = "?";
    PyObject *p = PySys_GetObject("prefix"); /* borrowed */
    Dl_info info;
    const char *lib = "?";
    char version[32];
    const char *v = Py_GetVersion();
    size_t n = strcspn(v, " ");

    if (n >= sizeof(version)) {
        n = sizeof(version) - 1;
    }
    memcpy(version, v, n);
    version[n] = '\0';
    if (p && PyUnicode_Check(p)) {
        prefix = PyUnicode_AsUTF8(p);
        if (prefix == NULL) {
            PyErr_Clear();
            prefix = "?";
        }
    }
    if (dladdr((void *)Py_InitializeFromConfig, &info) && info.dli_fname) {
        lib = info.dli_fname;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "PW0001: Python %s "
                 "initialised in pid %" APR_PID_T_FMT ": libpython %s, "
                 "sys.prefix %s, virtualenv %s, MPM %s",
                 version, getpid(), lib, prefix, venv ? venv : "none",
                 ap_show_mpm());
}

/* GIL of main held.  Py_FinalizeEx() refuses to run while sub-interpreters
 * live, and Py_EndInterpreter() while another thread state of its
 * interpreter does: the worker threads' states go first.  The workers have
 * been joined (or are idle for good): nothing runs on those states. */
static void end_subinterpreters(void)
{
    int i;

    for (i = 1; i < interp_count; i++) {
        PyThreadState *mine = thread_states[i], *t, *next;
        if (interps[i] == NULL || mine == NULL) {
            continue;
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
        PyThreadState_Swap(main_tstate);
    }
}

/* Finalisation runs atexit handlers and joins the app's non-daemon
 * threads; one that never ends must not keep a graceful restart waiting,
 * so a watchdog ends the child after PyWSGIShutdownTimeout. */
static void *watchdog(void *arg)
{
    apr_interval_time_t timeout = *(apr_interval_time_t *)arg;
    apr_time_t deadline = apr_time_now() + timeout, now;
    sigset_t all;

    /* apr_sleep() returns early on a signal, and Apache signals the whole
     * process group on restarts: block them all here and sleep until an
     * absolute deadline. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while ((now = apr_time_now()) < deadline) {
        apr_sleep(deadline - now);
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                 "PW0102: Python "
                 "finalisation in pid %" APR_PID_T_FMT
                 " took more than %" APR_TIME_T_FMT
                 " s (a thread that never ends?); exiting "
                 "without it",
                 getpid(), apr_time_sec(timeout));
    _exit(0);
    return NULL;
}

static apr_status_t interp_cleanup(void *data)
{
    static apr_interval_time_t timeout;
    pthread_t tid;
    pthread_attr_t attr;

    if (!python_ready) {
        return APR_SUCCESS;
    }
    if (thread_busy) {
        /* A signal ended the child in the middle of a request on this very
         * thread (prefork's hard stop): finalising now would pull Python
         * out from under the request.  The process is exiting anyway. */
        return APR_SUCCESS;
    }
    python_ready = 0;
    timeout = pw_config_shutdown_timeout(main_server);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, watchdog, &timeout) != 0) {
        pthread_attr_destroy(&attr);
        return APR_SUCCESS; /* no watchdog: do not risk hanging */
    }
    pthread_attr_destroy(&attr);

    PyEval_RestoreThread(main_tstate);
    pw_log_fini();
    end_subinterpreters();
    if (Py_FinalizeEx() < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     "PW0103: "
                     "Python finalisation in pid %" APR_PID_T_FMT " reported "
                     "an error (flushing buffered data failed)",
                     getpid());
    }
    return APR_SUCCESS;
}
