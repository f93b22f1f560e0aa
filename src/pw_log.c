/*
 * pw_log.c: everything Python writes for the operator ends up here and goes
 * to Apache's error log, tied to the request the thread is serving.
 *
 * Here: the stream type behind sys.stdout, sys.stderr and wsgi.errors, and
 * exception logging.  Not here: access logging.  Locking: every function
 * needs the GIL, except pw_log_set_request(); the GIL is released around
 * the write to the log itself (a piped log can block).
 *
 * Levels: print()/sys.stdout at warn (visible at Apache's default LogLevel,
 * but not an error), sys.stderr and wsgi.errors at error (what PEP 3333 says
 * the stream is for).  Python's logging keeps its levels: the module
 * "mod_pywsgi" offers LogHandler, which maps DEBUG..CRITICAL to Apache's
 * debug..crit, and it is logging.lastResort — what logging uses when the
 * app configured no handler — so an app that sets nothing up logs with its
 * levels, and one that calls basicConfig() keeps its own choice.
 * (pw_log_logging_hook() installs it once the app has imported logging.)
 */
#include "pw_log.h"
#include "mpm_common.h"
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

typedef struct {
    PyObject_HEAD int level; /* APLOG_* of every line */
    const char *name;        /* for repr() */
    char *buf;               /* an unfinished line; PyMem */
    Py_ssize_t len, cap;
} pw_stream_t;

static void emit(int level, const char *text, Py_ssize_t len);
static PyObject *stream_write(pw_stream_t *self, PyObject *arg);
static PyObject *stream_writelines(pw_stream_t *self, PyObject *seq);
static PyObject *stream_flush(pw_stream_t *self, PyObject *unused);
static void stream_dealloc(pw_stream_t *self);

/* The request this thread serves; only for log context. */
static __thread request_rec *current_request;
static server_rec *main_server;
static pid_t child_pid;

/* Per interpreter: its own objects, made in it. */
static PyObject *stream_stdout[PW_MAX_INTERPS];
static PyObject *stream_stderr[PW_MAX_INTERPS];
static PyObject *stream_errors[PW_MAX_INTERPS];
static PyObject *format_exception[PW_MAX_INTERPS];

void pw_log_set_request(request_rec *r)
{
    current_request = r;
}

/* One log line; long ones are cut into pieces the log can take. */
static void emit(int level, const char *text, Py_ssize_t len)
{
    request_rec *r = current_request;
    char line[4096];

    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == '\n')) {
        len--;
    }
    do {
        Py_ssize_t n = len < (Py_ssize_t)sizeof(line) - 1
                           ? len
                           : (Py_ssize_t)sizeof(line) - 1;
        memcpy(line, text, n);
        line[n] = '\0';
        Py_BEGIN_ALLOW_THREADS
            if (r) {
                ap_log_rerror(APLOG_MARK, level, 0, r, "%s", line);
            }
            else {
                ap_log_error(APLOG_MARK, level, 0, main_server, "%s", line);
            }
        Py_END_ALLOW_THREADS
        text += n;
        len -= n;
    } while (len > 0);
}

static int stream_append(pw_stream_t *self, const char *s, Py_ssize_t n)
{
    if (self->len + n > self->cap) {
        Py_ssize_t cap = (self->len + n) * 2;
        char *buf = PyMem_Realloc(self->buf, cap);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->buf = buf;
        self->cap = cap;
    }
    memcpy(self->buf + self->len, s, n);
    self->len += n;
    return 0;
}

/* TextIOBase.write(): whole lines go out now, the rest waits for '\n'. */
static PyObject *stream_write(pw_stream_t *self, PyObject *arg)
{
    const char *s, *nl;
    Py_ssize_t n;

    if (!PyUnicode_Check(arg)) {
        return PyErr_Format(PyExc_TypeError,
                            "write() argument must be str,"
                            " not %s",
                            Py_TYPE(arg)->tp_name);
    }
    s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s == NULL) {
        return NULL;
    }
    while ((nl = memchr(s, '\n', n)) != NULL) {
        Py_ssize_t part = nl - s + 1;
        if (self->len) {
            if (stream_append(self, s, part) < 0) {
                return NULL;
            }
            emit(self->level, self->buf, self->len);
            self->len = 0;
        }
        else {
            emit(self->level, s, part);
        }
        s += part;
        n -= part;
    }
    if (n && stream_append(self, s, n) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *stream_writelines(pw_stream_t *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq), *item, *res;

    if (it == NULL) {
        return NULL;
    }
    while ((item = PyIter_Next(it)) != NULL) {
        res = stream_write(self, item);
        Py_DECREF(item);
        if (res == NULL) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(res);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *stream_flush(pw_stream_t *self, PyObject *unused)
{
    if (self->len) {
        emit(self->level, self->buf, self->len);
        self->len = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *stream_false(pw_stream_t *self, PyObject *unused)
{
    Py_RETURN_FALSE;
}

static PyObject *stream_true(pw_stream_t *self, PyObject *unused)
{
    Py_RETURN_TRUE;
}

static PyObject *stream_repr(pw_stream_t *self)
{
    return PyUnicode_FromFormat("<mod_pywsgi log stream %s>", self->name);
}

static PyObject *stream_get_encoding(pw_stream_t *self, void *closure)
{
    return PyUnicode_FromString("utf-8");
}

static void stream_dealloc(pw_stream_t *self)
{
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef stream_methods[] = {
    { "write", (PyCFunction)stream_write, METH_O, NULL },
    { "writelines", (PyCFunction)stream_writelines, METH_O, NULL },
    { "flush", (PyCFunction)stream_flush, METH_NOARGS, NULL },
    { "isatty", (PyCFunction)stream_false, METH_NOARGS, NULL },
    { "readable", (PyCFunction)stream_false, METH_NOARGS, NULL },
    { "seekable", (PyCFunction)stream_false, METH_NOARGS, NULL },
    { "writable", (PyCFunction)stream_true, METH_NOARGS, NULL },
    { NULL }
};

static PyGetSetDef stream_getset[] = {
    { "encoding", (getter)stream_get_encoding, NULL, NULL, NULL },
    { "closed", (getter)stream_false, NULL, NULL, NULL },
    { NULL }
};

/* mod_pywsgi._log(levelno, message): one record, its lines logged at the
 * Apache level matching Python's. */
static PyObject *py_log(PyObject *module, PyObject *args)
{
    const char *msg, *nl;
    Py_ssize_t len, n;
    int levelno, level;

    if (!PyArg_ParseTuple(args, "is#:_log", &levelno, &msg, &len)) {
        return NULL;
    }
    level = levelno >= 50   ? APLOG_CRIT
            : levelno >= 40 ? APLOG_ERR
            : levelno >= 30 ? APLOG_WARNING
            : levelno >= 20 ? APLOG_INFO
                            : APLOG_DEBUG;
    while (len > 0) {
        nl = memchr(msg, '\n', len);
        n = nl ? nl - msg : len;
        emit(level, msg, n);
        if (!nl) {
            break;
        }
        len -= n + 1;
        msg = nl + 1;
    }
    Py_RETURN_NONE;
}

/*
 * os._exit(), as the app sees it: an app that ends its process mid-request
 * should at least leave a line naming the request.  And exit statuses 7
 * and 15 mean "child sick" / "child fatal" to Apache's parent, which then
 * stops spawning or shuts the whole server down: one app must not be able
 * to do that by accident, so they become 1.  In a process the app forked
 * (multiprocessing), it is the plain os._exit().
 */
static PyObject *py_os_exit(PyObject *module, PyObject *arg)
{
    request_rec *r = current_request;
    long status = PyLong_AsLong(arg);
    int code;

    if (status == -1 && PyErr_Occurred()) {
        return NULL;
    }
    code = (int)status;
    if (getpid() == child_pid) {
        if (code == APEXIT_CHILDSICK || code == APEXIT_CHILDFATAL) {
            code = 1;
        }
        if (r) {
            ap_log_rerror(
                APLOG_MARK, APLOG_CRIT, 0, r,
                "PW0004: %s %s: the "
                "application called os._exit(%ld); pid %" APR_PID_T_FMT
                " exits with status %d",
                r->method, r->uri, status, getpid(), code);
        }
        else {
            ap_log_error(
                APLOG_MARK, APLOG_CRIT, 0, main_server,
                "PW0004: "
                "os._exit(%ld) called outside any request; pid %" APR_PID_T_FMT
                " exits with status %d",
                status, getpid(), code);
        }
    }
    _exit(code);
    return NULL;
}

static PyMethodDef module_methods[] = {
    { "_log", py_log, METH_VARARGS,
      "_log(levelno, message): write a logging record to Apache's log." },
    { "_os_exit", py_os_exit, METH_O,
      "os._exit() inside Apache: logs the request, spares the parent." },
    { NULL }
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "mod_pywsgi",
    "The Apache module this Python runs in.",
    -1,
    module_methods,
};

/* Python's side of it, in Python: a logging.Handler is easiest written as
 * one.  logging costs a child about 2 MB: it is not imported for this.
 * _install() runs after each app load and sets lastResort if the app
 * imported logging; LogHandler is made on first use (PEP 562). */
static const char module_code[] =
    "import sys, os\n"
    "os._exit = _os_exit\n"
    "def _make():\n"
    "    import logging\n"
    "    class LogHandler(logging.Handler):\n"
    "        \"Send logging records to Apache's error log, levels kept.\"\n"
    "        def emit(self, record):\n"
    "            try:\n"
    "                _log(record.levelno, self.format(record))\n"
    "            except Exception:\n"
    "                self.handleError(record)\n"
    "    globals()['LogHandler'] = LogHandler\n"
    "    return LogHandler\n"
    "def __getattr__(name):\n"
    "    if name == 'LogHandler':\n"
    "        return _make()\n"
    "    raise AttributeError(name)\n"
    "def _install():\n"
    "    logging = sys.modules.get('logging')\n"
    "    if logging is None:\n"
    "        return\n"
    "    handler = globals().get('LogHandler') or _make()\n"
    "    if not isinstance(logging.lastResort, handler):\n"
    "        logging.lastResort = handler()\n";

static int module_init(void)
{
    PyObject *m = PyModule_Create(&module_def), *res = NULL;
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */

    if (m == NULL) {
        return -1;
    }
    if (PyModule_AddStringConstant(m, "version", PW_VERSION) < 0
        || PyDict_SetItemString(modules, "mod_pywsgi", m) < 0) {
        Py_DECREF(m);
        return -1;
    }
    res = PyRun_String(module_code, Py_file_input, PyModule_GetDict(m),
                       PyModule_GetDict(m));
    Py_DECREF(m);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static PyTypeObject stream_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mod_pywsgi.LogStream",
    .tp_basicsize = sizeof(pw_stream_t),
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_repr = (reprfunc)stream_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A text stream whose lines go to Apache's error log.",
    .tp_methods = stream_methods,
    .tp_getset = stream_getset,
};

static PyObject *stream_new(int level, const char *name)
{
    pw_stream_t *self = PyObject_New(pw_stream_t, &stream_type);

    if (self) {
        self->level = level;
        self->name = name;
        self->buf = NULL;
        self->len = self->cap = 0;
    }
    return (PyObject *)self;
}

int pw_log_init(server_rec *s, int interp)
{
    main_server = s;
    child_pid = getpid();
    if (PyType_Ready(&stream_type) < 0) {
        return -1;
    }
    stream_stdout[interp] = stream_new(APLOG_WARNING, "stdout");
    stream_stderr[interp] = stream_new(APLOG_ERR, "stderr");
    stream_errors[interp] = stream_new(APLOG_ERR, "wsgi.errors");
    if (!stream_stdout[interp] || !stream_stderr[interp]
        || !stream_errors[interp]) {
        return -1;
    }
    if (PySys_SetObject("stdout", stream_stdout[interp]) < 0
        || PySys_SetObject("stderr", stream_stderr[interp]) < 0) {
        return -1;
    }
    return module_init();
}

void pw_log_logging_hook(void)
{
    PyObject *m = PyImport_ImportModule("mod_pywsgi");
    PyObject *res = m ? PyObject_CallMethod(m, "_install", NULL) : NULL;

    Py_XDECREF(res);
    Py_XDECREF(m);
    if (res == NULL) {
        PyErr_Clear();
    }
}

PyObject *pw_log_errors(int interp)
{
    return stream_errors[interp];
}

void pw_log_fini(void)
{
    PyObject *streams[] = { stream_stdout[0], stream_stderr[0],
                            stream_errors[0] };
    size_t i;

    for (i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        if (streams[i]) {
            Py_XDECREF(stream_flush((pw_stream_t *)streams[i], NULL));
        }
    }
}

/* The traceback's lines, each its own log line: the error log is read line
 * by line (grep, journald), and one entry with embedded newlines breaks
 * that. */
static void log_traceback(request_rec *r, server_rec *s, PyObject *exc)
{
    PyObject *lines, *item, *tb;
    PyObject **format = &format_exception[pw_interp_current()];
    Py_ssize_t i, n;

    /* traceback (and linecache, tokenize...) only once something fails. */
    if (*format == NULL) {
        PyObject *mod = PyImport_ImportModule("traceback");
        *format = mod ? PyObject_GetAttrString(mod, "format_exception") : NULL;
        Py_XDECREF(mod);
        if (*format == NULL) {
            PyErr_Clear();
            return;
        }
    }
    tb = PyException_GetTraceback(exc); /* new reference or NULL */
    lines = PyObject_CallFunctionObjArgs(*format, (PyObject *)Py_TYPE(exc), exc,
                                         tb ? tb : Py_None, NULL);
    Py_XDECREF(tb);
    if (lines == NULL) {
        PyErr_Clear();
        return;
    }
    n = PyList_GET_SIZE(lines);
    for (i = 0; i < n; i++) {
        const char *text, *end, *nl;
        Py_ssize_t len;
        item = PyList_GET_ITEM(lines, i); /* borrowed */
        text = PyUnicode_AsUTF8AndSize(item, &len);
        if (text == NULL) {
            PyErr_Clear();
            continue;
        }
        for (end = text + len; text < end; text = nl + 1) {
            nl = memchr(text, '\n', end - text);
            if (nl == NULL) {
                nl = end;
            }
            if (nl > text) {
                if (r) {
                    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PW0303: %.*s",
                                  (int)(nl - text), text);
                }
                else {
                    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "PW0303: %.*s",
                                 (int)(nl - text), text);
                }
            }
        }
    }
    Py_DECREF(lines);
}

void pw_log_exception(request_rec *r, server_rec *s, const char *fmt, ...)
{
    PyObject *exc = PW_ERR_TAKE();
    PyObject *text = NULL;
    const char *type = "unknown error", *msg = "";
    char what[1024];
    va_list ap;

    va_start(ap, fmt);
    apr_vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);

    if (exc) {
        type = Py_TYPE(exc)->tp_name;
        text = PyObject_Str(exc);
        msg = text ? PyUnicode_AsUTF8(text) : NULL;
        if (msg == NULL) {
            PyErr_Clear();
            msg = "(its message cannot be shown)";
        }
    }
    if (r) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s %s%s%s", what, type,
                      *msg ? ": " : "", msg);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "%s %s%s%s", what, type,
                     *msg ? ": " : "", msg);
    }
    if (exc) {
        log_traceback(r, s, exc);
    }
    Py_XDECREF(text);
    Py_XDECREF(exc);
}
