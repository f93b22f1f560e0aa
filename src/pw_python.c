/*
 * pw_python.c: Python's life in an Apache child.
 *
 * Here: initialisation in child_init (never in the parent, which runs as
 * root and re-reads its config on restart), the set-up of each interpreter
 * for requests (each concern's per-interpreter state, sys.path), the
 * startup self-report, preloading, and bounded finalisation at child exit.
 * This is the lifecycle layer: it calls down into the request path (the
 * handler's per-interpreter state, the apps), the services (log) and the
 * registry (pw_interp.c); none of them calls it.  Locking: child_init runs in
 * the child's main thread before any request, with the GIL from Python's start
 * until it gives it back; the exit cleanup takes main's GIL.
 *
 * Decisions, after CPython's "Python Initialization Configuration" (PEP 587):
 * - the isolated configuration: no PYTHON* environment variables, no user
 *   site-packages, no signal handlers (Apache owns the signals);
 * - UTF-8 mode: Apache children run in the C locale, where Python would
 *   otherwise use ASCII for file names and open();
 * - program_name is the Python the module was built for, or the
 *   virtualenv's bin/python: Python then finds its prefix, and the venv's
 *   pyvenv.cfg, the way the interpreter on the command line does, whatever
 *   PATH the children inherited;
 * - under mpm-itk the child (root) forks a process per connection, which
 *   switches to the host's user: nothing here calls PyOS_AfterFork_Child()
 *   there.  At that fork the child holds no GIL and runs no Python thread,
 *   so the copy is consistent, and CPython 3.11's PyOS_AfterFork_Child()
 *   would delete every sub-interpreter but main.  No app is loaded in the
 *   root child (PyWSGIPreload is refused there, PW0706); docs/shared-
 *   hosting.md.
 */
#include "pw_python.h"
#include "pw_app.h"
#include "pw_config.h"
#include "pw_handler.h"
#include "pw_interp.h"
#include "pw_log.h"
#include "ap_mpm.h"
#include "apr_file_io.h"
#include "apr_lib.h"
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

static int interp_setup(server_rec *s, int interp);
static int interp_setup_late(int interp);
static int interp_teardown(int interp);
static void start_subinterpreters(server_rec *s);
static void preload_apps(server_rec *s);
static void report_startup(server_rec *s);
static apr_status_t python_cleanup(void *data);
static const char *why_no_start(apr_pool_t *p, const char *venv);

static server_rec *main_server;
static int python_up; /* finalisation is ours to do */

void pw_python_child_init(apr_pool_t *pchild, server_rec *s)
{
    const char *venv = pw_config_venv(s);
    const char *program;
    char *argv0 = "mod_pywsgi";
    PyPreConfig preconfig;
    PyConfig config;
    PyStatus status;
    int i;

    main_server = s;
    for (i = 0; i < pw_config_interp_count(); i++) {
        pw_interp_name_set(i, pw_config_interp_name(i));
    }
    pw_app_child_init(pchild, pw_config_target_count());
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

    pw_interp_adopt_main(PyThreadState_Get());
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
    pw_interp_set_setup(interp_setup_late, pw_config_interp_count());
    start_subinterpreters(s);
    python_up = 1;
    pw_interp_set_ready(1);
    preload_apps(s);
    PyEval_SaveThread();
    apr_pool_cleanup_register(pchild, NULL, python_cleanup,
                              apr_pool_cleanup_null);
    return;

fail_status:
    /* Never Py_ExitStatusException(): it would exit the child. */
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                 "PW0101: Python could not "
                 "start in pid %" APR_PID_T_FMT ": %s%s%s (program %s, "
                 "virtualenv %s)%s; requests will get 500",
                 getpid(), status.func ? status.func : "",
                 status.func ? ": " : "",
                 status.err_msg ? status.err_msg : "unknown error",
                 venv ? apr_pstrcat(pchild, venv, "/bin/python", NULL)
                      : PW_PYTHON_PREFIX "/bin/python" PW_PY_MAJOR_MINOR,
                 venv ? venv : "none", why_no_start(pchild, venv));
}

/* The standard library Python looks for: PREFIX/lib/python3.X, PREFIX
 * being the parent of the virtualenv's "home" (pyvenv.cfg) or the one the
 * module was built for. */
static const char *stdlib_dir(apr_pool_t *p, const char *venv)
{
    const char *prefix = PW_PYTHON_PREFIX;
    const char *home = venv ? pw_config_venv_value(venv, "home", p) : NULL;

    if (home) {
        /* home is PREFIX/bin */
        char *val = apr_pstrdup(p, home);
        char *end = val + strlen(val);

        while (end > val && end[-1] == '/') {
            *--end = '\0';
        }
        end = strrchr(val, '/');
        if (end && end > val) {
            prefix = apr_pstrndup(p, val, end - val);
        }
    }
    return apr_pstrcat(p, prefix, "/lib/python" PW_PY_MAJOR_MINOR, NULL);
}

/* Why CPython could not start, in the terms an admin acts on: its own
 * message ("init_fs_encoding: failed to get the Python codec") names a
 * symptom.  Runs as the child's User (child_init comes after the MPM drops
 * privileges), so access() answers for that user.  "" when nothing is
 * found wrong. */
static const char *why_no_start(apr_pool_t *p, const char *venv)
{
    const char *lib = stdlib_dir(p, venv);
    char *dir = apr_pstrdup(p, lib), *slash;
    struct stat st;

    /* The first directory on the way that this user cannot enter. */
    for (slash = strchr(dir + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash) {
            *slash = '\0';
        }
        if (access(dir, X_OK) != 0 && errno == EACCES) {
            const char *mode = "";

            if (stat(dir, &st) == 0) {
                mode = apr_psprintf(p, " (mode %04o)",
                                    (unsigned)(st.st_mode & 07777));
            }
            return apr_psprintf(p,
                                ": the standard library %s cannot be "
                                "read by uid %ld, the user Apache's "
                                "children run as: %s%s is closed to it; "
                                "install or copy that Python where the "
                                "User can read it",
                                lib, (long)getuid(), dir, mode);
        }
        if (!slash) {
            break;
        }
        *slash = '/';
    }
    if (access(apr_pstrcat(p, lib, "/encodings/__init__.py", NULL), R_OK)
        != 0) {
        return apr_psprintf(p,
                            ": %s/encodings is missing, so %s is not the "
                            "standard library of a Python " PW_PY_MAJOR_MINOR
                            " (a virtualenv whose home names another Python, "
                            "or a Python moved after it was built)",
                            lib, lib);
    }
    return "";
}

/* GIL of interp held.  Everything per interpreter is prepared here, once:
 * the log's streams first, then the request path's state, which takes
 * wsgi.errors from them. */
static int interp_setup(server_rec *s, int interp)
{
    const apr_array_header_t *dirs = pw_config_python_path(s);
    PyObject *sys_path, *threading;
    int i;

    if (pw_log_init(s, interp) < 0
        || pw_handler_interp_init(interp, pw_log_errors(interp)) < 0) {
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

/* The GIL of a new interpreter made on first use (a virtual host's, for
 * its handler-served files) held, in a request's thread. */
static int interp_setup_late(int interp)
{
    const char *name = pw_interp_name(interp);

    if (interp_setup(main_server, interp) < 0) {
        pw_log_exception(NULL, main_server,
                         "PW0105: sub-interpreter '%s' could not"
                         " be set up in pid %" APR_PID_T_FMT "; its apps "
                         "will get 500:",
                         name, getpid());
        return -1;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, main_server,
                 "PW0705: sub-interpreter '%s' created in pid %" APR_PID_T_FMT
                 " on first use",
                 name, getpid());
    return 0;
}

/* At child exit, in sub-interpreter interp, its GIL held: what the request
 * path keeps running there ends first (an ASGI loop thread, its apps'
 * lifespan shutdown), as main's does before finalisation. */
static int interp_teardown(int interp)
{
    pw_handler_interp_fini(interp, main_server);
    return 0;
}

/* GIL of main held; returns with it.  Each named interpreter gets its own
 * modules, sys.path and globals. */
static void start_subinterpreters(server_rec *s)
{
    int i, n = pw_config_interp_count();

    for (i = 1; i < n; i++) {
        if (pw_config_interp_lazy(i)) {
            continue; /* made when a request first needs it */
        }
        if (pw_interp_create(i, pw_config_interp_own_gil(i)) < 0) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "PW0105: "
                         "sub-interpreter '%s' could not be created in pid "
                         "%" APR_PID_T_FMT "; its apps will get 500",
                         pw_config_interp_name(i), getpid());
            continue;
        }
        if (interp_setup(s, i) < 0) {
            pw_log_exception(NULL, s,
                             "PW0105: sub-interpreter '%s' could not"
                             " be set up in pid %" APR_PID_T_FMT "; its apps "
                             "will get 500:",
                             pw_config_interp_name(i), getpid());
            pw_interp_discard(i);
            continue;
        }
        pw_interp_enter(0);
    }
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

        if (pw_interp_enter(p->interp) < 0) {
            continue; /* not started: PW0105 said so */
        }
        obj = pw_app_callable(p->target, p->interp, 0, NULL, s);
        Py_XDECREF(obj);
        pw_interp_enter(0);
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

static apr_status_t python_cleanup(void *data)
{
    static apr_interval_time_t timeout;
    pthread_t tid;
    int i, kept = 0;
    pthread_attr_t attr;

    if (!python_up) {
        return APR_SUCCESS;
    }
    if (pw_interp_busy()) {
        /* A signal ended the child in the middle of a request on this very
         * thread (prefork's hard stop): finalising now would pull Python
         * out from under the request.  The process is exiting anyway. */
        return APR_SUCCESS;
    }
    python_up = 0;
    timeout = pw_config_shutdown_timeout(main_server);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, watchdog, &timeout) != 0) {
        pthread_attr_destroy(&attr);
        return APR_SUCCESS; /* no watchdog: do not risk hanging */
    }
    pthread_attr_destroy(&attr);

    pw_interp_acquire_for_exit();
    pw_handler_interp_fini(0, main_server);
    pw_log_fini();
    /* Declared ones and those made at run time (files served by handler). */
    for (i = 1; i < PW_MAX_INTERPS; i++) {
        long left = pw_interp_end(i, interp_teardown);
        if (left < 0) {
            kept++; /* made on first use: left to the process's exit */
            continue;
        }
        if (left > 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                         "PW0106: sub-interpreter '%s' in pid %" APR_PID_T_FMT
                         " still runs %ld thread(s) the "
                         "application started (daemon threads) at exit; "
                         "it is left to the process's exit, not ended "
                         "under them, and Python is not finalised in "
                         "this child (main's atexit handlers still ran)",
                         pw_interp_name(i), getpid(), left);
            kept++;
        }
    }
    if (kept) {
        /* Py_FinalizeEx() aborts while a sub-interpreter lives: do the
         * part of it apps rely on, in main, and let the process exit. */
        PyRun_SimpleString("import threading, atexit\n"
                           "threading._shutdown()\n"
                           "atexit._run_exitfuncs()\n");
        return APR_SUCCESS;
    }
    if (Py_FinalizeEx() < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     "PW0103: "
                     "Python finalisation in pid %" APR_PID_T_FMT " reported "
                     "an error (flushing buffered data failed)",
                     getpid());
    }
    return APR_SUCCESS;
}
