/*
 * pw_response.c: start_response, write(), the returned iterable and
 * wsgi.file_wrapper (PEP 3333 "The start_response() Callable", "Buffering
 * and Streaming", "Optional Platform-Specific File Handling").
 *
 * Here: validating the status and headers an app gives, putting them into
 * request_rec, and turning body data into buckets.  Framing (Content-Length
 * or chunked, HEAD, keep-alive) stays Apache's: its HTTP filters do it.
 * Locking: GIL held on entry; released around every ap_pass_brigade(),
 * with busy set meanwhile: another thread of the app calling write() then
 * gets RuntimeError, and the request's own path waits (wait_idle) before it
 * touches the brigade or ends the request.  The app's status stays here
 * until the headers go out with the first pass (see apply_start).
 *
 * Buffering: the items of a list or tuple are all there already, so they go
 * out together (one write, and Apache can compute Content-Length).  Any
 * other iterable may be a generator that pauses between items; each item is
 * flushed so the client sees it at once — unless it completes a declared
 * Content-Length, in which case it travels with the end of the response.
 */
#include "pw_response.h"
#include "pw_http.h"
#include "pw_log.h"
#include "pw_input.h"
#include "util_filter.h"
#include "http_core.h"
#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

/* Copy small items into the brigade's own buffers (they coalesce); refer to
 * large ones in place and pass them before letting go of them. */
#define PW_COPY_MAX (32 * 1024)
/* Pass buffered data on once this much is waiting. */
#define PW_PASS_AT (64 * 1024)

typedef enum { SEND_BUFFER, SEND_FLUSH, SEND_EOS } send_mode_t;

typedef struct {
    PyObject_HEAD request_rec *r; /* NULL once the request is over */
    const char *target;
    apr_bucket_brigade *bb;
    apr_off_t declared; /* Content-Length from the app, or -1 */
    apr_off_t sent;     /* body bytes accepted from the app */
    apr_size_t pending; /* bytes in bb not yet passed */
    int started;        /* start_response was called */
    int committed;      /* body bytes accepted: headers are final */
    int passed;         /* something reached the output filters */
    int eos;            /* the response is complete */
    int gone;           /* the client went away */
    int failed;         /* an app error was logged */
    int busy;           /* a pass is in progress, GIL released */
    int status;         /* the app's status, put on r when the headers go */
    const char *status_line;
    PyObject *write; /* write(), handed out by start_response */
    PyObject *input; /* wsgi.input, to know if Apache answered */
    int interp;      /* the interpreter it was made in */
} pw_resp_t;

typedef struct {
    PyObject_HEAD PyObject *filelike;
    Py_ssize_t blksize;
} pw_filewrapper_t;

static PyMethodDef write_def;

/* Per interpreter, made in it: the two types, and "close", looked up on
 * every response. */
static PyTypeObject *resp_type[PW_MAX_INTERPS];
static PyTypeObject *filewrapper_type[PW_MAX_INTERPS];
static PyObject *str_close[PW_MAX_INTERPS];

/* ---- headers ---------------------------------------------------------- */

/* A str made of latin-1 characters, as bytes: PEP 3333 "native strings". */
static const char *latin1(PyObject *s, Py_ssize_t *len)
{
    if (PyUnicode_READY(s) < 0) {
        return NULL;
    }
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
        return NULL;
    }
    *len = PyUnicode_GET_LENGTH(s);
    return (const char *)PyUnicode_1BYTE_DATA(s);
}

/* Validate everything first, then apply: a bad header must leave no half
 * set response behind.  Raises with a message that names the culprit. */
static int apply_start(pw_resp_t *self, PyObject *status, PyObject *headers)
{
    request_rec *r = self->r;
    const char *st, *ct = NULL;
    Py_ssize_t st_len, i, n;
    apr_off_t declared = -1;
    int code;

    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError,
                     "start_response: status must be str, "
                     "not %s",
                     Py_TYPE(status)->tp_name);
        return -1;
    }
    st = latin1(status, &st_len);
    code = st ? pw_http_status_code(st, (size_t)st_len) : -1;
    if (code < 0) {
        PyErr_Format(PyExc_ValueError,
                     "start_response: status %R is not "
                     "'NNN Reason' (three digits, a space, a reason without "
                     "control characters)",
                     status);
        return -1;
    }
    if (code < 200) {
        /* RFC 9110 15.2: 1xx are interim responses; httpd would send one
         * as the answer and leave the client waiting for the real one. */
        PyErr_Format(PyExc_ValueError,
                     "start_response: status %R is interim (1xx), not a "
                     "final response (RFC 9110 15.2)",
                     status);
        return -1;
    }
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError,
                     "start_response: headers must be a "
                     "list of (name, value) tuples, not %s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    n = PyList_GET_SIZE(headers);
    for (i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(headers, i); /* borrowed */
        PyObject *name, *value;
        const char *nm, *val;
        Py_ssize_t nm_len, val_len;

        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "start_response: header %zd must "
                         "be a (name, value) tuple, not %R",
                         i, h);
            return -1;
        }
        name = PyTuple_GET_ITEM(h, 0);
        value = PyTuple_GET_ITEM(h, 1);
        if (!PyUnicode_Check(name) || !PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError,
                         "start_response: header %R: name "
                         "and value must be str, not %s and %s",
                         h, Py_TYPE(name)->tp_name, Py_TYPE(value)->tp_name);
            return -1;
        }
        nm = latin1(name, &nm_len);
        if (nm == NULL || !pw_http_is_token(nm, (size_t)nm_len)) {
            PyErr_Format(PyExc_ValueError,
                         "start_response: header name %R "
                         "is not an HTTP token (RFC 9110 5.6.2)",
                         name);
            return -1;
        }
        val = latin1(value, &val_len);
        if (val == NULL) {
            PyErr_Format(PyExc_ValueError,
                         "start_response: value of header"
                         " %R has characters outside latin-1 (PEP 3333)",
                         name);
            return -1;
        }
        if (!pw_http_value_ok(val, (size_t)val_len)) {
            PyErr_Format(PyExc_ValueError,
                         "start_response: value of header"
                         " %R contains a control character (CR, LF, NUL "
                         "or another; only HTAB may appear, RFC 9110 5.5)",
                         name);
            return -1;
        }
        if (pw_http_is_hop_by_hop(nm, (size_t)nm_len)) {
            PyErr_Format(PyExc_ValueError,
                         "start_response: %R is a "
                         "hop-by-hop header, which a WSGI application must "
                         "not set (PEP 3333); the server does the framing",
                         name);
            return -1;
        }
        if (nm_len == 14 && strncasecmp(nm, "Content-Length", 14) == 0) {
            apr_off_t cl =
                (apr_off_t)pw_http_content_length(val, (size_t)val_len);
            if (cl < 0 || (declared >= 0 && declared != cl)) {
                PyErr_Format(PyExc_ValueError,
                             "start_response: "
                             "Content-Length %R is not one non-negative "
                             "number",
                             value);
                return -1;
            }
            declared = cl;
        }
    }

    /* Valid: replace whatever an earlier call (with exc_info) set.  The
     * status waits in self until the headers go out (pass_brigade): on r
     * now, HTTP_IN would take a non-2xx for a refusal of the body and skip
     * "100 Continue", and the app would read an empty body. */
    apr_table_clear(r->headers_out);
    r->content_type = NULL;
    /* An app serving an ErrorDocument answers what a CGI script without a
     * Status header does: its "200 OK" keeps the error the redirect
     * started with (r->status, set by httpd), so a missing page stays a
     * 404; any other status is the app's own choice. */
    if (code == HTTP_OK && r->prev && ap_is_HTTP_ERROR(r->status)) {
        self->status = r->status;
        self->status_line = r->status_line;
    }
    else {
        self->status = code;
        self->status_line =
            st_len > 4 ? apr_pstrmemdup(r->pool, st, st_len) : NULL;
    }
    for (i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(headers, i);
        Py_ssize_t nm_len, val_len;
        const char *nm = latin1(PyTuple_GET_ITEM(h, 0), &nm_len);
        const char *val = latin1(PyTuple_GET_ITEM(h, 1), &val_len);
        char *v = apr_pstrmemdup(r->pool, val, val_len);

        if (nm_len == 12 && strncasecmp(nm, "Content-Type", 12) == 0) {
            ct = v;
        }
        else if (nm_len == 14 && strncasecmp(nm, "Content-Length", 14) == 0) {
            /* Repeats were checked to be equal above: send one. */
            apr_table_setn(r->headers_out, "Content-Length", v);
        }
        else {
            apr_table_addn(r->headers_out, apr_pstrmemdup(r->pool, nm, nm_len),
                           v);
        }
    }
    if (ct) {
        ap_set_content_type(r, ct);
    }
    self->declared = declared;
    self->started = 1;
    return 0;
}

/* start_response(status, response_headers, exc_info=None) */
static PyObject *resp_call(pw_resp_t *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = { "status", "response_headers", "exc_info", NULL };
    PyObject *status, *headers, *exc_info = Py_None;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);

    /* Positional, as every framework calls it: no argument parser. */
    if (kw == NULL && (nargs == 2 || nargs == 3)) {
        status = PyTuple_GET_ITEM(args, 0);
        headers = PyTuple_GET_ITEM(args, 1);
        if (nargs == 3) {
            exc_info = PyTuple_GET_ITEM(args, 2);
        }
    }
    else if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:start_response",
                                          kwlist, &status, &headers,
                                          &exc_info)) {
        return NULL;
    }
    if (self->r == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called after "
                                            "its request ended");
        return NULL;
    }
    if (exc_info != Py_None) {
        if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
            PyErr_SetString(PyExc_TypeError,
                            "start_response: exc_info must "
                            "be a (type, value, traceback) tuple or None");
            return NULL;
        }
        if (self->committed) {
            /* PEP 3333: too late to change the headers; re-raise. */
            PyObject *value = PyTuple_GET_ITEM(exc_info, 1);
            PyObject *tb = PyTuple_GET_ITEM(exc_info, 2);
            if (PyExceptionInstance_Check(value)) {
                if (tb != Py_None) {
                    PyException_SetTraceback(value, tb);
                }
                PyErr_SetObject((PyObject *)Py_TYPE(value), value);
            }
            else {
                PyErr_SetString(PyExc_RuntimeError,
                                "start_response: "
                                "exc_info given after the headers were sent");
            }
            return NULL;
        }
    }
    else if (self->started) {
        PyErr_SetString(PyExc_RuntimeError,
                        "start_response: called a "
                        "second time without exc_info (PEP 3333)");
        return NULL;
    }
    if (apply_start(self, status, headers) < 0) {
        return NULL;
    }
    if (self->write == NULL) {
        /* The bound method, made directly: no attribute lookup. */
        self->write = PyCFunction_New(&write_def, (PyObject *)self);
        if (self->write == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(self->write);
}

/* ---- body --------------------------------------------------------------- */

/* Hand the brigade to Apache without the GIL.  A client that went away is
 * not an error of ours: note it and stop sending. */
static int pass_brigade(pw_resp_t *self)
{
    request_rec *r = self->r;
    apr_status_t rv;

    if (pw_input_error_sent(self->input)) {
        /* Apache answered the broken request body itself: the app's
         * response has nowhere to go. */
        apr_brigade_cleanup(self->bb);
        self->gone = 1;
        return -1;
    }
    if (!self->passed) {
        /* The headers go out with this pass. */
        r->status = self->status;
        r->status_line = self->status_line;
    }
    /* Another thread of the app may run meanwhile: write() refuses to
     * enter while busy (two passes at once would corrupt the response). */
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
        rv = ap_pass_brigade(r->output_filters, self->bb);
        apr_brigade_cleanup(self->bb);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    self->passed = 1;
    self->pending = 0;
    if (rv != APR_SUCCESS || r->connection->aborted) {
        if (!self->gone) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r,
                          "PW0310: %s: client"
                          " closed the connection after %" APR_OFF_T_FMT
                          " body bytes",
                          r->uri, self->sent);
        }
        self->gone = 1;
        return -1;
    }
    return 0;
}

/* Another thread of the app is inside pass_brigade (write() from a thread
 * the app started): wait for it, GIL released, before touching the brigade
 * or ending the request under it.  Apache's Timeout bounds the pass. */
static void wait_idle(pw_resp_t *self)
{
    while (self->busy) {
        Py_BEGIN_ALLOW_THREADS
            apr_sleep(apr_time_from_msec(1));
        Py_END_ALLOW_THREADS
    }
}

/* Body bytes from the app, cut at a declared Content-Length.  data stays
 * valid until this returns (the caller holds the bytes object). */
static int send_data(pw_resp_t *self, const char *data, apr_size_t len,
                     send_mode_t mode)
{
    request_rec *r = self->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    if (self->busy) {
        /* The brigade is in another thread's pass: never touch it. */
        if (!self->failed) {
            pw_log_rline(r, APLOG_ERR,
                         "PW0313: %s: application '%s' sent body data "
                         "from two threads at once",
                         r->uri, self->target);
        }
        self->failed = 1;
        return -1;
    }
    if (self->gone || self->eos) {
        return self->gone ? -1 : 0;
    }
    if (self->declared >= 0 && self->sent + (apr_off_t)len > self->declared) {
        pw_log_rline(
            r, APLOG_ERR,
            "PW0308: %s: application"
            " '%s' sent more than its Content-Length of %" APR_OFF_T_FMT
            " bytes; the rest is dropped",
            r->uri, self->target, self->declared);
        len = (apr_size_t)(self->declared - self->sent);
        mode = SEND_EOS;
    }
    if (len > 0) {
        self->committed = 1;
        if (len <= PW_COPY_MAX) {
            apr_brigade_write(self->bb, NULL, NULL, data, len);
        }
        else {
            /* Passed below before data goes away; Apache copies it if it
             * has to keep it longer (setaside). */
            APR_BRIGADE_INSERT_TAIL(self->bb,
                                    apr_bucket_transient_create(data, len, ba));
            if (mode == SEND_BUFFER) {
                mode = SEND_FLUSH;
            }
        }
        self->sent += len;
        self->pending += len;
        if (mode == SEND_FLUSH && self->declared >= 0
            && self->sent == self->declared) {
            mode = SEND_EOS; /* the last byte: no flush of its own */
        }
    }
    if (mode == SEND_EOS) {
        APR_BRIGADE_INSERT_TAIL(self->bb, apr_bucket_eos_create(ba));
        self->eos = 1;
    }
    else if (mode == SEND_FLUSH && len > 0) {
        APR_BRIGADE_INSERT_TAIL(self->bb, apr_bucket_flush_create(ba));
    }
    else if (self->pending < PW_PASS_AT) {
        return 0;
    }
    return pass_brigade(self);
}

/* Where the body may go wrong: the app gave something that is not bytes. */
static int check_item(pw_resp_t *self, PyObject *item)
{
    if (PyBytes_Check(item)) {
        if (!self->started) {
            pw_log_rline(self->r, APLOG_ERR,
                         "PW0306: %s: "
                         "application '%s' produced body data before "
                         "calling start_response",
                         self->r->uri, self->target);
            self->failed = 1;
            return -1;
        }
        return 0;
    }
    pw_log_rline(self->r, APLOG_ERR,
                 "PW0305: %s: "
                 "application '%s' returned an item of type %s, expected "
                 "bytes (PEP 3333)",
                 self->r->uri, self->target, Py_TYPE(item)->tp_name);
    self->failed = 1;
    return -1;
}

/* write(data): PEP 3333's imperative API; the data goes out now. */
static PyObject *resp_write(pw_resp_t *self, PyObject *data)
{
    if (self->r == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after its "
                                            "request ended");
        return NULL;
    }
    if (!self->started) {
        PyErr_SetString(PyExc_RuntimeError, "write() called before "
                                            "start_response()");
        return NULL;
    }
    if (self->busy) {
        /* Like wsgi.input's read: the request is one stream, one writer. */
        PyErr_SetString(PyExc_RuntimeError, "write() called from two "
                                            "threads at once");
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        return PyErr_Format(PyExc_TypeError,
                            "write() argument must be "
                            "bytes, not %s",
                            Py_TYPE(data)->tp_name);
    }
    if (send_data(self, PyBytes_AS_STRING(data),
                  (apr_size_t)PyBytes_GET_SIZE(data), SEND_FLUSH)
        < 0) {
        /* PEP 3333 lets the client's absence surface as an exception; it
         * ends the app's output loop. */
        PyErr_SetString(PyExc_OSError, "client closed the connection");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* wsgi.file_wrapper over a real file: a FILE bucket, so Apache can use
 * sendfile (EnableSendfile On) or mmap (unless EnableMMAP Off), as its own
 * default handler does.  The descriptor is dup'ed: the app closes its file
 * when the request ends, Apache may still be writing.
 * Returns 1 when sent, 0 when the object is no plain file (iterate it),
 * -1 when the client went away. */
static int send_file(pw_resp_t *self, pw_filewrapper_t *fw)
{
    request_rec *r = self->r;
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    PyObject *pos_obj;
    apr_file_t *app_file, *file;
    apr_bucket *b;
    apr_os_file_t fd;
    apr_off_t pos, len;
    apr_int32_t flags = APR_FOPEN_READ;
    struct stat st;

    fd = PyObject_AsFileDescriptor(fw->filelike);
    if (fd < 0) {
        PyErr_Clear();
        return 0;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return 0;
    }
    /* tell() is where a buffered file object really is. */
    pos_obj = PyObject_CallMethod(fw->filelike, "tell", NULL);
    if (pos_obj == NULL) {
        PyErr_Clear();
        return 0;
    }
    pos = (apr_off_t)PyLong_AsLongLong(pos_obj);
    Py_DECREF(pos_obj);
    if (pos < 0 || pos > st.st_size) {
        PyErr_Clear();
        return 0;
    }
    len = st.st_size - pos;
    if (self->declared >= 0 && len > self->declared - self->sent) {
        len = self->declared - self->sent;
    }
#if APR_HAS_SENDFILE
    flags |= AP_SENDFILE_ENABLED(d->enable_sendfile);
#endif
    /* app_file only borrows the app's descriptor (apr_os_file_put: no
     * cleanup, never closed).  apr_file_dup makes the real one: its own
     * descriptor and APR's own cleanup, which apr_file_setaside moves along
     * when the core output filter keeps the bucket past the request (a
     * slow client): closed exactly once, wherever it ends. */
    if (apr_os_file_put(&app_file, &fd, flags, r->pool) != APR_SUCCESS
        || apr_file_dup(&file, app_file, r->pool) != APR_SUCCESS) {
        return 0;
    }
    if (len > 0) {
        self->committed = 1;
        b = apr_brigade_insert_file(self->bb, file, pos, len, r->pool);
#if APR_HAS_MMAP
        if (d->enable_mmap == ENABLE_MMAP_OFF) {
            /* A large file is several buckets: every one of them. */
            while (b != APR_BRIGADE_SENTINEL(self->bb)
                   && APR_BUCKET_IS_FILE(b)) {
                apr_bucket_file_enable_mmap(b, 0);
                b = APR_BUCKET_PREV(b);
            }
        }
#endif
        self->sent += len;
    }
    if (self->declared >= 0 && self->sent < self->declared) {
        /* A file shorter than its Content-Length: the end of
         * pw_response_send() aborts the connection after it. */
        return pass_brigade(self) < 0 ? -1 : 1;
    }
    return send_data(self, NULL, 0, SEND_EOS) < 0 ? -1 : 1;
}

/* Call result.close() if it has one (PEP 3333: always, exactly once). */
static void close_result(pw_resp_t *self, PyObject *result)
{
    PyObject *close = NULL, *res;
    int found;

    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        return; /* no close() to call */
    }
    found = PW_GETATTR_OPTIONAL(result, str_close[self->interp], &close);
    if (found <= 0) {
        if (found < 0) {
            pw_log_exception(self->r, self->r->server,
                             "PW0309: %s: looking"
                             " up close() of the response of application "
                             "'%s' raised",
                             self->r->uri, self->target);
            self->failed = 1;
        }
        return;
    }
    res = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (res == NULL) {
        pw_log_exception(self->r, self->r->server,
                         "PW0309: %s: close() of "
                         "the response of application '%s' raised",
                         self->r->uri, self->target);
        self->failed = 1;
        return;
    }
    Py_DECREF(res);
}

/* The app raised because the client's body was broken (too large,
 * malformed, cut off): the client's error, logged at info like PW0311, and
 * no traceback. */
static void app_stopped_on_body(pw_resp_t *self)
{
    PyErr_Clear();
    pw_log_rline(self->r, APLOG_INFO,
                 "PW0312: %s: application '%s' stopped on the broken "
                 "request body (HTTP %d)",
                 self->r->uri, self->target, pw_input_error(self->input));
}

/* What the handler returns for a failure: 500 while nothing reached the
 * client (and nothing of the app's response is left on request_rec);
 * afterwards, abort the connection so the client cannot take a truncated
 * response for a whole one (RFC 9112 8: an incomplete message). */
static int fail_status(pw_resp_t *self)
{
    request_rec *r = self->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    wait_idle(self);
    if (!self->passed && !pw_input_error_sent(self->input)) {
        apr_brigade_cleanup(self->bb);
        apr_table_clear(r->headers_out);
        r->content_type = NULL;
        r->status_line = NULL;
        r->status = HTTP_OK;
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!self->gone && !self->eos) {
        /* A 502 error bucket is httpd's sign for "the body broke": the
         * chunk filter then sends no last-chunk and the connection is
         * closed (ap_http_outerror_filter). */
        apr_brigade_cleanup(self->bb);
        APR_BRIGADE_INSERT_TAIL(
            self->bb,
            ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, ba));
        APR_BRIGADE_INSERT_TAIL(self->bb, apr_bucket_eos_create(ba));
        self->eos = 1;
        r->connection->keepalive = AP_CONN_CLOSE;
        pass_brigade(self);
    }
    return OK;
}

int pw_response_failed(PyObject *start_response)
{
    pw_resp_t *self = (pw_resp_t *)start_response;

    if (PyErr_Occurred()) {
        /* The app raised from its call: log it here, where the body's
         * fate is known. */
        if (pw_input_error(self->input)) {
            app_stopped_on_body(self);
        }
        else {
            pw_log_exception(self->r, self->r->server,
                             "PW0301: %s: application '%s' raised",
                             self->r->uri, self->target);
        }
    }
    self->failed = 1;
    return fail_status(self);
}

int pw_response_send(PyObject *start_response, PyObject *result)
{
    pw_resp_t *self = (pw_resp_t *)start_response;
    request_rec *r = self->r;
    PyObject *it = NULL, *item;
    int rc = 0;

    wait_idle(self);
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        PyObject *seq = result;
        Py_ssize_t i;
        /* Another thread of the app may change a list while the GIL is
         * released in a pass: its size is read anew for every item, and
         * each item is held while Apache may still refer to its bytes. */
        for (i = 0; rc == 0 && !self->eos && i < PySequence_Fast_GET_SIZE(seq);
             i++) {
            item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, i));
            rc = check_item(self, item);
            if (rc == 0) {
                rc = send_data(self, PyBytes_AS_STRING(item),
                               (apr_size_t)PyBytes_GET_SIZE(item), SEND_BUFFER);
            }
            Py_DECREF(item);
        }
    }
    else if (Py_TYPE(result) == filewrapper_type[self->interp] && self->started
             && (rc = send_file(self, (pw_filewrapper_t *)result)) != 0) {
        rc = rc < 0 ? -1 : 0;
    }
    else {
        send_mode_t mode = Py_TYPE(result) == filewrapper_type[self->interp]
                               ? SEND_BUFFER
                               : SEND_FLUSH;
        it = PyObject_GetIter(result);
        if (it == NULL) {
            pw_log_exception(r, r->server,
                             "PW0302: %s: application '%s' "
                             "returned a %s, which is not an iterable of "
                             "bytes:",
                             r->uri, self->target, Py_TYPE(result)->tp_name);
            self->failed = 1;
            rc = -1;
        }
        /* PEP 3333: stop iterating once the declared Content-Length is
         * complete (eos), or the client is gone (rc). */
        while (rc == 0 && !self->eos && (item = PyIter_Next(it)) != NULL) {
            rc = check_item(self, item);
            if (rc == 0) {
                rc = send_data(self, PyBytes_AS_STRING(item),
                               (apr_size_t)PyBytes_GET_SIZE(item), mode);
            }
            Py_DECREF(item);
        }
        if (rc == 0 && PyErr_Occurred()) {
            if (pw_input_error(self->input)) {
                app_stopped_on_body(self);
            }
            else {
                pw_log_exception(r, r->server,
                                 "PW0302: %s: application '%s' "
                                 "raised while producing its response:",
                                 r->uri, self->target);
            }
            self->failed = 1;
            rc = -1;
        }
    }

    if (rc == 0 && !self->started) {
        pw_log_rline(r, APLOG_ERR,
                     "PW0306: %s: application"
                     " '%s' returned without calling start_response",
                     r->uri, self->target);
        self->failed = 1;
        rc = -1;
    }
    /* 204 and 304 have no body (RFC 9110 15.3.5, 15.4.5); a 304 may carry
     * the representation's Content-Length (8.6): neither is short. */
    if (rc == 0 && self->declared >= 0 && self->sent < self->declared
        && !r->header_only && self->status != HTTP_NO_CONTENT
        && self->status != HTTP_NOT_MODIFIED) {
        pw_log_rline(r, APLOG_ERR,
                     "PW0307: %s: application"
                     " '%s' declared Content-Length %" APR_OFF_T_FMT " but "
                     "sent %" APR_OFF_T_FMT " bytes; connection closed",
                     r->uri, self->target, self->declared, self->sent);
        self->failed = 1;
        /* Headers with the declared length, then the short body, then the
         * abort below: the client sees a truncated message. */
        if (self->pending || !self->passed) {
            pass_brigade(self);
        }
        rc = -1;
    }
    if (rc == 0) {
        rc = send_data(self, NULL, 0, SEND_EOS);
    }

    Py_XDECREF(it);
    close_result(self, result);
    if (self->failed) {
        return fail_status(self);
    }
    return OK; /* a client that went away is not a server error */
}

int pw_response_finish(PyObject *start_response, apr_off_t *bytes_sent)
{
    pw_resp_t *self = (pw_resp_t *)start_response;

    wait_idle(self);
    *bytes_sent = self->sent;
    self->r = NULL;
    Py_CLEAR(self->write);
    return self->failed;
}

static void resp_dealloc(pw_resp_t *self)
{
    PyTypeObject *type = Py_TYPE(self);

    Py_XDECREF(self->write);
    Py_XDECREF(self->input);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type's instance holds a reference to it */
}

static PyMethodDef write_def = {
    "write", (PyCFunction)resp_write, METH_O,
    "write(data): send body bytes now (PEP 3333)."
};

static PyType_Slot resp_slots[] = {
    { Py_tp_dealloc, (void *)resp_dealloc },
    { Py_tp_call, (void *)resp_call },
    { Py_tp_doc,
      (void *)"start_response(status, response_headers, exc_info=None)" },
    { 0, NULL },
};

static PyType_Spec resp_spec = {
    "mod_pywsgi.StartResponse",
    sizeof(pw_resp_t),
    0,
    Py_TPFLAGS_DEFAULT | PW_TPFLAGS_IMMUTABLE,
    resp_slots,
};

PyObject *pw_response_new(request_rec *r, const char *target, PyObject *input,
                          int interp)
{
    pw_resp_t *self = PyObject_New(pw_resp_t, resp_type[interp]);

    if (self == NULL) {
        return NULL;
    }
    self->r = r;
    self->target = target;
    self->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    self->declared = -1;
    self->sent = 0;
    self->pending = 0;
    self->started = self->committed = self->passed = 0;
    self->eos = self->gone = self->failed = self->busy = 0;
    self->status = HTTP_OK;
    self->status_line = NULL;
    self->write = NULL;
    self->input = Py_NewRef(input);
    self->interp = interp;
    return (PyObject *)self;
}

/* ---- wsgi.file_wrapper ------------------------------------------------ */

static PyObject *fw_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = { "filelike", "blksize", NULL };
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    pw_filewrapper_t *self;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n:file_wrapper", kwlist,
                                     &filelike, &blksize)) {
        return NULL;
    }
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "file_wrapper: blksize must be "
                                          "positive");
        return NULL;
    }
    self = (pw_filewrapper_t *)type->tp_alloc(type, 0);
    if (self) {
        self->filelike = Py_NewRef(filelike);
        self->blksize = blksize;
    }
    return (PyObject *)self;
}

static PyObject *fw_iternext(pw_filewrapper_t *self)
{
    PyObject *data =
        PyObject_CallMethod(self->filelike, "read", "n", self->blksize);

    if (data && PyBytes_Check(data) && PyBytes_GET_SIZE(data) == 0) {
        Py_DECREF(data);
        return NULL;
    }
    return data;
}

static PyObject *fw_close(pw_filewrapper_t *self, PyObject *unused)
{
    PyObject *close = PyObject_GetAttrString(self->filelike, "close");

    if (close == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_SETREF(close, PyObject_CallNoArgs(close));
    if (close == NULL) {
        return NULL;
    }
    Py_DECREF(close);
    Py_RETURN_NONE;
}

static void fw_dealloc(pw_filewrapper_t *self)
{
    PyTypeObject *type = Py_TYPE(self);

    Py_XDECREF(self->filelike);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type's instance holds a reference to it */
}

static PyMethodDef fw_methods[] = {
    { "close", (PyCFunction)fw_close, METH_NOARGS, NULL }, { NULL }
};

static PyType_Slot fw_slots[] = {
    { Py_tp_dealloc, (void *)fw_dealloc },
    { Py_tp_doc, (void *)"wsgi.file_wrapper(filelike, blksize=8192)" },
    { Py_tp_iter, (void *)PyObject_SelfIter },
    { Py_tp_iternext, (void *)fw_iternext },
    { Py_tp_methods, fw_methods },
    { Py_tp_new, (void *)fw_new },
    { 0, NULL },
};

static PyType_Spec fw_spec = {
    "mod_pywsgi.FileWrapper",
    sizeof(pw_filewrapper_t),
    0,
    Py_TPFLAGS_DEFAULT | PW_TPFLAGS_IMMUTABLE,
    fw_slots,
};

PyObject *pw_response_file_wrapper(int interp)
{
    return (PyObject *)filewrapper_type[interp];
}

int pw_response_interp_init(int interp)
{
    str_close[interp] = PyUnicode_InternFromString("close");
    resp_type[interp] = pw_type_new(&resp_spec, 0);
    filewrapper_type[interp] = pw_type_new(&fw_spec, 1);
    return str_close[interp] && resp_type[interp] && filewrapper_type[interp]
               ? 0
               : -1;
}
