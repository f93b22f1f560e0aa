/*
 * pw_log.c: everything Python writes for the operator ends up here and goes
 * to Apache's error log, tied to the request the thread is serving.
 *
 * Here: the streams behind sys.stdout, sys.stderr and wsgi.errors (real
 * io.TextIOWrapper objects over a binary sink, LogSink, that turns bytes
 * into log lines), sys.stdin (empty), and exception logging.  Not here:
 * access logging.  Locking: every function needs the GIL; it is released
 * around the write to the log itself (a piped log can block).  Each
 * thread keeps its unfinished lines in a buffer of its own (pw_lines_t),
 * so lines written by several threads at once never mix.
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
#include <pthread.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

/* The three sinks: what each thread has buffered is kept apart per sink. */
enum { SINK_STDOUT, SINK_STDERR, SINK_ERRORS, SINK_KINDS };

/* A line longer than this is logged in pieces of this size: Apache's log
 * line has room for about 8 KiB with its prefix, and an unterminated line
 * (a progress bar redrawn with \r) must not grow without bound. */
#define LINE_CAP 4000

/* The binary sink under each text stream: bytes in, log lines out. */
typedef struct {
    PyObject_HEAD int level; /* APLOG_* of every line */
    int kind;                /* SINK_* */
    int interp;              /* the interpreter it was made in */
    const char *name;        /* for repr() and .name */
} pw_sink_t;

/* One thread's unfinished lines, one per sink.  Only its own thread
 * touches it, so print() from many threads never mixes their text; it is
 * flushed when the thread's request ends, and freed (what it still holds
 * logged) when the thread ends. */
typedef struct {
    char buf[SINK_KINDS][LINE_CAP];
    int len[SINK_KINDS];
    int level[SINK_KINDS];
} pw_lines_t;

static void emit(int level, const char *text, Py_ssize_t len);
static void lines_gone(void *data);

/* The request this thread serves; only for log context. */
static __thread request_rec *current_request;
static __thread pw_lines_t *my_lines;
static pthread_key_t lines_key;
static pthread_once_t lines_once = PTHREAD_ONCE_INIT;
static server_rec *main_server;
static pid_t child_pid;

/* Per interpreter: its own objects, made in it. */
static PyObject *stream_stdout[PW_MAX_INTERPS];
static PyObject *stream_stderr[PW_MAX_INTERPS];
static PyObject *stream_errors[PW_MAX_INTERPS];
static PyObject *unsupported[PW_MAX_INTERPS]; /* io.UnsupportedOperation */
static PyTypeObject *sink_type[PW_MAX_INTERPS];

static void lines_key_make(void)
{
    pthread_key_create(&lines_key, lines_gone);
}

/* No GIL: the thread ends; what it left unfinished is logged, without a
 * request (there is none any more). */
static void lines_gone(void *data)
{
    pw_lines_t *lines = data;
    int k;

    for (k = 0; k < SINK_KINDS; k++) {
        if (lines->len[k] > 0) {
            ap_log_error(APLOG_MARK, lines->level[k], 0, main_server, "%.*s",
                         lines->len[k], lines->buf[k]);
        }
    }
    if (my_lines == lines) {
        my_lines = NULL;
    }
    free(lines);
}

static pw_lines_t *lines_of_thread(void)
{
    if (my_lines == NULL) {
        my_lines = calloc(1, sizeof(*my_lines));
        if (my_lines != NULL) {
            pthread_once(&lines_once, lines_key_make);
            pthread_setspecific(lines_key, my_lines);
        }
    }
    return my_lines;
}

/* GIL held.  Log what this thread left unfinished in each sink. */
static void lines_flush(void)
{
    pw_lines_t *lines = my_lines;
    int k;

    if (lines == NULL) {
        return;
    }
    for (k = 0; k < SINK_KINDS; k++) {
        if (lines->len[k] > 0) {
            emit(lines->level[k], lines->buf[k], lines->len[k]);
            lines->len[k] = 0;
        }
    }
}

request_rec *pw_log_set_request(request_rec *r)
{
    request_rec *before = current_request;

    /* The unfinished lines belong to the request that wrote them. */
    lines_flush();
    current_request = r;
    return before;
}

/* GIL held.  One log line; long ones are cut into pieces the log can
 * take.  text stays valid while the GIL is released: it is the caller's. */
static void emit(int level, const char *text, Py_ssize_t len)
{
    request_rec *r = current_request;

    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == '\n')) {
        len--;
    }
    do {
        int n = len < LINE_CAP ? (int)len : LINE_CAP;
        Py_BEGIN_ALLOW_THREADS
            if (r) {
                ap_log_rerror(APLOG_MARK, level, 0, r, "%.*s", n, text);
            }
            else {
                ap_log_error(APLOG_MARK, level, 0, main_server, "%.*s", n,
                             text);
            }
        Py_END_ALLOW_THREADS
        text += n;
        len -= n;
    } while (len > 0);
}

/* GIL held.  Whole lines go out now, the rest waits in this thread's
 * buffer for its '\n' (or the cap, or the end of the request). */
static int sink_feed(pw_sink_t *self, const char *s, Py_ssize_t n)
{
    pw_lines_t *lines = lines_of_thread();
    char *buf;
    int *len;

    if (lines == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf = lines->buf[self->kind];
    len = &lines->len[self->kind];
    lines->level[self->kind] = self->level;
    while (n > 0) {
        const char *nl = memchr(s, '\n', n);
        Py_ssize_t seg = nl ? nl - s : n;

        if (*len == 0 && nl && seg <= LINE_CAP) {
            emit(self->level, s, seg); /* the usual case: no copy */
        }
        else {
            while (seg > 0) {
                Py_ssize_t take = LINE_CAP - *len < seg ? LINE_CAP - *len : seg;
                memcpy(buf + *len, s, take);
                *len += (int)take;
                s += take;
                n -= take;
                seg -= take;
                if (*len == LINE_CAP) {
                    emit(self->level, buf, *len);
                    *len = 0;
                }
            }
            if (!nl) {
                break;
            }
            if (*len > 0) {
                emit(self->level, buf, *len);
                *len = 0;
            }
            s = nl + 1;
            n--;
            continue;
        }
        s = nl + 1;
        n -= seg + 1;
    }
    return 0;
}

/* RawIOBase.write(b): bytes-like in, its length out. */
static PyObject *sink_write(pw_sink_t *self, PyObject *arg)
{
    Py_buffer view;
    int rc;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    rc = sink_feed(self, view.buf, view.len);
    PyBuffer_Release(&view);
    if (rc < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(view.len);
}

/* Lines wait for their end, not for flush(): a flush after every write
 * (line_buffering, logging's StreamHandler) must not cut them. */
static PyObject *sink_flush(pw_sink_t *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyObject *sink_fileno(pw_sink_t *self, PyObject *unused)
{
    /* Its own interpreter's class: an app thread may not be in the
     * registry's books. */
    PyObject *exc = unsupported[self->interp];

    PyErr_SetString(exc ? exc : PyExc_OSError,
                    "the error log stream of mod_pywsgi has no file "
                    "descriptor");
    return NULL;
}

static PyObject *sink_false(pw_sink_t *self, PyObject *unused)
{
    Py_RETURN_FALSE;
}

static PyObject *sink_true(pw_sink_t *self, PyObject *unused)
{
    Py_RETURN_TRUE;
}

static PyObject *sink_repr(pw_sink_t *self)
{
    return PyUnicode_FromFormat("<mod_pywsgi log sink %s>", self->name);
}

static PyObject *sink_get_name(pw_sink_t *self, void *closure)
{
    return PyUnicode_FromFormat("<%s>", self->name);
}

static PyObject *sink_get_mode(pw_sink_t *self, void *closure)
{
    return PyUnicode_FromString("wb");
}

static void sink_dealloc(pw_sink_t *self)
{
    PyTypeObject *type = Py_TYPE(self);

    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type's instance holds a reference to it */
}

static PyMethodDef sink_methods[] = {
    { "write", (PyCFunction)sink_write, METH_O, NULL },
    { "flush", (PyCFunction)sink_flush, METH_NOARGS, NULL },
    { "close", (PyCFunction)sink_flush, METH_NOARGS, NULL },
    { "fileno", (PyCFunction)sink_fileno, METH_NOARGS, NULL },
    { "isatty", (PyCFunction)sink_false, METH_NOARGS, NULL },
    { "readable", (PyCFunction)sink_false, METH_NOARGS, NULL },
    { "seekable", (PyCFunction)sink_false, METH_NOARGS, NULL },
    { "writable", (PyCFunction)sink_true, METH_NOARGS, NULL },
    { NULL }
};

static PyGetSetDef sink_getset[] = {
    { "closed", (getter)sink_false, NULL, NULL, NULL },
    { "name", (getter)sink_get_name, NULL, NULL, NULL },
    { "mode", (getter)sink_get_mode, NULL, NULL, NULL },
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

static PyType_Slot sink_slots[] = {
    { Py_tp_dealloc, (void *)sink_dealloc },
    { Py_tp_repr, (void *)sink_repr },
    { Py_tp_doc, (void *)"A binary stream whose lines go to Apache's error "
                         "log; sys.stdout.buffer and friends." },
    { Py_tp_methods, sink_methods },
    { Py_tp_getset, sink_getset },
    { 0, NULL },
};

static PyType_Spec sink_spec = {
    "mod_pywsgi.LogSink",
    sizeof(pw_sink_t),
    0,
    Py_TPFLAGS_DEFAULT | PW_TPFLAGS_IMMUTABLE,
    sink_slots,
};

/* GIL held.  A real io.TextIOWrapper over a LogSink: libraries get the
 * whole text stream interface (.buffer, .encoding, .reconfigure(),
 * fileno() raising io.UnsupportedOperation), and write_through hands each
 * write() to the sink at once, which splits it into lines per thread. */
static PyObject *stream_new(PyObject *io, int interp, int level, int kind,
                            const char *name)
{
    pw_sink_t *sink = PyObject_New(pw_sink_t, sink_type[interp]);
    PyObject *text;

    if (sink == NULL) {
        return NULL;
    }
    sink->level = level;
    sink->kind = kind;
    sink->interp = interp;
    sink->name = name;
    text = PyObject_CallMethod(io, "TextIOWrapper", "Osssii", sink, "utf-8",
                               "backslashreplace", "\n", 1, 1);
    Py_DECREF(sink);
    return text;
}

int pw_log_init(server_rec *s, int interp)
{
    PyObject *io, *reg, *stdin_obj = NULL;
    int rc = -1;

    main_server = s;
    child_pid = getpid();
    pthread_once(&lines_once, lines_key_make);
    sink_type[interp] = pw_type_new(&sink_spec, 0);
    if (sink_type[interp] == NULL) {
        return -1;
    }
    io = PyImport_ImportModule("io");
    if (io == NULL) {
        return -1;
    }
    /* isinstance(sys.stdout.buffer, io.BufferedIOBase), as with a real
     * stdout. */
    {
        PyObject *base = PyObject_GetAttrString(io, "BufferedIOBase");
        reg = base ? PyObject_CallMethod(base, "register", "O",
                                         (PyObject *)sink_type[interp])
                   : NULL;
        Py_XDECREF(reg);
        Py_XDECREF(base);
        if (reg == NULL) {
            goto done;
        }
    }
    unsupported[interp] = PyObject_GetAttrString(io, "UnsupportedOperation");
    stream_stdout[interp] =
        stream_new(io, interp, APLOG_WARNING, SINK_STDOUT, "stdout");
    stream_stderr[interp] =
        stream_new(io, interp, APLOG_ERR, SINK_STDERR, "stderr");
    stream_errors[interp] =
        stream_new(io, interp, APLOG_ERR, SINK_ERRORS, "wsgi.errors");
    /* Nothing to read: an empty text stream with the same interface as a
     * real sys.stdin, .buffer included (Mercurial reads sys.stdin.buffer
     * at import). */
    {
        PyObject *empty = PyObject_CallMethod(io, "BytesIO", NULL);
        stdin_obj = empty ? PyObject_CallMethod(io, "TextIOWrapper", "Os",
                                                empty, "utf-8")
                          : NULL;
        Py_XDECREF(empty);
    }
    if (!unsupported[interp] || !stream_stdout[interp] || !stream_stderr[interp]
        || !stream_errors[interp] || !stdin_obj) {
        goto done;
    }
    if (PySys_SetObject("stdout", stream_stdout[interp]) < 0
        || PySys_SetObject("stderr", stream_stderr[interp]) < 0
        || PySys_SetObject("stdin", stdin_obj) < 0) {
        goto done;
    }
    rc = module_init();

done:
    Py_XDECREF(stdin_obj);
    Py_DECREF(io);
    return rc;
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
            PyObject *res = PyObject_CallMethod(streams[i], "flush", NULL);
            Py_XDECREF(res);
            PyErr_Clear();
        }
    }
    lines_flush();
}

/* Lines formatted with the GIL held and written after it is released: a
 * piped ErrorLog that blocks must stall only the thread that writes, not
 * every thread waiting for the GIL.  Lines are NUL-separated in buf. */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} pw_lines_out_t;

static void out_add(pw_lines_out_t *out, const char *prefix, const char *text,
                    size_t n)
{
    size_t plen = strlen(prefix), need = out->len + plen + n + 1;

    if (out->failed) {
        return;
    }
    if (need > out->cap) {
        size_t cap = need * 2;
        char *buf = realloc(out->buf, cap);
        if (buf == NULL) {
            out->failed = 1;
            return;
        }
        out->buf = buf;
        out->cap = cap;
    }
    memcpy(out->buf + out->len, prefix, plen);
    memcpy(out->buf + out->len + plen, text, n);
    out->len += plen + n;
    out->buf[out->len++] = '\0';
}

/* GIL held; returns with it, having released it for the writes. */
static void out_write(pw_lines_out_t *out, request_rec *r, server_rec *s)
{
    Py_BEGIN_ALLOW_THREADS
        {
            size_t at = 0;
            while (at < out->len) {
                const char *line = out->buf + at;
                if (r) {
                    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s", line);
                }
                else {
                    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "%s", line);
                }
                at += strlen(line) + 1;
            }
        }
    Py_END_ALLOW_THREADS
    free(out->buf);
    out->buf = NULL;
    out->len = out->cap = 0;
}

/* The traceback's lines, each its own log line: the error log is read line
 * by line (grep, journald), and one entry with embedded newlines breaks
 * that. */
static void log_traceback(pw_lines_out_t *out, PyObject *exc)
{
    PyObject *lines, *item, *tb, *mod, *format;
    Py_ssize_t i, n;

    /* traceback (and linecache, tokenize...) only once something fails;
     * from then on the import is a look-up in this interpreter's
     * sys.modules, on an error path only: no cache per interpreter. */
    mod = PyImport_ImportModule("traceback");
    format = mod ? PyObject_GetAttrString(mod, "format_exception") : NULL;
    Py_XDECREF(mod);
    if (format == NULL) {
        PyErr_Clear();
        return;
    }
    tb = PyException_GetTraceback(exc); /* new reference or NULL */
    lines = PyObject_CallFunctionObjArgs(format, (PyObject *)Py_TYPE(exc), exc,
                                         tb ? tb : Py_None, NULL);
    Py_XDECREF(tb);
    Py_DECREF(format);
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
                out_add(out, "PW0303: ", text, nl - text);
            }
        }
    }
    Py_DECREF(lines);
}

void pw_log_rline(request_rec *r, int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    apr_vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    Py_BEGIN_ALLOW_THREADS
        ap_log_rerror(APLOG_MARK, level, 0, r, "%s", line);
    Py_END_ALLOW_THREADS
}

int pw_log_refused_extension(PyObject *exc, char *name, apr_size_t size)
{
    static const char head[] = "module ";
    static const char tail[] = " does not support loading in subinterpreters";
    const apr_size_t hl = sizeof(head) - 1, tl = sizeof(tail) - 1;
    PyObject *text;
    const char *msg;
    apr_size_t len, n;
    int found = 0;

    if (exc == NULL || !PyErr_GivenExceptionMatches(exc, PyExc_ImportError)) {
        return 0;
    }
    text = PyObject_Str(exc);
    msg = text ? PyUnicode_AsUTF8(text) : NULL;
    if (msg && (len = strlen(msg)) > hl + tl && strncmp(msg, head, hl) == 0
        && strcmp(msg + len - tl, tail) == 0) {
        found = 1;
        if (name != NULL && size > 0) {
            n = len - hl - tl + 1;
            apr_cpystrn(name, msg + hl, n < size ? n : size);
        }
    }
    PyErr_Clear(); /* str() of a strange exception may fail */
    Py_XDECREF(text);
    return found;
}

/* The fix for such a refusal at import time inside a request, on the same
 * line (an import at load time gets PW0110 from pw_app.c). */
static const char *own_gil_hint(PyObject *exc)
{
    return pw_log_refused_extension(exc, NULL, 0)
               ? " (PW0110: a C extension with single-phase init: put this "
                 "app in a shared-GIL interpreter, remove its interpreter "
                 "from PyWSGIOwnGIL)"
               : "";
}

void pw_log_exception(request_rec *r, server_rec *s, const char *fmt, ...)
{
    PyObject *exc = PW_ERR_TAKE();
    PyObject *text = NULL;
    const char *type = "unknown error", *msg = "";
    pw_lines_out_t out = { NULL, 0, 0, 0 };
    char what[1024], first[2048];
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
    apr_snprintf(first, sizeof(first), "%s %s%s%s%s", what, type,
                 *msg ? ": " : "", msg, own_gil_hint(exc));
    out_add(&out, "", first, strlen(first));
    if (exc) {
        log_traceback(&out, exc);
    }
    out_write(&out, r, s);
    Py_XDECREF(text);
    Py_XDECREF(exc);
}
