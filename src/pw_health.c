/*
 * pw_health.c: the pywsgi-health handler, for load balancers.
 *
 * Here: the handler (200 "ok" while this node serves; 503 "draining" while
 * the PyWSGIHealthDrain file exists; 503 "stopping" once a graceful stop of
 * the whole node has begun).  Not here: the directive (pw_config.c), and
 * anything about apps or metrics; a check is not an app request and is
 * never counted as one.
 *
 * Why a drain file and not only the stop signal: httpd 2.4 closes a node's
 * listening sockets the moment `apachectl graceful-stop` (SIGWINCH) reaches
 * the parent, before any child learns of it.  A balancer's health check
 * opens a new connection each time, so from then on it sees "connection
 * refused", never a 503: the node vanishes at once instead of draining.
 * Draining has to begin before the signal, and only the operator knows when
 * that is: touch the file, wait until the balancer has marked the node
 * down (its fall count times its check interval) and its requests are done,
 * then stop it.  docs/scaling.md has the procedure.  The stop state still
 * answers 503 to a check a child was already reading when the stop began
 * (every MPM closes kept-alive connections once stopping), so no check
 * hears "ok" from a node that is going away.
 *
 * Locking: none.  One stat() and two MPM queries per check; never the GIL
 * or Python, so checks answer while every Python thread is busy or stuck
 * (a balancer must not drop a node because its apps are slow: that is
 * what its own timeouts are for).
 */
#include "pw_health.h"
#include "pw_config.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "scoreboard.h"
#include "apr_file_info.h"

APLOG_USE_MODULE(pywsgi);

static int health_handler(request_rec *r);
static int node_stopping(void);
static int draining(request_rec *r);

void pw_health_register_hooks(apr_pool_t *p)
{
    ap_hook_handler(health_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

static int health_handler(request_rec *r)
{
    const char *body = "ok\n";

    if (r->handler == NULL || strcmp(r->handler, PW_HEALTH_HANDLER) != 0) {
        return DECLINED;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (node_stopping()) {
        r->status = HTTP_SERVICE_UNAVAILABLE;
        body = "stopping\n";
        /* This connection ends with the child; say so. */
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    else if (draining(r)) {
        r->status = HTTP_SERVICE_UNAVAILABLE;
        body = "draining\n";
    }
    /* A cached "ok" would hide a drain. */
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_set_content_length(r, (apr_off_t)strlen(body));
    if (!r->header_only) {
        ap_rputs(body, r);
    }
    return OK;
}

/*
 * Is this node on its way out?  The MPM marks a child STOPPING when it is
 * told to finish (prefork: SIGUSR1 or the pipe of death; worker/event:
 * signal_threads).  That also happens to the old children of a graceful
 * restart, while the node goes on serving with a new generation: the
 * parent advances the scoreboard's running generation before it tells the
 * old children, so a child that is stopping while its own generation is
 * still the running one is seeing a graceful stop (or is retiring alone:
 * MaxConnectionsPerChild, spare trimming, PyWSGIMaxRequests -- but such a
 * child has closed its listeners and only answers connections it already
 * held, which balancers' checks, a new connection each, are not).
 */
static int node_stopping(void)
{
    int state = AP_MPMQ_RUNNING;
    int mine = 0;
    global_score *g;

    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &state) != APR_SUCCESS
        || state != AP_MPMQ_STOPPING) {
        return 0;
    }
    g = ap_get_scoreboard_global();
    if (g == NULL || ap_mpm_query(AP_MPMQ_GENERATION, &mine) != APR_SUCCESS) {
        return 1;
    }
    return g->running_generation == mine;
}

static int draining(request_rec *r)
{
    const char *file = pw_config_health_drain(r->server);
    apr_finfo_t fi;

    return file != NULL
           && apr_stat(&fi, file, APR_FINFO_TYPE, r->pool) == APR_SUCCESS;
}
