/*
 * pw_environ.c: environ, built for each request on the hot path.
 *
 * Everything that does not change per request is made once per child: the
 * keys are interned str objects, the constant entries (wsgi.version,
 * wsgi.multithread, ...) sit in a template dict that each request copies,
 * each route keeps its SCRIPT_NAME as a str per interpreter.  Per request: the
 * copy, the CGI values, one str per request header.  Values are latin-1
 * decoded, the "bytes as str" rule of PEP 3333.
 *
 * Request headers: names made of anything but letters, digits and '-' are
 * left out (an "X_Foo" would otherwise pass for "X-Foo", a "Content_Length"
 * for CONTENT_LENGTH); Proxy never goes in (httpoxy, CVE-2016-5387);
 * Authorization only with PyWSGIPassAuthorization On.  REMOTE_USER,
 * AUTH_TYPE and the REDIRECT_* values come from Apache (add_apache_vars).
 * A chunked body read before the app (pw_input_spool) has a CONTENT_LENGTH,
 * its size, and no HTTP_TRANSFER_ENCODING: wsgi.input gives it de-chunked.
 * Locking: GIL held throughout.
 */
#include "pw_environ.h"
#include "pw_http.h"
#include "ap_mpm.h"
#include "http_core.h"

APLOG_USE_MODULE(pywsgi);

/* Per interpreter (each has its own objects): interned keys — dict
 * lookups on them compare by identity —, values seen on almost every
 * request, and the template of constant entries. */
typedef struct {
    PyObject *request_method, *script_name, *path_info, *query_string,
        *content_type, *content_length, *server_name, *server_port,
        *server_protocol, *request_uri, *remote_addr, *remote_port, *https,
        *url_scheme, *input;
    PyObject *get, *post, *http11, *http10, *http, *https_v, *empty, *on;
    PyObject *template;
} environ_state_t;

static environ_state_t states[PW_MAX_INTERPS];

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

int pw_environ_interp_init(int interp, PyObject *errors, PyObject *file_wrapper)
{
    environ_state_t *st = &states[interp];
    int threaded = 0, daemons = 1;
    PyObject *version, *template;
    int rc;

    st->request_method = intern("REQUEST_METHOD");
    st->script_name = intern("SCRIPT_NAME");
    st->path_info = intern("PATH_INFO");
    st->query_string = intern("QUERY_STRING");
    st->content_type = intern("CONTENT_TYPE");
    st->content_length = intern("CONTENT_LENGTH");
    st->server_name = intern("SERVER_NAME");
    st->server_port = intern("SERVER_PORT");
    st->server_protocol = intern("SERVER_PROTOCOL");
    st->request_uri = intern("REQUEST_URI");
    st->remote_addr = intern("REMOTE_ADDR");
    st->remote_port = intern("REMOTE_PORT");
    st->https = intern("HTTPS");
    st->url_scheme = intern("wsgi.url_scheme");
    st->input = intern("wsgi.input");
    st->get = intern("GET");
    st->post = intern("POST");
    st->http11 = intern("HTTP/1.1");
    st->http10 = intern("HTTP/1.0");
    st->http = intern("http");
    st->https_v = intern("https");
    st->empty = intern("");
    st->on = intern("on");
    if (PyErr_Occurred()) {
        return -1;
    }

    /* True to the MPM, as PEP 3333 asks: threads under worker/event, more
     * than one process wherever more than one child may run. */
    ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons);

    template = st->template = PyDict_New();
    version = Py_BuildValue("(ii)", 1, 0);
    if (template == NULL || version == NULL) {
        Py_XDECREF(version);
        return -1;
    }
    rc = PyDict_SetItemString(template, "wsgi.version", version);
    Py_DECREF(version);
    if (rc < 0
        || PyDict_SetItemString(template, "wsgi.multithread",
                                threaded != AP_MPMQ_NOT_SUPPORTED ? Py_True
                                                                  : Py_False)
               < 0
        || PyDict_SetItemString(template, "wsgi.multiprocess",
                                daemons > 1 ? Py_True : Py_False)
               < 0
        || PyDict_SetItemString(template, "wsgi.run_once", Py_False) < 0
        || PyDict_SetItemString(template, "wsgi.input_terminated", Py_True) < 0
        || PyDict_SetItemString(template, "wsgi.errors", errors) < 0
        || PyDict_SetItemString(template, "wsgi.file_wrapper", file_wrapper) < 0
        || PyDict_SetItem(template, st->query_string, st->empty) < 0) {
        return -1;
    }
    {
        PyObject *sw = PyUnicode_DecodeLatin1(
            ap_get_server_banner(), strlen(ap_get_server_banner()), NULL);
        if (sw == NULL) {
            return -1;
        }
        rc = PyDict_SetItemString(template, "SERVER_SOFTWARE", sw);
        Py_DECREF(sw);
    }
    return rc;
}

/* A port number as str, without PyUnicode_FromFormat's format parser. */
static PyObject *str_port(unsigned int v)
{
    char buf[12], *p = buf + sizeof(buf);

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v && p > buf);
    return PyUnicode_DecodeLatin1(p, buf + sizeof(buf) - p, NULL);
}

static inline PyObject *str_latin1(const char *s)
{
    return PyUnicode_DecodeLatin1(s, strlen(s), NULL);
}

/* d[key] = value, stealing value (NULL: a failed conversion). */
static inline int set_steal(PyObject *d, PyObject *key, PyObject *value)
{
    int rc;

    if (value == NULL) {
        return -1;
    }
    rc = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return rc;
}

/* spooled: the body was de-chunked and read before the app (issue 11):
 * Transfer-Encoding no longer describes what wsgi.input gives. */
static int add_headers(request_rec *r, const environ_state_t *st, PyObject *d,
                       int pass_auth, int spooled)
{
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    char name[256];
    int i;

    for (i = 0; i < arr->nelts; i++) {
        PyObject *key, *value, *old;
        size_t n;

        if (e[i].key == NULL || e[i].val == NULL) {
            continue;
        }
        if (spooled && strcasecmp(e[i].key, "Transfer-Encoding") == 0) {
            continue;
        }
        if (strcasecmp(e[i].key, "Content-Type") == 0) {
            key = Py_NewRef(st->content_type);
        }
        else if (strcasecmp(e[i].key, "Content-Length") == 0) {
            key = Py_NewRef(st->content_length);
        }
        else {
            n = pw_http_cgi_name(e[i].key, name, sizeof(name));
            if (n == 0) {
                continue;
            }
            if (n == 10 && memcmp(name, "HTTP_PROXY", 10) == 0) {
                continue;
            }
            if (n == 18 && memcmp(name, "HTTP_AUTHORIZATION", 18) == 0
                && !pass_auth) {
                continue;
            }
            key = PyUnicode_FromStringAndSize(name, (Py_ssize_t)n);
            if (key == NULL) {
                return -1;
            }
        }
        value = str_latin1(e[i].val);
        if (value == NULL) {
            Py_DECREF(key);
            return -1;
        }
        /* A header sent twice: one value, joined as RFC 9110 5.3 allows. */
        old = PyDict_GetItemWithError(d, key); /* borrowed */
        if (old) {
            Py_SETREF(value, PyUnicode_FromFormat("%U, %U", old, value));
        }
        if (value == NULL || PyErr_Occurred()) {
            Py_DECREF(key);
            Py_XDECREF(value);
            return -1;
        }
        if (PyDict_SetItem(d, key, value) < 0) {
            Py_DECREF(key);
            Py_DECREF(value);
            return -1;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return 0;
}

/* d[key] = s when s is set (latin-1, as every CGI value). */
static int set_opt(PyObject *d, const char *key, const char *s)
{
    PyObject *v;
    int rc;

    if (s == NULL) {
        return 0;
    }
    v = str_latin1(s);
    if (v == NULL) {
        return -1;
    }
    rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

/*
 * What Apache's own modules decided about the request, as a CGI script
 * gets it (RFC 3875 4.1.1, 4.1.11; httpd's ap_add_common_vars()):
 * REMOTE_USER and AUTH_TYPE from whichever module authenticated the user
 * (Basic, Digest, client certificates, GSSAPI, OpenID Connect, ...); in a
 * request made by an internal redirect (an ErrorDocument, a per-directory
 * RewriteRule), REDIRECT_URL and REDIRECT_QUERY_STRING of the request it
 * came from, and REDIRECT_REMOTE_USER when only that one was authenticated.
 * REDIRECT_STATUS and REDIRECT_<var> are in r->subprocess_env already.
 * Set before the subprocess_env values, so SetEnv cannot pass for them.
 */
static int add_apache_vars(request_rec *r, PyObject *d)
{
    request_rec *prev = r->prev;
    core_dir_config *core;
    const char *url;

    if (set_opt(d, "REMOTE_USER", r->user) < 0
        || set_opt(d, "AUTH_TYPE", r->ap_auth_type) < 0) {
        return -1;
    }
    if (prev == NULL) {
        return 0;
    }
    if (r->user == NULL) {
        request_rec *back;
        for (back = prev; back && back->user == NULL; back = back->prev) {
        }
        if (back && set_opt(d, "REDIRECT_REMOTE_USER", back->user) < 0) {
            return -1;
        }
    }
    /* QualifyRedirectURL On asks for the full URL, as httpd gives CGI. */
    core = ap_get_core_module_config(r->per_dir_config);
    url = core->qualify_redirect_url == AP_CORE_CONFIG_ON
              ? ap_construct_url(r->pool, prev->uri, prev)
              : prev->uri;
    if (set_opt(d, "REDIRECT_URL", url) < 0
        || set_opt(d, "REDIRECT_QUERY_STRING", prev->args) < 0) {
        return -1;
    }
    return 0;
}

/* SetEnv, SetEnvIf, RewriteRule [E=...]: what Apache's configuration says
 * the app should see — without overriding the CGI keys above. */
static int add_subprocess_env(request_rec *r, PyObject *d)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        PyObject *key, *value;
        if (e[i].key == NULL || e[i].val == NULL) {
            continue;
        }
        key = str_latin1(e[i].key);
        value = key ? str_latin1(e[i].val) : NULL;
        if (value == NULL || PyDict_SetDefault(d, key, value) == NULL) {
            Py_XDECREF(key);
            Py_XDECREF(value);
            return -1;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return 0;
}

PyObject *pw_environ_build(request_rec *r, pw_route_t *route,
                           const pw_request_conf_t *rc, PyObject *input,
                           apr_off_t spooled)
{
    int interp = rc->interp;
    const environ_state_t *st = &states[interp];
    PyObject *d = PyDict_Copy(st->template);
    PyObject *method, *protocol;
    conn_rec *c = r->connection;
    int tls;

    if (d == NULL) {
        return NULL;
    }
    if (r->method_number == M_GET && !r->header_only) {
        method = Py_NewRef(st->get);
    }
    else if (r->method_number == M_POST) {
        method = Py_NewRef(st->post);
    }
    else {
        method = str_latin1(r->method);
    }
    if (r->proto_num == HTTP_VERSION(1, 1)) {
        protocol = Py_NewRef(st->http11);
    }
    else if (r->proto_num == HTTP_VERSION(1, 0)) {
        protocol = Py_NewRef(st->http10);
    }
    else {
        protocol = str_latin1(r->protocol);
    }
    tls = PW_CONN_IS_TLS(c);
    if (route->script_name[interp] == NULL) {
        route->script_name[interp] =
            PyUnicode_DecodeLatin1(route->url, route->url_len, NULL);
    }

    /* Each set_steal() consumes its value, failing or not: the two made
     * above go in first, so that no failure can leave one behind. */
    if (set_steal(d, st->request_method, method) < 0) {
        Py_XDECREF(protocol);
        goto fail;
    }
    if (set_steal(d, st->server_protocol, protocol) < 0
        || set_steal(d, st->script_name, Py_XNewRef(route->script_name[interp]))
               < 0
        /* r->uri is already percent-decoded: PATH_INFO as PEP 3333 and
         * CGI (RFC 3875 4.1.5) want it. */
        || set_steal(d, st->path_info, str_latin1(r->uri + route->url_len)) < 0
        || (r->args && set_steal(d, st->query_string, str_latin1(r->args)) < 0)
        || set_steal(d, st->request_uri, str_latin1(r->unparsed_uri)) < 0
        || set_steal(d, st->server_name, str_latin1(ap_get_server_name(r))) < 0
        || set_steal(d, st->server_port, str_port(ap_get_server_port(r))) < 0
        || set_steal(d, st->remote_addr, str_latin1(r->useragent_ip)) < 0
        || set_steal(d, st->remote_port,
                     str_port(r->useragent_addr ? r->useragent_addr->port
                                                : c->client_addr->port))
               < 0
        || PyDict_SetItem(d, st->url_scheme, tls ? st->https_v : st->http) < 0
        || (tls && PyDict_SetItem(d, st->https, st->on) < 0)
        || PyDict_SetItem(d, st->input, input) < 0
        || add_headers(r, st, d, rc->pass_authorization, spooled >= 0) < 0
        || (spooled >= 0
            && set_steal(d, st->content_length,
                         PyUnicode_FromFormat("%lld", (long long)spooled))
                   < 0)
        || add_apache_vars(r, d) < 0 || add_subprocess_env(r, d) < 0) {
        goto fail;
    }
    return d;

fail:
    Py_DECREF(d);
    return NULL;
}
