/*
 * pw_auth.c: Python as Apache's authentication and authorisation provider.
 *
 * Here: the authn provider "pywsgi" (AuthBasicProvider pywsgi calls
 * check_password(environ, user, password); AuthDigestProvider pywsgi calls
 * get_realm_hash(environ, user, realm)) and the authz provider
 * "pywsgi-group" (Require pywsgi-group NAME... calls
 * groups_for_user(environ, user)).  The functions live in the
 * PyWSGIAuthScript of the request's location, a target pw_config.c records
 * and pw_app.c loads like an app (its object is the module), in the
 * interpreter its interpreter= names (main by default).  Apache protects
 * whatever is behind it: static files, an app, WebDAV, a proxy.
 *
 * Whatever goes wrong in Python denies: an exception, a missing function
 * or an answer of the wrong type is AUTH_GENERAL_ERROR /
 * AUTHZ_GENERAL_ERROR, which Apache answers with 500, and one log line
 * names the script, the function and what it raised or returned.  The
 * password never reaches a log line.  A function still running after
 * PyWSGIRequestTimeout is stopped as an app is (pw_guard's watchdog raises
 * RequestTimeout in it): 500 as for one that raised -- a hung user database
 * is the server's failure, and 401 would only ask the client for its
 * password again -- and PW0605 says so.
 *
 * Locking: each provider call takes the script's interpreter's GIL through
 * pw_interp and gives it back before it returns; the providers run on the
 * request's thread before any handler.
 */
#include "pw_auth.h"
#include "pw_app.h"
#include "pw_config.h"
#include "pw_guard.h"
#include "pw_interp.h"
#include "pw_log.h"
#include "mod_auth.h"
#include "http_core.h"
#include "apr_lib.h"

APLOG_USE_MODULE(pywsgi);

/* One call of a script function, from its start to its end. */
typedef struct {
    request_rec *r;
    const pw_target_t *script;
    const char *func;     /* check_password, get_realm_hash, ... */
    const char *user;     /* as sent */
    const char *log_user; /* escaped for the error log */
    PyThreadState *tstate;
    PyObject *fn;                /* the function, while the GIL is held */
    request_rec *outer;          /* the request this thread logged for before (a
                                  * subrequest's check inside a running app) */
    apr_interval_time_t timeout; /* PyWSGIRequestTimeout, 0: none */
    pw_guard_saved_t guard;
    int guarded;
} auth_call_t;

static const char *const why[] = { "AuthBasicProvider pywsgi",
                                   "AuthDigestProvider pywsgi",
                                   "Require pywsgi-group" };

/* d[key] = s, latin-1 as every CGI value; nothing when s is NULL. */
static int put(PyObject *d, const char *key, const char *s)
{
    PyObject *v;
    int rc;

    if (s == NULL) {
        return 0;
    }
    v = PyUnicode_DecodeLatin1(s, (Py_ssize_t)strlen(s), NULL);
    if (v == NULL) {
        return -1;
    }
    rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

/*
 * The environ the functions get: a small CGI-like dict describing the
 * request (README, "Python as Apache's authentication provider").  No
 * headers but Host, never the Authorization header; REMOTE_USER only once
 * the user is authenticated (for groups_for_user).
 */
static PyObject *auth_environ(request_rec *r, int with_user)
{
    const pw_route_t *route =
        ap_get_module_config(r->request_config, &pywsgi_module);
    apr_size_t split = route ? route->url_len : 0;
    PyObject *d = PyDict_New();

    if (d == NULL) {
        return NULL;
    }
    if (put(d, "REQUEST_METHOD", r->method) < 0
        || put(d, "REQUEST_URI", r->unparsed_uri) < 0
        || put(d, "SCRIPT_NAME", apr_pstrmemdup(r->pool, r->uri, split)) < 0
        || put(d, "PATH_INFO", r->uri + split) < 0
        || put(d, "QUERY_STRING", r->args ? r->args : "") < 0
        || put(d, "SERVER_NAME", ap_get_server_name(r)) < 0
        || put(d, "SERVER_PORT", apr_itoa(r->pool, (int)ap_get_server_port(r)))
               < 0
        || put(d, "SERVER_PROTOCOL", r->protocol) < 0
        || put(d, "REMOTE_ADDR", r->useragent_ip) < 0
        || put(d, "HTTP_HOST", apr_table_get(r->headers_in, "Host")) < 0
        || put(d, "AUTH_TYPE", r->ap_auth_type) < 0
        || (with_user && put(d, "REMOTE_USER", r->user) < 0)
        || put(d, "wsgi.url_scheme", ap_http_scheme(r)) < 0
        || put(d, "mod_pywsgi.version", PW_VERSION) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* GIL released on return.  Returns 1 when PyWSGIRequestTimeout stopped
 * the function (logged: PW0605): the caller denies whatever it answered. */
static int call_end(auth_call_t *c)
{
    int fired = 0;

    Py_CLEAR(c->fn);
    if (c->guarded) {
        fired = pw_guard_end(&c->guard);
        c->guarded = 0;
    }
    if (fired) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, c->r,
                      "PW0605: %s: PyWSGIAuthScript '%s': %s() for user '%s' "
                      "stopped after %" APR_TIME_T_FMT " s "
                      "(PyWSGIRequestTimeout); access denied, the traceback "
                      "above shows where it was",
                      c->r->uri, c->script->target, c->func, c->log_user,
                      apr_time_sec(c->timeout));
    }
    if (c->tstate) {
        pw_log_set_request(c->outer);
        pw_interp_release(c->tstate);
        c->tstate = NULL;
    }
    return fired;
}

/* Take the GIL of the script's interpreter and find func in the script.
 * 0 with the GIL held, or -1 (GIL not held) after logging why. */
static int call_begin(auth_call_t *c, request_rec *r, const char *func,
                      const char *user, int use)
{
    apr_interval_time_t waited;
    PyObject *module;
    int interp;

    memset(c, 0, sizeof(*c));
    c->r = r;
    c->func = func;
    c->user = user;
    c->log_user = ap_escape_logitem(r->pool, user);
    c->script = pw_config_auth_script(r, &interp);
    if (c->script == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0603: %s: %s is used here, but no PyWSGIAuthScript "
                      "is set for this location; access denied",
                      r->uri, why[use]);
        return -1;
    }
    c->tstate = pw_interp_acquire(interp, &waited);
    if (c->tstate == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0604: %s: interpreter '%s' of PyWSGIAuthScript '%s' "
                      "is not available in this child (see PW0101 or PW0105 "
                      "at its start); access denied",
                      r->uri, pw_config_interp_name(interp), c->script->target);
        return -1;
    }
    c->outer = pw_log_set_request(r);
    module = pw_app_callable(c->script, interp, 0, r, r->server);
    if (module == NULL) {
        call_end(c); /* PW0201 said why */
        return -1;
    }
    c->fn = PyObject_GetAttrString(module, func);
    Py_DECREF(module);
    if (c->fn == NULL || !PyCallable_Check(c->fn)) {
        PyErr_Clear();
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0602: %s: PyWSGIAuthScript '%s' defines no function "
                      "%s(), which %s needs; access denied",
                      r->uri, c->script->target, func, why[use]);
        call_end(c);
        return -1;
    }
    /* From here to call_end, the watchdog may stop it. */
    c->timeout = pw_config_request_timeout(r->server);
    pw_guard_begin(r, interp, c->timeout, &c->guard);
    c->guarded = 1;
    return 0;
}

/* GIL held.  fn(environ, user[, arg]): a new reference, or NULL after
 * logging the exception (one PW0600 line, then its traceback). */
static PyObject *call_run(auth_call_t *c, const char *arg, int with_user)
{
    PyObject *environ = auth_environ(c->r, with_user);
    PyObject *user = NULL, *extra = NULL, *res = NULL;

    if (environ) {
        user =
            PyUnicode_DecodeLatin1(c->user, (Py_ssize_t)strlen(c->user), NULL);
    }
    if (user && arg) {
        extra = PyUnicode_DecodeLatin1(arg, (Py_ssize_t)strlen(arg), NULL);
    }
    if (user && (extra || arg == NULL)) {
        res = PyObject_CallFunctionObjArgs(c->fn, environ, user, extra, NULL);
    }
    if (res == NULL) {
        pw_log_exception(c->r, c->r->server,
                         "PW0600: %s: PyWSGIAuthScript '%s': %s() for user "
                         "'%s' raised, access denied:",
                         c->r->uri, c->script->target, c->func, c->log_user);
    }
    Py_XDECREF(environ);
    Py_XDECREF(user);
    Py_XDECREF(extra);
    return res;
}

/* GIL held.  The one line for an answer of the wrong type. */
static void wrong_answer(auth_call_t *c, PyObject *res, const char *wanted)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, c->r,
                  "PW0601: %s: PyWSGIAuthScript '%s': %s() for user '%s' "
                  "returned %s, not %s; access denied",
                  c->r->uri, c->script->target, c->func, c->log_user,
                  Py_TYPE(res)->tp_name, wanted);
}

/* AuthBasicProvider pywsgi: True lets in, False denies, None is an
 * unknown user; anything else denies with 500. */
static authn_status check_password(request_rec *r, const char *user,
                                   const char *password)
{
    auth_call_t c;
    PyObject *res;
    authn_status st = AUTH_GENERAL_ERROR;

    if (call_begin(&c, r, "check_password", user, 0) < 0) {
        return AUTH_GENERAL_ERROR;
    }
    res = call_run(&c, password, 0);
    if (res == Py_True) {
        st = AUTH_GRANTED;
    }
    else if (res == Py_False) {
        st = AUTH_DENIED;
    }
    else if (res == Py_None) {
        st = AUTH_USER_NOT_FOUND;
    }
    else if (res) {
        wrong_answer(&c, res, "True, False or None");
    }
    Py_XDECREF(res);
    if (call_end(&c)) {
        st = AUTH_GENERAL_ERROR;
    }
    return st;
}

/* AuthDigestProvider pywsgi: the hex MD5 of "user:realm:password" (what
 * htdigest stores), or None for an unknown user. */
static authn_status get_realm_hash(request_rec *r, const char *user,
                                   const char *realm, char **rethash)
{
    auth_call_t c;
    PyObject *res;
    authn_status st = AUTH_GENERAL_ERROR;

    if (call_begin(&c, r, "get_realm_hash", user, 1) < 0) {
        return AUTH_GENERAL_ERROR;
    }
    res = call_run(&c, realm, 0);
    if (res == Py_None) {
        st = AUTH_USER_NOT_FOUND;
    }
    else if (res) {
        const char *hex = PyUnicode_Check(res) ? PyUnicode_AsUTF8(res) : NULL;
        int i, ok = hex != NULL && strlen(hex) == 32;

        PyErr_Clear();
        for (i = 0; ok && i < 32; i++) {
            ok = apr_isxdigit(hex[i]);
        }
        if (ok) {
            /* mod_auth_digest compares lower-case hex. */
            *rethash = apr_pstrdup(r->pool, hex);
            ap_str_tolower(*rethash);
            st = AUTH_USER_FOUND;
        }
        else {
            wrong_answer(&c, res,
                         "a str of 32 hex digits (the MD5 of "
                         "user:realm:password) or None");
        }
    }
    Py_XDECREF(res);
    if (call_end(&c)) {
        st = AUTH_GENERAL_ERROR;
    }
    return st;
}

static const authn_provider authn = { &check_password, &get_realm_hash };

/* GIL held.  Is one of want[] among the names groups_for_user() gave?
 * 1 yes, 0 no, -1 after logging a wrong answer or an exception. */
static int in_groups(auth_call_t *c, PyObject *res,
                     const apr_array_header_t *want)
{
    PyObject *it, *item;
    int found = 0, i;

    if (PyUnicode_Check(res) || PyBytes_Check(res)
        || (it = PyObject_GetIter(res)) == NULL) {
        PyErr_Clear();
        wrong_answer(c, res, "an iterable of group names (str)");
        return -1;
    }
    while (!found && (item = PyIter_Next(it)) != NULL) {
        const char *name =
            PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
        if (name == NULL) {
            PyErr_Clear();
            wrong_answer(c, item, "str (a group name) in its iterable");
            Py_DECREF(item);
            Py_DECREF(it);
            return -1;
        }
        for (i = 0; i < want->nelts && !found; i++) {
            found = strcmp(name, APR_ARRAY_IDX(want, i, const char *)) == 0;
        }
        Py_DECREF(item);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        pw_log_exception(c->r, c->r->server,
                         "PW0600: %s: PyWSGIAuthScript '%s': %s() for user "
                         "'%s' raised while iterating, access denied:",
                         c->r->uri, c->script->target, c->func, c->log_user);
        return -1;
    }
    return found;
}

/* Require pywsgi-group NAME...: the user must be in one of the groups. */
static authz_status check_group(request_rec *r, const char *require_line,
                                const void *parsed)
{
    auth_call_t c;
    PyObject *res;
    authz_status st = AUTHZ_GENERAL_ERROR;
    int found;

    if (r->user == NULL) {
        return AUTHZ_DENIED_NO_USER; /* authenticate first */
    }
    if (call_begin(&c, r, "groups_for_user", r->user, 2) < 0) {
        return AUTHZ_GENERAL_ERROR;
    }
    res = call_run(&c, NULL, 1);
    if (res) {
        found = in_groups(&c, res, parsed);
        st = found < 0 ? AUTHZ_GENERAL_ERROR
             : found   ? AUTHZ_GRANTED
                       : AUTHZ_DENIED;
    }
    Py_XDECREF(res);
    if (call_end(&c)) {
        st = AUTHZ_GENERAL_ERROR;
    }
    return st;
}

/* Configuration time: the group names, once. */
static const char *parse_group_line(cmd_parms *cmd, const char *line,
                                    const void **parsed)
{
    apr_array_header_t *want = apr_array_make(cmd->pool, 2, sizeof(char *));
    const char *w;

    while (*line && *(w = ap_getword_conf(cmd->pool, &line))) {
        APR_ARRAY_PUSH(want, const char *) = w;
    }
    if (want->nelts == 0) {
        return "Require pywsgi-group needs one or more group names, e.g. "
               "'Require pywsgi-group admins'";
    }
    *parsed = want;
    return NULL;
}

static const authz_provider authz = { &check_group, &parse_group_line };

void pw_auth_register_hooks(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHN_PROVIDER_GROUP, "pywsgi",
                              AUTHN_PROVIDER_VERSION, &authn,
                              AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "pywsgi-group",
                              AUTHZ_PROVIDER_VERSION, &authz,
                              AP_AUTH_INTERNAL_PER_CONF);
}
