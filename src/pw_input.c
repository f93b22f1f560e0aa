/*
 * pw_input.c: wsgi.input (PEP 3333 "Input and Error Streams").
 *
 * Here: read(), readline(), readlines(), iteration over the request body
 * through Apache's input filters, which de-chunk, enforce LimitRequestBody
 * and answer "Expect: 100-continue" on the first read.  Reading stops at the
 * end of the body and never blocks past it (wsgi.input_terminated).
 * Also the spool: a chunked body read to its end before the app runs (issue
 * 11; PyWSGIChunkedRequest Buffer), the first PyWSGIRequestBodyBuffer bytes
 * in memory, the rest in an unlinked temporary file, so the app gets a
 * CONTENT_LENGTH; wsgi.input then reads from the spool.
 * Memory: a line or a read() is built in one bytes object, handed out as it
 * is (no second copy); read(n) allocates at most what is left of the body.
 * Locking: GIL held on entry; released around every ap_get_brigade() and
 * spool file read.  pw_input_spool() runs without the GIL, before the app.
 */
#include "pw_input.h"
#include "util_filter.h"

APLOG_USE_MODULE(pywsgi);

#define PW_INPUT_CHUNK 8192
/* A read-ahead holding a line this long or longer is handed out whole. */
#define PW_INPUT_GIVE (64 * 1024)
/* read(n) of a body of unknown length starts with this much. */
#define PW_INPUT_FIRST (64 * 1024)
/* Bytes asked of the input filters per read while spooling. */
#define PW_SPOOL_READ (64 * 1024)

struct pw_spool {
    char *mem; /* the first mem_len bytes; malloc'ed */
    apr_size_t mem_len, mem_cap, mem_max;
    apr_file_t *file; /* the rest, unlinked; or NULL */
    apr_off_t length; /* of the whole body */
    apr_off_t pos;    /* read position */
};

typedef struct {
    PyObject_HEAD request_rec *r; /* NULL once the request is over */
    apr_bucket_brigade *bb;
    pw_spool_t *spool;        /* the body, read already; or NULL */
    PyObject *buf;            /* read-ahead for readline(): bytes we own */
    Py_ssize_t pos, len, cap; /* unread bytes are buf[pos..len) */
    apr_off_t left;           /* body bytes not pulled yet, -1: unknown */
    int eof;
    int busy;         /* a read is in progress (GIL released) */
    int error_status; /* HTTP status of a failed read */
    int error_sent;   /* ...whose error response Apache sent */
    apr_off_t bytes;  /* body bytes read so far */
} pw_input_t;

/* Per interpreter: the Input type made in it (pw_input_interp_init). */
static PyTypeObject *input_type[PW_MAX_INTERPS];

#define BUF(self) PyBytes_AS_STRING((self)->buf)

/* Up to want bytes of the spooled body into dst; GIL released. */
static apr_status_t spool_pull(pw_spool_t *sp, char *dst, apr_size_t want,
                               apr_size_t *got, int *eos)
{
    apr_status_t rv = APR_SUCCESS;
    apr_size_t n = 0;

    if (sp->pos < (apr_off_t)sp->mem_len) {
        n = sp->mem_len - (apr_size_t)sp->pos;
        n = n < want ? n : want;
        memcpy(dst, sp->mem + sp->pos, n);
    }
    else if (sp->pos < sp->length) {
        apr_off_t rest = sp->length - sp->pos;
        n = rest < (apr_off_t)want ? (apr_size_t)rest : want;
        rv = apr_file_read_full(sp->file, dst, n, &n);
    }
    sp->pos += n;
    *got = n;
    *eos = sp->pos >= sp->length;
    return rv;
}

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
        if (self->spool) {
            rv = spool_pull(self->spool, dst, (apr_size_t)want, &got, &eos);
        }
        else {
            rv = pull(r, self->bb, dst, (apr_size_t)want, &got, &eos);
        }
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
    if (self->left > 0) {
        self->left -= (apr_off_t)got;
    }
    return (Py_ssize_t)got;
}

/* Make room for at least want more bytes at buf[len..]. */
static int input_reserve(pw_input_t *self, Py_ssize_t want)
{
    if (self->pos > 0) {
        memmove(BUF(self), BUF(self) + self->pos, self->len - self->pos);
        self->len -= self->pos;
        self->pos = 0;
    }
    if (self->cap - self->len < want) {
        Py_ssize_t cap = self->len + want;
        if (cap < 2 * self->cap) {
            cap = 2 * self->cap;
        }
        if (self->buf == NULL) {
            self->buf = PyBytes_FromStringAndSize(NULL, cap);
        }
        else {
            /* Ours alone (refcount 1): resized in place, or freed and
             * NULL on failure. */
            _PyBytes_Resize(&self->buf, cap);
        }
        if (self->buf == NULL) {
            self->pos = self->len = self->cap = 0;
            return -1;
        }
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
    n = input_read_raw(self, BUF(self) + self->len, PW_INPUT_CHUNK);
    if (n > 0) {
        self->len += n;
    }
    return n;
}

/* Take n bytes of the read-ahead as a bytes object.  A long one (a long
 * line, read() to the end) is the read-ahead itself, cut to size: one copy
 * of it in memory, not two; what follows it moves to a new read-ahead. */
static PyObject *input_take(pw_input_t *self, Py_ssize_t n)
{
    PyObject *b, *rest;
    Py_ssize_t after;

    if (n == 0) {
        return PyBytes_FromStringAndSize("", 0);
    }
    if (self->pos != 0 || n < PW_INPUT_GIVE) {
        b = PyBytes_FromStringAndSize(BUF(self) + self->pos, n);
        if (b) {
            self->pos += n;
        }
        return b;
    }
    after = self->len - n;
    rest = NULL;
    if (after > 0) {
        rest = PyBytes_FromStringAndSize(
            NULL, after < PW_INPUT_CHUNK ? PW_INPUT_CHUNK : after);
        if (rest == NULL) {
            return NULL;
        }
        memcpy(PyBytes_AS_STRING(rest), BUF(self) + n, after);
    }
    b = self->buf;
    self->buf = rest;
    self->pos = 0;
    self->len = after;
    self->cap = rest ? PyBytes_GET_SIZE(rest) : 0;
    if (_PyBytes_Resize(&b, n) < 0) {
        return NULL;
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
    Py_ssize_t size, have, got, n, alloc;
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
    /* Straight into the result: no second copy for large reads.  Never
     * more than the body can still give: read(10**9) of a short body must
     * not allocate a gigabyte; of a body of unknown length, grow. */
    alloc = size;
    if (self->eof || (self->left >= 0 && have + self->left < alloc)) {
        alloc = self->eof ? have : have + (Py_ssize_t)self->left;
    }
    else if (self->left < 0 && alloc > have + PW_INPUT_FIRST) {
        alloc = have + PW_INPUT_FIRST;
    }
    res = PyBytes_FromStringAndSize(NULL, alloc);
    if (res == NULL) {
        return NULL;
    }
    if (have > 0) {
        memcpy(PyBytes_AS_STRING(res), BUF(self) + self->pos, have);
    }
    self->pos = self->len = 0;
    got = have;
    while (got < size && !self->eof && self->left != 0) {
        if (got == alloc) {
            alloc = alloc > size / 2 ? size : 2 * alloc;
            if (_PyBytes_Resize(&res, alloc) < 0) {
                return NULL;
            }
        }
        n = input_read_raw(self, PyBytes_AS_STRING(res) + got, alloc - got);
        if (n < 0) {
            Py_DECREF(res);
            return NULL;
        }
        if (n == 0) {
            break;
        }
        got += n;
    }
    if (got < alloc && _PyBytes_Resize(&res, got) < 0) {
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
        char *nl = have ? memchr(BUF(self) + self->pos + scanned, '\n',
                                 limit - scanned)
                        : NULL;
        if (nl) {
            return input_take(self, nl - (BUF(self) + self->pos) + 1);
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
    PyTypeObject *type = Py_TYPE(self);

    Py_XDECREF(self->buf);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type's instance holds a reference to it */
}

static PyMethodDef input_methods[] = {
    { "read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL, NULL },
    { "readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
      NULL },
    { "readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
      NULL },
    { NULL }
};

static PyType_Slot input_slots[] = {
    { Py_tp_dealloc, (void *)input_dealloc },
    { Py_tp_doc, (void *)"wsgi.input: the request body." },
    { Py_tp_iter, (void *)PyObject_SelfIter },
    { Py_tp_iternext, (void *)input_iternext },
    { Py_tp_methods, input_methods },
    { 0, NULL },
};

static PyType_Spec input_spec = {
    "mod_pywsgi.Input",
    sizeof(pw_input_t),
    0,
    Py_TPFLAGS_DEFAULT | PW_TPFLAGS_IMMUTABLE,
    input_slots,
};

int pw_input_interp_init(int interp)
{
    input_type[interp] = pw_type_new(&input_spec, 0);
    return input_type[interp] ? 0 : -1;
}

PyObject *pw_input_new(request_rec *r, pw_spool_t *spool, int interp)
{
    pw_input_t *self = PyObject_New(pw_input_t, input_type[interp]);

    if (self == NULL) {
        return NULL;
    }
    self->r = r;
    self->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    self->spool = spool;
    self->buf = NULL;
    self->pos = self->len = self->cap = 0;
    if (spool) {
        self->left = spool->length;
        self->eof = spool->length == 0;
    }
    else {
        self->left = r->read_chunked ? -1 : r->remaining;
        /* No body at all (no Content-Length, not chunked): nothing to
         * read, and no need to ask the filters. */
        self->eof = !r->read_chunked && r->remaining <= 0;
    }
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

apr_off_t pw_input_spooled_length(PyObject *input)
{
    pw_spool_t *sp = ((pw_input_t *)input)->spool;

    return sp ? sp->length : -1;
}

/* ---- the spool: a chunked body read before the app runs ---------------- */

static apr_status_t spool_free(void *data)
{
    free(((pw_spool_t *)data)->mem);
    return APR_SUCCESS;
}

/* A failed read of the body, as the handler returns it. */
static int spool_read_failed(request_rec *r, apr_status_t rv)
{
    int status;

    if (rv == AP_FILTER_ERROR) {
        /* HTTP_IN answered already (413 past LimitRequestBody, 400 for a
         * malformed chunk). */
        status = r->status >= 400 ? r->status : HTTP_BAD_REQUEST;
    }
    else {
        status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "PW0311: %s: reading the request body failed (HTTP %d)",
                  r->uri, status);
    return rv == AP_FILTER_ERROR ? AP_FILTER_ERROR : status;
}

static int spool_append(request_rec *r, pw_spool_t *sp, const char *tmpdir,
                        const char *data, apr_size_t len)
{
    apr_size_t n = sp->mem_max - sp->mem_len;
    apr_status_t rv;

    n = len < n ? len : n;
    if (n > 0) {
        if (sp->mem_len + n > sp->mem_cap) {
            apr_size_t cap = sp->mem_cap ? 2 * sp->mem_cap : PW_SPOOL_READ;
            char *mem;
            if (cap < sp->mem_len + n) {
                cap = sp->mem_len + n;
            }
            if (cap > sp->mem_max) {
                cap = sp->mem_max;
            }
            mem = realloc(sp->mem, cap);
            if (mem == NULL) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, APR_ENOMEM, r,
                              "PW0314: %s: no memory to buffer the chunked "
                              "request body",
                              r->uri);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            sp->mem = mem;
            sp->mem_cap = cap;
        }
        memcpy(sp->mem + sp->mem_len, data, n);
        sp->mem_len += n;
        sp->length += n;
        data += n;
        len -= n;
    }
    if (len == 0) {
        return OK;
    }
    if (sp->file == NULL) {
        char *path;
        if (tmpdir == NULL
            && apr_temp_dir_get(&tmpdir, r->pool) != APR_SUCCESS) {
            tmpdir = "/tmp";
        }
        path = apr_pstrcat(r->pool, tmpdir, "/pywsgi-body.XXXXXX", NULL);
        /* Unlinked at once: nothing is left behind whatever happens to
         * the child; the pool's cleanup closes the descriptor. */
        rv = apr_file_mktemp(&sp->file, path,
                             APR_FOPEN_CREATE | APR_FOPEN_READ | APR_FOPEN_WRITE
                                 | APR_FOPEN_EXCL,
                             r->pool);
        if (rv != APR_SUCCESS) {
            sp->file = NULL;
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                          "PW0315: %s: cannot create a temporary file for "
                          "the chunked request body in %s: give "
                          "PyWSGIRequestBodyTempDir a directory User can "
                          "write to",
                          r->uri, tmpdir);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_file_remove(path, r->pool);
    }
    rv = apr_file_write_full(sp->file, data, len, NULL);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "PW0315: %s: cannot write the chunked request body "
                      "to its temporary file (PyWSGIRequestBodyTempDir)",
                      r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sp->length += len;
    return OK;
}

int pw_input_spool(request_rec *r, apr_size_t mem_max, const char *tmpdir,
                   pw_spool_t **spool)
{
    apr_bucket_brigade *bb =
        apr_brigade_create(r->pool, r->connection->bucket_alloc);
    pw_spool_t *sp = apr_pcalloc(r->pool, sizeof(*sp));
    apr_bucket *e;
    apr_status_t rv;
    int status = OK, eos = 0;

    sp->mem_max = mem_max;
    apr_pool_cleanup_register(r->pool, sp, spool_free, apr_pool_cleanup_null);
    while (status == OK && !eos) {
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, PW_SPOOL_READ);
        if (rv != APR_SUCCESS) {
            status = spool_read_failed(r, rv);
            break;
        }
        for (e = APR_BRIGADE_FIRST(bb);
             status == OK && e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t len;
            if (APR_BUCKET_IS_EOS(e)) {
                eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                continue;
            }
            rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
            status = rv != APR_SUCCESS ? spool_read_failed(r, rv)
                                       : spool_append(r, sp, tmpdir, data, len);
        }
        apr_brigade_cleanup(bb);
    }
    if (status == OK && sp->file) {
        apr_off_t start = 0;
        rv = apr_file_seek(sp->file, APR_SET, &start);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                          "PW0315: %s: cannot read back the temporary file "
                          "of the chunked request body",
                          r->uri);
            status = HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    *spool = status == OK ? sp : NULL;
    return status;
}
