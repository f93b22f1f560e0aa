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
#include "ap_mpm.h"
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

static apr_status_t interp_cleanup(void *data);
static int interp_setup(server_rec *s);
static void report_startup(server_rec *s);

static PyInterpreterState *main_interp;
static PyThreadState *main_tstate;
static int python_ready;
static server_rec *main_server;

/* This Apache thread's Python thread state, and whether it is serving a
 * request right now (then an exit from a signal handler must not
 * finalise under its feet). */
static __thread PyThreadState *thread_state;
static __thread int thread_busy;

PyThreadState *pw_interp_acquire(apr_interval_time_t *waited)
{
    apr_time_t before;

    if (!python_ready) {
        return NULL;
    }
    if (thread_state == NULL) {
        /* Public API only: PyThreadState_New needs no GIL. */
        thread_state = PyThreadState_New(main_interp);
        if (thread_state == NULL) {
            return NULL;
        }
    }
    before = apr_time_now();
    PyEval_RestoreThread(thread_state);
    *waited = apr_time_now() - before;
    thread_busy = 1;
    return thread_state;
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
    main_interp = PW_TSTATE_INTERP(main_tstate);
    if (interp_setup(s) < 0) {
        pw_log_exception(NULL, s, "PW0101: Python started but mod_pywsgi "
                         "could not set it up in pid %" APR_PID_T_FMT
                         "; requests will get 500:", getpid());
        PyEval_SaveThread();
        return;
    }
    report_startup(s);
    /* This thread serves requests under prefork: its state is main's. */
    thread_state = main_tstate;
    python_ready = 1;
    PyEval_SaveThread();
    apr_pool_cleanup_register(pchild, NULL, interp_cleanup,
                              apr_pool_cleanup_null);
    return;

fail_status:
    /* Never Py_ExitStatusException(): it would exit the child. */
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "PW0101: Python could not "
                 "start in pid %" APR_PID_T_FMT ": %s%s%s (program %s, "
                 "virtualenv %s); requests will get 500", getpid(),
                 status.func ? status.func : "",
                 status.func ? ": " : "",
                 status.err_msg ? status.err_msg : "unknown error",
                 venv ? apr_pstrcat(pchild, venv, "/bin/python", NULL)
                      : PW_PYTHON_PREFIX "/bin/python" PW_PY_MAJOR_MINOR,
                 venv ? venv : "none");
}

/* GIL held.  Everything per process is prepared here, once. */
static int interp_setup(server_rec *s)
{
    const apr_array_header_t *dirs = pw_config_python_path(s);
    PyObject *sys_path;
    int i;

    if (pw_log_init(s) < 0 || pw_input_interp_init() < 0
        || pw_response_interp_init() < 0 || pw_environ_interp_init(s) < 0) {
        return -1;
    }
    sys_path = PySys_GetObject("path");    /* borrowed */
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

/* One line per child that answers "which Python is this, really?" — the
 * question behind most mod_wsgi set-up reports. */
static void report_startup(server_rec *s)
{
    const char *venv = pw_config_venv(s);
    const char *prefix = "?";
    PyObject *p = PySys_GetObject("prefix");    /* borrowed */
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
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "PW0001: Python %s "
                 "initialised in pid %" APR_PID_T_FMT ": libpython %s, "
                 "sys.prefix %s, virtualenv %s, MPM %s", version, getpid(),
                 lib, prefix, venv ? venv : "none", ap_show_mpm());
}

/* Finalisation runs atexit handlers and joins the app's non-daemon
 * threads; one that never ends must not keep a graceful restart waiting,
 * so a watchdog ends the child after PyWSGIShutdownTimeout. */
static void *watchdog(void *arg)
{
    apr_interval_time_t timeout = *(apr_interval_time_t *)arg;

    apr_sleep(timeout);
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server, "PW0102: Python "
                 "finalisation in pid %" APR_PID_T_FMT " took more than %"
                 APR_TIME_T_FMT " s (a thread that never ends?); exiting "
                 "without it", getpid(), apr_time_sec(timeout));
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
        return APR_SUCCESS;     /* no watchdog: do not risk hanging */
    }
    pthread_attr_destroy(&attr);

    PyEval_RestoreThread(main_tstate);
    pw_log_fini();
    if (Py_FinalizeEx() < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server, "PW0103: "
                     "Python finalisation in pid %" APR_PID_T_FMT " reported "
                     "an error (flushing buffered data failed)", getpid());
    }
    return APR_SUCCESS;
}
