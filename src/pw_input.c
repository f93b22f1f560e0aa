/*
 * pw_input.c: wsgi.input (PEP 3333 "Input and Error Streams").
 *
 * Here: read(), readline(), readlines(), iteration over the request body
 * through Apache's input filters, which de-chunk, enforce LimitRequestBody
 * and answer "Expect: 100-continue" on the first read.  Reading stops at the
 * end of the body and never blocks past it (wsgi.input_terminated).
 * Locking: GIL held on entry; released around every ap_get_brigade().
 */
#include "pw_input.h"
#include "util_filter.h"

APLOG_USE_MODULE(pywsgi);

#define PW_INPUT_CHUNK 8192

typedef struct {
    PyObject_HEAD request_rec *r; /* NULL once the request is over */
    apr_bucket_brigade *bb;
    char *buf;                /* read-ahead for readline(); PyMem */
    Py_ssize_t pos, len, cap; /* unread bytes are buf[pos..len) */
    int eof;
    int busy;         /* a read is in progress (GIL released) */
    int error_status; /* HTTP status of a failed read */
    int error_sent;   /* ...whose error response Apache sent */
    apr_off_t bytes;  /* body bytes read so far */
} pw_input_t;

static PyTypeObject input_type;

/*
 * Up to want bytes of body into dst; GIL released.  *eos when the body is
 * complete.  A brigade may carry only metadata (a FLUSH): read on then.
 */
static apr_status_t pull(request_rec *r, apr_bucket_brigade *bb, char *dst,
                         apr_size_t want, apr_size_t *got, int *eos)
{
    apr_status_t rv;

    *got = 0;
    do {
        apr_size_t n = want;
        apr_brigade_cleanup(bb);
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, want);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (!APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb))) {
            *eos = 1;
        }
        rv = apr_brigade_flatten(bb, dst, &n);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        *got = n;
    } while (*got == 0 && !*eos);
    apr_brigade_cleanup(bb);
    return APR_SUCCESS;
}

/* Read up to want bytes into dst.  Returns the count (0 at the end of the
 * body) or -1 with a Python exception set. */
static Py_ssize_t input_read_raw(pw_input_t *self, char *dst, Py_ssize_t want)
{
    request_rec *r = self->r;
    apr_status_t rv;
    apr_size_t got = 0;
    int eos = 0;

    if (self->eof) {
        return 0;
    }
    if (r == NULL) {
        PyErr_SetString(PyExc_ValueError, "wsgi.input read after its "
                                          "request ended");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "wsgi.input read from two "
                                            "threads at once");
        return -1;
    }
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
        rv = pull(r, self->bb, dst, (apr_size_t)want, &got, &eos);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (rv != APR_SUCCESS) {
        char err[128];
        self->eof = 1;
        if (rv == AP_FILTER_ERROR) {
            /* HTTP_IN already answered (a malformed chunk: 400, a body
             * over LimitRequestBody: 413) through the output filters. */
            self->error_sent = 1;
            self->error_status =
                r->status >= 400 ? r->status : HTTP_BAD_REQUEST;
        }
        else {
            self->error_status =
                ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "PW0311: %s: reading "
                      "the request body failed (HTTP %d)",
                      r->uri, self->error_status);
        if (self->error_sent) {
            apr_cpystrn(err, "rejected by the server", sizeof(err));
        }
        else {
            apr_strerror(rv, err, sizeof(err));
        }
        PyErr_Format(PyExc_OSError,
                     "request body could not be read: %s "
                     "(HTTP %d)",
                     err, self->error_status);
        return -1;
    }
    if (eos) {
        self->eof = 1;
    }
    self->bytes += (apr_off_t)got;
    return (Py_ssize_t)got;
}

/* Make room for at least want more bytes at buf[len..]. */
static int input_reserve(pw_input_t *self, Py_ssize_t want)
{
    if (self->pos > 0) {
        memmove(self->buf, self->buf + self->pos, self->len - self->pos);
        self->len -= self->pos;
        self->pos = 0;
    }
    if (self->cap - self->len < want) {
        Py_ssize_t cap = self->len + want;
        char *buf;
        if (cap < 2 * self->cap) {
            cap = 2 * self->cap;
        }
        buf = PyMem_Realloc(self->buf, cap);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->buf = buf;
        self->cap = cap;
    }
    return 0;
}

/* Append up to one chunk of body to the read-ahead.  -1, 0 (end), or n. */
static Py_ssize_t input_fill(pw_input_t *self)
{
    Py_ssize_t n;

    if (input_reserve(self, PW_INPUT_CHUNK) < 0) {
        return -1;
    }
    n = input_read_raw(self, self->buf + self->len, PW_INPUT_CHUNK);
    if (n > 0) {
        self->len += n;
    }
    return n;
}

/* Take n bytes of the read-ahead as a bytes object. */
static PyObject *input_take(pw_input_t *self, Py_ssize_t n)
{
    PyObject *b = PyBytes_FromStringAndSize(self->buf + self->pos, n);

    if (b) {
        self->pos += n;
    }
    return b;
}

static int size_arg(PyObject *const *args, Py_ssize_t nargs, const char *name,
                    Py_ssize_t *size)
{
    *size = -1;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument", name);
        return -1;
    }
    if (nargs == 1 && args[0] != Py_None) {
        *size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
        if (*size == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    return 0;
}

/* read(size=-1): size bytes, fewer only at the end of the body; all of the
 * rest for a negative size or None. */
static PyObject *input_read(pw_input_t *self, PyObject *const *args,
                            Py_ssize_t nargs)
{
    Py_ssize_t size, have, got, n;
    PyObject *res;

    if (size_arg(args, nargs, "read", &size) < 0) {
        return NULL;
    }
    if (size < 0) {
        while (!self->eof) {
            if (input_fill(self) < 0) {
                return NULL;
            }
        }
        return input_take(self, self->len - self->pos);
    }
    have = self->len - self->pos;
    if (have >= size) {
        return input_take(self, size);
    }
    /* Straight into the result: no second copy for large reads. */
    res = PyBytes_FromStringAndSize(NULL, size);
    if (res == NULL) {
        return NULL;
    }
    memcpy(PyBytes_AS_STRING(res), self->buf + self->pos, have);
    self->pos = self->len = 0;
    got = have;
    while (got < size) {
        n = input_read_raw(self, PyBytes_AS_STRING(res) + got, size - got);
        if (n < 0) {
            Py_DECREF(res);
            return NULL;
        }
        if (n == 0) {
            break;
        }
        got += n;
    }
    if (got < size && _PyBytes_Resize(&res, got) < 0) {
        return NULL;
    }
    return res;
}

/* readline(size=-1): up to and including '\n', at most size bytes. */
static PyObject *input_readline_n(pw_input_t *self, Py_ssize_t size)
{
    Py_ssize_t scanned = 0;

    for (;;) {
        Py_ssize_t have = self->len - self->pos;
        Py_ssize_t limit = (size >= 0 && size < have) ? size : have;
        char *nl =
            memchr(self->buf + self->pos + scanned, '\n', limit - scanned);
        if (nl) {
            return input_take(self, nl - (self->buf + self->pos) + 1);
        }
        if ((size >= 0 && have >= size) || self->eof) {
            return input_take(self, limit);
        }
        scanned = limit;
        if (input_fill(self) < 0) {
            return NULL;
        }
    }
}

static PyObject *input_readline(pw_input_t *self, PyObject *const *args,
                                Py_ssize_t nargs)
{
    Py_ssize_t size;

    if (size_arg(args, nargs, "readline", &size) < 0) {
        return NULL;
    }
    return input_readline_n(self, size);
}

/* readlines(hint=-1): lines until their total size reaches hint. */
static PyObject *input_readlines(pw_input_t *self, PyObject *const *args,
                                 Py_ssize_t nargs)
{
    Py_ssize_t hint, total = 0;
    PyObject *lines, *line;

    if (size_arg(args, nargs, "readlines", &hint) < 0) {
        return NULL;
    }
    lines = PyList_New(0);
    if (lines == NULL) {
        return NULL;
    }
    for (;;) {
        line = input_readline_n(self, -1);
        if (line == NULL) {
            Py_DECREF(lines);
            return NULL;
        }
        if (PyBytes_GET_SIZE(line) == 0) {
            Py_DECREF(line);
            break;
        }
        total += PyBytes_GET_SIZE(line);
        if (PyList_Append(lines, line) < 0) {
            Py_DECREF(line);
            Py_DECREF(lines);
            return NULL;
        }
        Py_DECREF(line);
        if (hint > 0 && total >= hint) {
            break;
        }
    }
    return lines;
}

static PyObject *input_iternext(pw_input_t *self)
{
    PyObject *line = input_readline_n(self, -1);

    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL; /* StopIteration */
    }
    return line;
}

static void input_dealloc(pw_input_t *self)
{
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef input_methods[] = {
    { "read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL, NULL },
    { "readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
      NULL },
    { "readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
      NULL },
    { NULL }
};

static PyTypeObject input_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mod_pywsgi.Input",
    .tp_basicsize = sizeof(pw_input_t),
    .tp_dealloc = (destructor)input_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)input_iternext,
    .tp_methods = input_methods,
};

int pw_input_interp_init(void)
{
    return PyType_Ready(&input_type);
}

PyObject *pw_input_new(request_rec *r)
{
    pw_input_t *self = PyObject_New(pw_input_t, &input_type);

    if (self == NULL) {
        return NULL;
    }
    self->r = r;
    self->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    self->buf = NULL;
    self->pos = self->len = self->cap = 0;
    /* No body at all (no Content-Length, not chunked): nothing to read, and
     * no need to ask the filters. */
    self->eof = !r->read_chunked && r->remaining <= 0;
    self->busy = 0;
    self->error_status = 0;
    self->error_sent = 0;
    self->bytes = 0;
    return (PyObject *)self;
}

int pw_input_finish(PyObject *input, apr_off_t *bytes_read)
{
    pw_input_t *self = (pw_input_t *)input;

    *bytes_read = self->bytes;
    self->r = NULL;
    self->eof = 1;
    return self->error_sent ? AP_FILTER_ERROR : self->error_status;
}

int pw_input_error(PyObject *input)
{
    return ((pw_input_t *)input)->error_status;
}

int pw_input_error_sent(PyObject *input)
{
    return ((pw_input_t *)input)->error_sent;
}
