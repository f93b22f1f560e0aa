/*
 * pw_app.c: loading an application target in a child.
 *
 * Here: the callable of each configured target (pw_config.c parsed it),
 * loaded on first use (or preloaded) in each interpreter, and re-imported
 * for PyWSGIReload.  Locking: pw_app_callable() needs the GIL, and
 * serialises first loads with a mutex it waits for with the GIL released
 * (an import may release the GIL, so two threads must not both load the
 * same app).
 * Files served by handler (pywsgi-script without a PyWSGIScriptAlias) are
 * targets the configuration never saw: each child makes one per file on its
 * first request (pw_app_file_target), in a table under file_lock, taken
 * without the GIL; they live as long as the child.
 */
#include "pw_app.h"
#include "pw_interp.h"
#include "pw_log.h"
#include "apr_hash.h"
#include "apr_md5.h"
#include "apr_thread_mutex.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

static PyObject *load_script(const pw_target_t *app);
static PyObject *load_module(const pw_target_t *app, int reload);
static PyObject *resolve_callable(const pw_target_t *app, PyObject *module);
static int add_path(const char *dir, apr_size_t len);
static apr_time_t file_mtime(const char *path);
static int refused_extension(char *name, apr_size_t size);

/* This child's state of a target, per interpreter; touched with that
 * interpreter's GIL held. */
typedef struct {
    PyObject *obj[PW_MAX_INTERPS];    /* the WSGI callable, once loaded */
    apr_time_t mtime[PW_MAX_INTERPS]; /* of the file, for PyWSGIReload */
    const char *file[PW_MAX_INTERPS]; /* the module's file; malloc'ed */
} app_state_t;

static app_state_t *states; /* by target id */

/* A file served by handler: its target and its state, together. */
typedef struct {
    pw_target_t target; /* first: a pw_target_t * is a file_app_t * */
    app_state_t state;
    int interp;              /* its own (%{RESOURCE}): 0 not yet, -1 none */
    const char *interp_name; /* "file:PATH" */
} file_app_t;

/* First loads are rare; one lock for all apps of the child is enough. */
static apr_thread_mutex_t *load_lock;

/* Files served by handler: path -> file_app_t, allocated from file_pool;
 * both touched under file_lock only. */
static apr_thread_mutex_t *file_lock;
static apr_pool_t *file_pool;
static apr_hash_t *file_apps;

void pw_app_child_init(apr_pool_t *pchild, int n)
{

    states = apr_pcalloc(pchild, (n > 0 ? n : 1) * sizeof(*states));
    apr_thread_mutex_create(&load_lock, APR_THREAD_MUTEX_DEFAULT, pchild);
    apr_thread_mutex_create(&file_lock, APR_THREAD_MUTEX_DEFAULT, pchild);
    apr_pool_create(&file_pool, pchild);
    file_apps = apr_hash_make(file_pool);
}

/* The state of a target: a configured one's by id, a file's beside it. */
static APR_INLINE app_state_t *state_of(const pw_target_t *app)
{
    return app->id >= 0 ? &states[app->id] : &((file_app_t *)app)->state;
}

int pw_app_file_interp(const pw_target_t *app, const char **name)
{
    file_app_t *f = (file_app_t *)app;
    int interp;

    apr_thread_mutex_lock(file_lock);
    if (f->interp == 0) {
        f->interp_name = apr_pstrcat(file_pool, "file:", app->path, NULL);
        f->interp = pw_interp_reserve(f->interp_name);
    }
    interp = f->interp;
    *name = f->interp_name;
    apr_thread_mutex_unlock(file_lock);
    return interp;
}

const pw_target_t *pw_app_file_target(const char *path)
{
    file_app_t *f;

    apr_thread_mutex_lock(file_lock);
    f = apr_hash_get(file_apps, path, APR_HASH_KEY_STRING);
    if (f == NULL) {
        unsigned char digest[APR_MD5_DIGESTSIZE];
        char hex[2 * APR_MD5_DIGESTSIZE + 1];
        int i;

        f = apr_pcalloc(file_pool, sizeof(*f));
        f->target.id = -1;
        f->target.kind = PW_TARGET_SCRIPT;
        f->target.path = apr_pstrdup(file_pool, path);
        f->target.target = f->target.path;
        f->target.callable = "application";
        /* A name of its own per file, as for PyWSGIScriptAlias scripts:
         * two tenants' app.wsgi are two modules. */
        apr_md5(digest, path, strlen(path));
        for (i = 0; i < APR_MD5_DIGESTSIZE; i++) {
            apr_snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        }
        f->target.module_name = apr_pstrcat(file_pool, "_pywsgi_", hex, NULL);
        apr_hash_set(file_apps, f->target.path, APR_HASH_KEY_STRING, f);
    }
    apr_thread_mutex_unlock(file_lock);
    return &f->target;
}

/* GIL held.  Whether the app's file changed since it was loaded. */
static int changed(const app_state_t *st, int interp)
{
    const char *file = st->file[interp];

    return file && file_mtime(file) != st->mtime[interp];
}

/* GIL held, an exception set.  Is it CPython refusing, in an interpreter
 * with its own GIL, a C extension module with single-phase init (PEP 489)?
 * Then 1, the exception cleared and the module's name in name; else 0, the
 * exception left as it was.  Such a module keeps its state in C globals,
 * one copy per process, which two GILs would touch at once. */
static int refused_extension(char *name, apr_size_t size)
{
    PyObject *exc = PW_ERR_TAKE();
    int found = pw_log_refused_extension(exc, name, size);

    if (found) {
        Py_XDECREF(exc);
    }
    else {
        PW_ERR_RESTORE(exc);
    }
    return found;
}

/* GIL held, load lock held.  Load (or reload) the app into interp. */
static void load(const pw_target_t *app, int interp, request_rec *r,
                 server_rec *s)
{
    app_state_t *st = state_of(app);
    PyObject *module, *obj, *file;
    const char *p, *colon;
    int again = st->obj[interp] != NULL;

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
        char ext[256], line[1024];

        if (pw_interp_own_gil(interp) && refused_extension(ext, sizeof(ext))) {
            /* The one thing to do about it, said once: no traceback (it
             * only shows the import line). */
            apr_snprintf(line, sizeof(line),
                         "PW0110: %s: application '%s' imports the C "
                         "extension module '%s', which does not support "
                         "interpreters with their own GIL (single-phase "
                         "init): put this app in a shared-GIL interpreter "
                         "(remove '%s' from PyWSGIOwnGIL)",
                         r ? r->uri : "(preload)", app->target, ext, name);
            if (r) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s", line);
            }
            else {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "%s", line);
            }
            Py_XDECREF(module);
            return;
        }
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
            && (st->file[interp] == NULL || strcmp(f, st->file[interp]) != 0)) {
            free((void *)st->file[interp]);
            st->file[interp] = strdup(f);
        }
    }
    PyErr_Clear();
    Py_XDECREF(file);
    Py_DECREF(module);
    st->mtime[interp] = st->file[interp] ? file_mtime(st->file[interp]) : 0;
    if (again) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, r ? r->server : s,
                     "PW0203: application '%s' reloaded in pid %" APR_PID_T_FMT
                     " (its file changed)",
                     app->target, getpid());
    }
    Py_XSETREF(st->obj[interp], obj); /* owned for the child's life */
    pw_log_logging_hook();
}

PyObject *pw_app_callable(const pw_target_t *app, int interp, int reload,
                          request_rec *r, server_rec *s)
{
    app_state_t *st = state_of(app);
    PyObject *obj = st->obj[interp];

    if (obj && !(reload && changed(st, interp))) {
        /* The hot path: loaded once per child.  A new reference, because a
         * reload in another thread may replace it while this one runs. */
        return Py_NewRef(obj);
    }

    Py_BEGIN_ALLOW_THREADS
        apr_thread_mutex_lock(load_lock);
    Py_END_ALLOW_THREADS

    if (st->obj[interp] == NULL || (reload && changed(st, interp))) {
        load(app, interp, r, s);
    }
    obj = st->obj[interp];
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
static PyObject *load_script(const pw_target_t *app)
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

static PyObject *load_module(const pw_target_t *app, int reload)
{
    PyObject *module = PyImport_ImportModule(app->path);

    if (module && reload) {
        Py_SETREF(module, PyImport_ReloadModule(module));
    }
    return module;
}

/* module.a.b, then a call for "factory()"; checks the result is callable. */
static PyObject *resolve_callable(const pw_target_t *app, PyObject *module)
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
    /* callable "": the module itself is wanted (PyWSGIAuthScript). */
    if (obj && *app->callable && !PyCallable_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "'%s' in '%s' is a %s, not a WSGI "
                     "callable",
                     app->callable, app->path, Py_TYPE(obj)->tp_name);
        Py_CLEAR(obj);
    }
    return obj;
}
