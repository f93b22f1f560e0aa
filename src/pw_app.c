/*
 * pw_app.c: what an application target is, and loading it in a child.
 *
 * Here: parsing TARGET at config time (no Python), and loading the callable
 * on first use in each child.  Locking: pw_app_declare() runs in the parent
 * without Python; pw_app_callable() needs the GIL, and serialises first
 * loads with a mutex it waits for with the GIL released (an import may
 * release the GIL, so two threads must not both load the same app).
 */
#include "pw_app.h"
#include "pw_log.h"
#include "apr_hash.h"
#include "apr_lib.h"
#include "apr_thread_mutex.h"
#include "util_md5.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

static int is_dotted_name(const char *s, apr_size_t len);
static PyObject *load_script(pw_app_t *app);
static PyObject *load_module(pw_app_t *app, int reload);
static PyObject *resolve_callable(pw_app_t *app, PyObject *module);
static int add_path(const char *dir, apr_size_t len);
static apr_time_t file_mtime(const char *path);

/* First loads are rare; one lock for all apps of the child is enough. */
static apr_thread_mutex_t *load_lock;

#define PW_APP_REGISTRY "pywsgi.apps"

/* identifier ("." identifier)*, ASCII only: what gunicorn accepts too. */
static int is_dotted_name(const char *s, apr_size_t len)
{
    apr_size_t i;
    int start = 1;

    if (len == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (start) {
                return 0;
            }
            start = 1;
            continue;
        }
        if (!(apr_isalpha(c) || c == '_' || (!start && apr_isdigit(c)))) {
            return 0;
        }
        start = 0;
    }
    return !start;
}

pw_app_t *pw_app_declare(apr_pool_t *pconf, const char *target,
                         const char *callable, const char *python_path,
                         const char **err)
{
    apr_hash_t *registry = NULL;
    pw_app_t app = { 0 }, *found;
    const char *colon, *slash, *key;
    apr_size_t len = strlen(target);

    slash = strrchr(target, '/');
    colon = strrchr(slash ? slash : target, ':');
    app.target = apr_pstrdup(pconf, target);

    if (slash || (len > 3 && strcmp(target + len - 3, ".py") == 0)) {
        app.kind = PW_TARGET_SCRIPT;
        /* "/srv/app.py:app" is accepted as gunicorn users would expect. */
        if (colon) {
            if (callable) {
                *err = "give the callable either after ':' or as "
                       "callable=NAME, not both";
                return NULL;
            }
            callable = colon + 1;
            app.path = ap_server_root_relative(
                pconf, apr_pstrmemdup(pconf, target, colon - target));
        }
        else {
            app.path = ap_server_root_relative(pconf, target);
        }
    }
    else {
        app.kind = PW_TARGET_MODULE;
        if (colon) {
            if (callable) {
                *err = "give the callable either after ':' or as "
                       "callable=NAME, not both";
                return NULL;
            }
            callable = colon + 1;
            app.path = apr_pstrmemdup(pconf, target, colon - target);
        }
        else {
            app.path = app.target;
        }
        if (!is_dotted_name(app.path, strlen(app.path))) {
            *err = apr_psprintf(pconf,
                                "'%s' is neither a script file (a path"
                                " or a name ending in .py) nor "
                                "package.module:callable",
                                target);
            return NULL;
        }
    }
    if (callable == NULL) {
        callable = "application"; /* PEP 3333's customary name */
    }
    len = strlen(callable);
    if (len > 2 && strcmp(callable + len - 2, "()") == 0) {
        app.call_factory = 1;
        len -= 2;
    }
    if (!is_dotted_name(callable, len)) {
        *err = apr_psprintf(pconf,
                            "callable '%s' is not a Python name (nor "
                            "name() for a factory)",
                            callable);
        return NULL;
    }
    app.callable = apr_pstrmemdup(pconf, callable, len);

    /* The same app mounted twice (two vhosts, two prefixes) loads once. */
    apr_pool_userdata_get((void **)&registry, PW_APP_REGISTRY, pconf);
    if (registry == NULL) {
        registry = apr_hash_make(pconf);
        apr_pool_userdata_set(registry, PW_APP_REGISTRY, apr_pool_cleanup_null,
                              pconf);
    }
    app.python_path = python_path ? apr_pstrdup(pconf, python_path) : NULL;
    key =
        apr_psprintf(pconf, "%d|%s|%s|%d|%s", app.kind, app.path, app.callable,
                     app.call_factory, python_path ? python_path : "");
    found = apr_hash_get(registry, key, APR_HASH_KEY_STRING);
    if (found) {
        return found;
    }
    if (app.kind == PW_TARGET_SCRIPT) {
        app.module_name =
            apr_pstrcat(pconf, "_pywsgi_",
                        ap_md5(pconf, (const unsigned char *)app.path), NULL);
    }
    found = apr_pmemdup(pconf, &app, sizeof(app));
    apr_hash_set(registry, key, APR_HASH_KEY_STRING, found);
    return found;
}

void pw_app_child_init(apr_pool_t *pchild)
{
    apr_thread_mutex_create(&load_lock, APR_THREAD_MUTEX_DEFAULT, pchild);
}

/* GIL held.  Whether the app's file changed since it was loaded. */
static int changed(pw_app_t *app, int interp)
{
    const char *file = app->file[interp];

    return file && file_mtime(file) != app->mtime[interp];
}

/* GIL held, load lock held.  Load (or reload) the app into interp. */
static void load(pw_app_t *app, int interp, request_rec *r, server_rec *s)
{
    PyObject *module, *obj, *file;
    const char *p, *colon;
    int again = app->obj[interp] != NULL;

    for (p = app->python_path; p && *p; p = colon ? colon + 1 : "") {
        colon = strchr(p, ':');
        if (add_path(p, colon ? (apr_size_t)(colon - p) : strlen(p)) < 0) {
            PyErr_Clear();
        }
    }
    module = app->kind == PW_TARGET_SCRIPT ? load_script(app)
                                           : load_module(app, again);
    obj = module ? resolve_callable(app, module) : NULL;
    if (obj == NULL) {
        const char *name = pw_interp_name(interp);
        pw_log_exception(r, s,
                         "PW0201: %s: application '%s' failed to "
                         "load in interpreter '%s':",
                         r ? r->uri : "(preload)", app->target, name);
        if (interp != 0) {
            /* The usual reason an app loads in main but not here. */
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, r ? r->server : s,
                         "PW0202: '%s' runs in sub-interpreter '%s'; C "
                         "extensions that do not support sub-interpreters "
                         "(numpy, psycopg2, pydantic-core, ...) fail there: "
                         "use PyWSGIInterpreter main (or interpreter=main)",
                         app->target, name);
        }
        Py_XDECREF(module);
        return;
    }
    /* Remember the file and its time, for PyWSGIReload. */
    file = PyObject_GetAttrString(module, "__file__");
    if (file && PyUnicode_Check(file)) {
        const char *f = PyUnicode_AsUTF8(file);
        if (f
            && (app->file[interp] == NULL
                || strcmp(f, app->file[interp]) != 0)) {
            free((void *)app->file[interp]);
            app->file[interp] = strdup(f);
        }
    }
    PyErr_Clear();
    Py_XDECREF(file);
    Py_DECREF(module);
    app->mtime[interp] = app->file[interp] ? file_mtime(app->file[interp]) : 0;
    if (again) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, r ? r->server : s,
                     "PW0203: application '%s' reloaded in pid %" APR_PID_T_FMT
                     " (its file changed)",
                     app->target, getpid());
    }
    Py_XSETREF(app->obj[interp], obj); /* owned for the child's life */
    pw_log_logging_hook();
}

PyObject *pw_app_callable(pw_app_t *app, int interp, int reload, request_rec *r,
                          server_rec *s)
{
    PyObject *obj = app->obj[interp];

    if (obj && !(reload && changed(app, interp))) {
        /* The hot path: loaded once per child.  A new reference, because a
         * reload in another thread may replace it while this one runs. */
        return Py_NewRef(obj);
    }

    Py_BEGIN_ALLOW_THREADS
        apr_thread_mutex_lock(load_lock);
    Py_END_ALLOW_THREADS

    if (app->obj[interp] == NULL || (reload && changed(app, interp))) {
        load(app, interp, r, s);
    }
    obj = app->obj[interp];
    Py_XINCREF(obj);
    apr_thread_mutex_unlock(load_lock);
    return obj;
}

static apr_time_t file_mtime(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        return -1;
    }
    return apr_time_from_sec(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1000;
}

/* Put dir in front of sys.path unless it is there already. */
static int add_path(const char *path, apr_size_t len)
{
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    PyObject *dir;
    int rc = 0, present;

    if (sys_path == NULL || !PyList_Check(sys_path) || len == 0) {
        return 0;
    }
    dir = PyUnicode_DecodeFSDefaultAndSize(path, (Py_ssize_t)len);
    if (dir == NULL) {
        return -1;
    }
    present = PySequence_Contains(sys_path, dir);
    if (present == 0) {
        rc = PyList_Insert(sys_path, 0, dir);
    }
    else if (present < 0) {
        rc = -1;
    }
    Py_DECREF(dir);
    return rc;
}

/* The script's own directory goes in front of sys.path, so it can import
 * its neighbours as `python app.py` would. */
static int add_script_dir(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? add_path(path, (apr_size_t)(slash - path)) : 0;
}

/*
 * importlib does what `import` does for a module: __spec__, __file__,
 * __loader__, sys.modules.  Frameworks look at those (Flask finds its
 * root_path through sys.modules[__name__].__file__).  A SourceFileLoader is
 * named explicitly so that a script need not end in .py (app.wsgi).
 * importlib.util costs a child ~0.7 MB of modules (contextlib, functools,
 * ...); its two functions come from importlib's always-loaded bootstrap
 * modules instead, where they have lived since Python 3.4.
 */
static PyObject *load_script(pw_app_t *app)
{
    PyObject *external = NULL, *bootstrap = NULL, *loader = NULL;
    PyObject *spec = NULL;
    PyObject *module = NULL, *modules, *res;

    if (add_script_dir(app->path) < 0) {
        return NULL;
    }
    external = PyImport_ImportModule("importlib._bootstrap_external");
    bootstrap = PyImport_ImportModule("importlib._bootstrap");
    if (external == NULL || bootstrap == NULL) {
        goto done;
    }
    loader = PyObject_CallMethod(external, "SourceFileLoader", "ss",
                                 app->module_name, app->path);
    if (loader == NULL) {
        goto done;
    }
    {
        PyObject *fn =
            PyObject_GetAttrString(external, "spec_from_file_location");
        PyObject *args = Py_BuildValue("(ss)", app->module_name, app->path);
        PyObject *kw = Py_BuildValue("{sO}", "loader", loader);
        spec = (fn && args && kw) ? PyObject_Call(fn, args, kw) : NULL;
        Py_XDECREF(fn);
        Py_XDECREF(args);
        Py_XDECREF(kw);
    }
    if (spec == NULL) {
        goto done;
    }
    module = PyObject_CallMethod(bootstrap, "module_from_spec", "O", spec);
    if (module == NULL) {
        goto done;
    }
    modules = PyImport_GetModuleDict(); /* borrowed */
    if (PyDict_SetItemString(modules, app->module_name, module) < 0) {
        Py_CLEAR(module);
        goto done;
    }
    res = PyObject_CallMethod(loader, "exec_module", "O", module);
    if (res == NULL) {
        /* As import does: a module that failed to run is not kept. */
        PyObject *exc = PW_ERR_TAKE();
        if (PyDict_DelItemString(modules, app->module_name) < 0) {
            PyErr_Clear();
        }
        PW_ERR_RESTORE(exc);
        Py_CLEAR(module);
        goto done;
    }
    Py_DECREF(res);

done:
    Py_XDECREF(external);
    Py_XDECREF(bootstrap);
    Py_XDECREF(loader);
    Py_XDECREF(spec);
    return module;
}

static PyObject *load_module(pw_app_t *app, int reload)
{
    PyObject *module = PyImport_ImportModule(app->path);

    if (module && reload) {
        Py_SETREF(module, PyImport_ReloadModule(module));
    }
    return module;
}

/* module.a.b, then a call for "factory()"; checks the result is callable. */
static PyObject *resolve_callable(pw_app_t *app, PyObject *module)
{
    PyObject *obj = Py_NewRef(module), *next;
    const char *name = app->callable, *dot;

    while (obj && *name) {
        PyObject *attr;
        dot = strchr(name, '.');
        attr = dot ? PyUnicode_FromStringAndSize(name, dot - name)
                   : PyUnicode_FromString(name);
        next = attr ? PyObject_GetAttr(obj, attr) : NULL;
        Py_XDECREF(attr);
        Py_DECREF(obj);
        obj = next;
        name = dot ? dot + 1 : "";
    }
    if (obj && app->call_factory) {
        next = PyObject_CallNoArgs(obj);
        Py_DECREF(obj);
        obj = next;
    }
    if (obj && !PyCallable_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "'%s' in '%s' is a %s, not a WSGI "
                     "callable",
                     app->callable, app->path, Py_TYPE(obj)->tp_name);
        Py_CLEAR(obj);
    }
    return obj;
}
