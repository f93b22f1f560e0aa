/*
 * pw_handler.c: one request, from URL to outcome.
 *
 * Here: translate_name (is this URL a PyWSGIScriptAlias'ed app? split
 * SCRIPT_NAME / PATH_INFO), map_to_storage (module targets have no file),
 * and the content handler, the only place that maps an outcome to an HTTP
 * status.  The handler also serves files by handler ("AddHandler
 * pywsgi-script .wsgi" where Options ExecCGI is on, checked as mod_cgi
 * checks a CGI script): each file is an app of its own (file_route).
 * Also the request path's state per interpreter, made and ended here for
 * its parts (input, response, environ, the ASGI bridge), so the lifecycle
 * (pw_python.c) calls one function of the request path, not each part.
 * Locking: the handler takes the GIL through pw_interp once per
 * request and gives it back before returning; what it calls releases it
 * around blocking Apache calls.
 */
#include "pw_handler.h"
#include "pw_app.h"
#include "pw_asgi.h"
#include "pw_config.h"
#include "pw_environ.h"
#include "pw_guard.h"
#include "pw_input.h"
#include "pw_interp.h"
#include "pw_log.h"
#include "pw_metrics.h"
#include "pw_response.h"
#include "http_core.h"

APLOG_USE_MODULE(pywsgi);

static int pw_translate_name(request_rec *r);
static int pw_map_to_storage(request_rec *r);
static int pw_handler(request_rec *r);
static int run_app(request_rec *r, pw_route_t *route,
                   const pw_request_conf_t *rc, pw_spool_t *spool,
                   pw_metrics_sample_t *m);
static int file_route(request_rec *r, pw_route_t *route);

void pw_handler_register_hooks(apr_pool_t *p)
{
    /* After mod_alias: "Alias /static ..." beside "PyWSGIScriptAlias /"
     * keeps serving its files, as with mod_wsgi. */
    static const char *const after_alias[] = { "mod_alias.c", NULL };

    ap_hook_translate_name(pw_translate_name, after_alias, NULL,
                           APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(pw_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(pw_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

int pw_handler_interp_init(int interp, PyObject *errors)
{
    /* environ's template holds what response makes: wsgi.file_wrapper. */
    if (pw_input_interp_init(interp) < 0 || pw_response_interp_init(interp) < 0
        || pw_environ_interp_init(interp, errors,
                                  pw_response_file_wrapper(interp))
               < 0) {
        return -1;
    }
    return 0;
}

void pw_handler_interp_fini(int interp, server_rec *s)
{
    if (pw_asgi_active(interp)) {
        pw_asgi_fini(interp, s);
    }
}

static int pw_translate_name(request_rec *r)
{
    pw_route_t *route;

    if (r->uri[0] != '/') {
        return DECLINED; /* "OPTIONS *" and proxy requests */
    }
    route = pw_config_route(r->server, r->uri);
    if (route == NULL) {
        return DECLINED;
    }
    ap_set_module_config(r->request_config, &pywsgi_module, route);
    r->handler = PW_HANDLER;
    if (route->target->kind == PW_TARGET_SCRIPT) {
        /* The script is the file: <Directory> and <Files> apply to it. */
        r->filename = apr_pstrdup(r->pool, route->target->path);
        r->path_info = apr_pstrdup(r->pool, r->uri + route->url_len);
    }
    else {
        r->filename =
            apr_pstrcat(r->pool, "pywsgi:", route->target->target, NULL);
    }
    return OK;
}

/* A module target maps to no file: skip the directory walk, as mod_proxy
 * does; <Location> is where its access control goes. */
static int pw_map_to_storage(request_rec *r)
{
    pw_route_t *route = ap_get_module_config(r->request_config, &pywsgi_module);

    if (route && route->target->kind == PW_TARGET_MODULE) {
        return OK;
    }
    return DECLINED;
}

static int pw_handler(request_rec *r)
{
    pw_route_t *route, file;
    pw_request_conf_t conf;
    pw_spool_t *spool = NULL;
    PyThreadState *tstate;
    pw_metrics_sample_t m = { 0 };
    pw_guard_saved_t guard;
    request_rec *outer;
    apr_time_t start;
    int rc;

    if (r->handler == NULL || strcmp(r->handler, PW_HANDLER) != 0) {
        return DECLINED;
    }
    route = ap_get_module_config(r->request_config, &pywsgi_module);
    if (route == NULL) {
        /* The handler without a PyWSGIScriptAlias: r->filename is the app
         * (never its source to serve). */
        rc = file_route(r, &file);
        if (rc != OK) {
            return rc;
        }
        route = &file;
    }
    if (r->prev != NULL && ap_is_HTTP_ERROR(r->prev->status)) {
        /* An ErrorDocument: the body belongs to the request that failed
         * (for a 413, the body refused), not to the error page.  The
         * redirect shares the failed request's headers_in, and Apache's
         * own discarding of the body reads by those: the page gets a copy
         * without the body's headers, so wsgi.input and the ASGI body are
         * empty and CONTENT_LENGTH absent. */
        r->headers_in = apr_table_copy(r->pool, r->headers_in);
        apr_table_unset(r->headers_in, "Content-Length");
        apr_table_unset(r->headers_in, "Transfer-Encoding");
    }
    /* Checks Content-Length against LimitRequestBody (413 before the app
     * runs) and prepares de-chunking. */
    rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rc != OK) {
        return rc;
    }
    start = apr_time_now();
    if (route == &file) {
        pw_config_file_request(r, route, &conf);
    }
    else {
        pw_config_request(r, route, &conf);
    }
    if (r->read_chunked && !conf.chunked_stream) {
        /* Issue 11: read a chunked body to its end first, without the GIL,
         * so the app gets a CONTENT_LENGTH and LimitRequestBody answers
         * 413 before the app runs. */
        rc = pw_input_spool(r, conf.body_buffer, conf.body_tmpdir, &spool);
        if (rc != OK) {
            return rc;
        }
    }
    m.target = route->target;
    m.host = route == &file ? r->server : NULL;
    m.slow_request = conf.slow_request;
    m.queue_wait = pw_metrics_queue_wait(r, start);
    /* Counted from here on, whatever the outcome: a 500 for want of an
     * interpreter is one of the app's requests too. */
    pw_metrics_request_begin(m.target, m.host);
    if (conf.interp == PW_INTERP_NONE) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0708: %s: virtual host %s has no interpreter of its "
                      "own for %s (more hosts than interpreters, see PW0704 "
                      "at start); give it one with 'PyWSGIInterpreter NAME' "
                      "in its <VirtualHost>",
                      r->uri, r->server->server_hostname, r->filename);
        m.interp_name = "-";
        rc = HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }
    if (conf.interp == PW_INTERP_FILE) {
        conf.interp = pw_app_file_interp(route->target, &m.interp_name);
        if (conf.interp < 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "PW0707: %s: no interpreter left in this child for "
                          "%s (PyWSGIInterpreter %%{RESOURCE}: at most %d "
                          "with the declared ones); give such files a "
                          "shared interpreter (%%{SERVER} or NAME)",
                          r->uri, r->filename, PW_MAX_INTERPS - 1);
            rc = HTTP_INTERNAL_SERVER_ERROR;
            goto done;
        }
    }
    else {
        m.interp_name = pw_config_interp_name(conf.interp);
    }
    tstate = pw_interp_acquire(conf.interp, &m.gil_wait);
    if (tstate == NULL && pw_config_interp_lazy(conf.interp)) {
        /* A virtual host's interpreter, made when first needed. */
        tstate = pw_interp_acquire_new(conf.interp, &m.gil_wait);
    }
    if (tstate == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0104: %s: interpreter "
                      "'%s' is not available in this child (see PW0101 or "
                      "PW0105 at its start)",
                      r->uri, m.interp_name);
        rc = HTTP_INTERNAL_SERVER_ERROR;
        m.app_failed = 1;
    }
    else {
        /* This request may run inside another one on this thread (an
         * ErrorDocument from inside its body reading, an #include virtual
         * from inside its output): whatever the thread served before is
         * restored when this one is done. */
        outer = pw_log_set_request(r);
        /* A websocket lives as long as its client wants:
         * PyWSGIRequestTimeout is for requests, not for it. */
        pw_guard_begin(r, conf.interp,
                       route->asgi && pw_asgi_websocket(r)
                           ? 0
                           : conf.request_timeout,
                       &guard);
        rc = run_app(r, route, &conf, spool, &m);
        if (pw_guard_end(&guard)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "PW0401: %s: "
                          "application '%s' stopped after %" APR_TIME_T_FMT
                          " s (PyWSGIRequestTimeout); the traceback above "
                          "shows where it was",
                          r->uri, route->target->target,
                          apr_time_sec(conf.request_timeout));
            if (rc == HTTP_INTERNAL_SERVER_ERROR) {
                rc = HTTP_GATEWAY_TIME_OUT;
            }
        }
        pw_metrics_python_sample(conf.interp);
        if (route == &file) {
            /* pw_environ_build() kept SCRIPT_NAME in it. */
            Py_CLEAR(file.script_name[conf.interp]);
        }
        pw_log_set_request(outer);
        pw_interp_release(tstate);
        pw_guard_after(r);
    }
done:
    m.duration = apr_time_now() - start;
    m.status = (rc == OK || rc == AP_FILTER_ERROR) ? r->status : rc;
    pw_metrics_request_end(r, &m);
    return rc;
}

/*
 * A file served by handler, checked as mod_cgi checks a script: ExecCGI off
 * is 403, a missing file 404, a directory (or no regular file) 403, path
 * info where AcceptPathInfo Off says no 404.  Then a route of its own for
 * this request: SCRIPT_NAME the file's URL, PATH_INFO what follows it (the
 * directory walk put it in r->path_info).  No GIL.
 */
static int file_route(request_rec *r, pw_route_t *route)
{
    apr_size_t len = strlen(r->uri);
    apr_size_t plen = r->path_info ? strlen(r->path_info) : 0;
    apr_file_t *fd;
    apr_status_t st;

    if (!(ap_allow_options(r) & OPT_EXECCGI)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0700: %s: Options ExecCGI is off for %s: handler "
                      "%s runs a file as an app only where ExecCGI is on, "
                      "as for CGI ('Options +ExecCGI' in its <Directory> "
                      "or .htaccess)",
                      r->uri, r->filename, PW_HANDLER);
        return HTTP_FORBIDDEN;
    }
    if (r->finfo.filetype == APR_NOFILE) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "PW0701: %s: file does not exist: %s", r->uri,
                      r->filename);
        return HTTP_NOT_FOUND;
    }
    if (r->finfo.filetype != APR_REG) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0702: %s: %s is %s, not a file handler %s can "
                      "run",
                      r->uri, r->filename,
                      r->finfo.filetype == APR_DIR ? "a directory"
                                                   : "no regular file",
                      PW_HANDLER);
        return HTTP_FORBIDDEN;
    }
    if (r->used_path_info == AP_REQ_REJECT_PATH_INFO && plen > 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "PW0701: %s: AcceptPathInfo Off refuses the path "
                      "'%s' after %s",
                      r->uri, r->path_info, r->filename);
        return HTTP_NOT_FOUND;
    }
    /* As the core does for a file it cannot read: 403, not an import
     * error. */
    st = apr_file_open(&fd, r->filename, APR_READ, APR_OS_DEFAULT, r->pool);
    if (st != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, st, r,
                      "PW0702: %s: %s cannot be read by the server: "
                      "permissions deny it",
                      r->uri, r->filename);
        return HTTP_FORBIDDEN;
    }
    apr_file_close(fd);

    memset(route, 0, sizeof(*route));
    if (plen > len || strcmp(r->uri + len - plen, r->path_info) != 0) {
        plen = 0; /* not a tail of the URL: all of it is the script's */
    }
    route->url = r->uri;
    route->url_len = len - plen;
    route->target = pw_app_file_target(r->filename);
    route->interp = -1;
    return OK;
}

/* GIL held.  Returns what the handler returns; fills in m. */
static int run_app(request_rec *r, pw_route_t *route,
                   const pw_request_conf_t *rc, pw_spool_t *spool,
                   pw_metrics_sample_t *m)
{
    const char *target = route->target->target;
    PyObject *app, *input = NULL, *start = NULL, *environ = NULL;
    PyObject *result = NULL;
    int status, body_status;

    app = pw_app_callable(route->target, rc->interp, rc->reload, r, r->server);
    if (app == NULL) {
        m->app_failed = 1;
        return HTTP_INTERNAL_SERVER_ERROR; /* logged (PW0201) */
    }
    input = pw_input_new(r, spool, rc->interp);
    start = input ? pw_response_new(r, target, input, rc->interp) : NULL;
    if (start && route->asgi) {
        status = pw_asgi_run(r, route, rc, app, input, start);
        goto done;
    }
    environ = start ? pw_environ_build(r, route, rc, input,
                                       pw_input_spooled_length(input))
                    : NULL;
    if (environ == NULL) {
        pw_log_exception(r, r->server,
                         "PW0300: %s: could not build the "
                         "environ for application '%s':",
                         r->uri, target);
        status = HTTP_INTERNAL_SERVER_ERROR;
        m->app_failed = 1;
        goto done;
    }

    {
        PyObject *args[2] = { environ, start };
        result = PyObject_Vectorcall(app, args, 2, NULL);
    }
    if (result == NULL) {
        status = pw_response_failed(start); /* logs the exception */
    }
    else {
        status = pw_response_send(start, result);
    }

done:
    /* A body Apache refused to deliver (too large, malformed, cut off) is
     * the client's error, whatever the app made of it. */
    body_status = input ? pw_input_finish(input, &m->bytes_in) : 0;
    if (start && pw_response_finish(start, &m->bytes_out)) {
        m->app_failed = 1;
    }
    if (status == HTTP_INTERNAL_SERVER_ERROR && body_status) {
        status = body_status;
        m->app_failed = 0;
    }
    Py_XDECREF(result);
    Py_XDECREF(environ);
    Py_XDECREF(start);
    Py_XDECREF(input);
    Py_DECREF(app);
    return status;
}
