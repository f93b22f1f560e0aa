/*
 * pw_handler.c: one request, from URL to outcome.
 *
 * Here: translate_name (is this URL a PyWSGIScriptAlias'ed app? split
 * SCRIPT_NAME / PATH_INFO), map_to_storage (module targets have no file),
 * and the content handler, the only place that maps an outcome to an HTTP
 * status.  Locking: the handler takes the GIL through pw_interp once per
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

APLOG_USE_MODULE(pywsgi);

static int pw_translate_name(request_rec *r);
static int pw_map_to_storage(request_rec *r);
static int pw_handler(request_rec *r);
static int run_app(request_rec *r, pw_route_t *route,
                   const pw_request_conf_t *rc, pw_metrics_sample_t *m);

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
    pw_route_t *route;
    pw_request_conf_t conf;
    PyThreadState *tstate;
    pw_metrics_sample_t m = { 0 };
    apr_time_t start;
    int rc;

    if (r->handler == NULL || strcmp(r->handler, PW_HANDLER) != 0) {
        return DECLINED;
    }
    route = ap_get_module_config(r->request_config, &pywsgi_module);
    if (route == NULL) {
        /* SetHandler pywsgi-script on its own: never fall back to serving
         * the file, which could be an app's source. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "PW0304: %s: handler %s "
                      "without a PyWSGIScriptAlias for this URL",
                      r->uri, PW_HANDLER);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* Checks Content-Length against LimitRequestBody (413 before the app
     * runs) and prepares de-chunking. */
    rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rc != OK) {
        return rc;
    }
    start = apr_time_now();
    pw_config_request(r, route, &conf);
    m.target = route->target;
    m.interp_name = pw_config_interp_name(conf.interp);
    m.slow_request = conf.slow_request;
    pw_metrics_request_begin(m.target);
    tstate = pw_interp_acquire(conf.interp, &m.gil_wait);
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
        pw_log_set_request(r);
        pw_guard_begin(r, conf.interp, conf.request_timeout);
        rc = run_app(r, route, &conf, &m);
        if (pw_guard_end()) {
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
        pw_metrics_python_sample();
        pw_log_set_request(NULL);
        pw_interp_release(tstate);
        pw_guard_after(r);
    }
    m.duration = apr_time_now() - start;
    m.status = (rc == OK || rc == AP_FILTER_ERROR) ? r->status : rc;
    pw_metrics_request_end(r, &m);
    return rc;
}

/* GIL held.  Returns what the handler returns; fills in m. */
static int run_app(request_rec *r, pw_route_t *route,
                   const pw_request_conf_t *rc, pw_metrics_sample_t *m)
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
    input = pw_input_new(r);
    start = input ? pw_response_new(r, target, input) : NULL;
    if (start && route->asgi) {
        status = pw_asgi_run(r, route, rc, app, input, start);
        goto done;
    }
    environ = start ? pw_environ_build(r, route, rc, input) : NULL;
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
