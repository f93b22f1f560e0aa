/*
 * pw_status.c: the module's own pages, which serve no app: the figures of
 * pw_metrics.c for people and for machines, and the node's health for load
 * balancers.
 *
 * Here: the pywsgi-status handler (an HTML page that refreshes itself,
 * ?format=json, ?format=prometheus in the text exposition format 0.0.4) and
 * the mod_pywsgi section of mod_status's page (its optional status_hook;
 * ?auto gets the short form), the workers counted from Apache's scoreboard
 * and the sizing advice.  Where the page may answer is PyWSGIStatus's
 * (pw_config.c): Off refuses it (a tenant's .htaccess can say SetHandler,
 * never PyWSGIStatus), Host limits it to the virtual host's own apps.
 * The pywsgi-health handler (200 "ok", 503 "draining" or "stopping"; its
 * own section below says why a drain file).  Not here: collecting the
 * figures; neither page is an app request, and neither is counted as one.
 *
 * Locking: none.  Pure C over a lock-free snapshot of the shared memory;
 * never the GIL or Python, so the page answers while every Python thread
 * is busy or stuck.  The page's own requests never reach pw_handler.c and
 * so are not counted as app requests.
 */
#include "pw_status.h"
#include "pw_config.h"
#include "pw_metrics.h"
#include "ap_mpm.h"
#include "mod_status.h"
#include "scoreboard.h"
#include "http_core.h"
#include "apr_file_info.h"

APLOG_USE_MODULE(pywsgi);

static int status_handler(request_rec *r);
static int health_handler(request_rec *r);
static int node_stopping(void);
static int draining(request_rec *r);
static int status_hook(request_rec *r, int flags);
static const char *query_format(request_rec *r);
static void render_html(request_rec *r, const pw_metrics_snapshot_t *snap);
static void render_json(request_rec *r, const pw_metrics_snapshot_t *snap);
static void render_prometheus(request_rec *r,
                              const pw_metrics_snapshot_t *snap);
static const char *json_str(apr_pool_t *p, const char *s);
static void json_saturation(request_rec *r, const pw_metrics_snapshot_t *snap);
static void scoreboard_count(pw_metrics_snapshot_t *snap);
static void render_saturation(request_rec *r,
                              const pw_metrics_snapshot_t *snap);
static const char *prom_label(apr_pool_t *p, const char *s);
static const char *human_secs(apr_pool_t *p, double s);
static const char *human_bytes(apr_pool_t *p, apr_uint64_t n);
static const char *human_age(apr_pool_t *p, apr_interval_time_t t);
static apr_uint64_t total_requests(const pw_metrics_app_t *a);
static const char **le_labels(apr_pool_t *p);

static const char *const class_names[PW_METRICS_CLASSES] = { "1xx", "2xx",
                                                             "3xx", "4xx",
                                                             "5xx" };

/* The percentiles the HTML page, JSON and mod_status show. */
static const double quantiles[] = { 0.5, 0.9, 0.99 };
static const char *const quantile_names[] = { "p50", "p90", "p99" };
#define NQUANTILES 3

#define SECS(us) ((double)(us) / APR_USEC_PER_SEC)

void pw_status_register_hooks(apr_pool_t *p)
{
    ap_hook_handler(status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(health_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* Optional: does nothing unless mod_status is loaded. */
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

static int status_handler(request_rec *r)
{
    const char *format;
    pw_metrics_snapshot_t *snap;
    pw_status_mode_t mode;

    if (r->handler == NULL || strcmp(r->handler, PW_STATUS_HANDLER) != 0) {
        return DECLINED;
    }
    /* SetHandler can come from a tenant's .htaccess; PyWSGIStatus cannot
     * (no override class), so it is the administrator's word. */
    mode = pw_config_status(r);
    if (mode == PW_STATUS_OFF) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "PW0505: %s: handler %s refused: PyWSGIStatus is not "
                      "On or Host for this URL in the server configuration "
                      "(it cannot be set in .htaccess)",
                      r->uri, PW_STATUS_HANDLER);
        return HTTP_NOT_FOUND;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    snap = pw_metrics_snapshot(r->pool);
    if (snap == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "PW0504: %s: %s "
                      "requested but PyWSGIMetrics is Off",
                      r->uri, PW_STATUS_HANDLER);
        r->status = HTTP_NOT_FOUND;
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rputs("mod_pywsgi: metrics are off (PyWSGIMetrics Off)\n", r);
        return OK;
    }
    scoreboard_count(snap);
    if (mode == PW_STATUS_HOST) {
        pw_metrics_snapshot_limit(snap, r->server, r->pool);
    }
    format = query_format(r);
    if (strcmp(format, "json") == 0) {
        ap_set_content_type(r, "application/json");
        if (!r->header_only) {
            render_json(r, snap);
        }
    }
    else if (strcmp(format, "prometheus") == 0) {
        /* The text exposition format's own content type. */
        ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
        if (!r->header_only) {
            render_prometheus(r, snap);
        }
    }
    else if (strcmp(format, "html") == 0) {
        ap_set_content_type(r, "text/html; charset=utf-8");
        if (!r->header_only) {
            render_html(r, snap);
        }
    }
    else {
        r->status = HTTP_BAD_REQUEST;
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rputs("mod_pywsgi: format must be html, json or prometheus\n", r);
    }
    return OK;
}

/* Busy and idle workers from Apache's scoreboard, counted as mod_status
 * counts them, in total and for each listed child; and every app's queue
 * waits summed. */
static void scoreboard_count(pw_metrics_snapshot_t *snap)
{
    int server_limit = 0, thread_limit = 0, i, j, c, b;

    for (i = 0; i < snap->napps; i++) {
        for (b = 0; b < PW_METRICS_BUCKETS; b++) {
            snap->queue[b] += snap->apps[i].queue[b];
        }
        snap->queue_us += snap->apps[i].queue_us;
    }
    if (ap_scoreboard_image == NULL
        || ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &server_limit)
        || ap_mpm_query(AP_MPMQ_HARD_LIMIT_THREADS, &thread_limit)) {
        return;
    }
    for (i = 0; i < server_limit; i++) {
        process_score *ps = ap_get_scoreboard_process(i);
        int busy = 0, idle = 0;

        if (ps->pid == 0) {
            continue;
        }
        for (j = 0; j < thread_limit; j++) {
            int st = ap_get_scoreboard_worker_from_indexes(i, j)->status;

            if (st == SERVER_READY) {
                idle++;
            }
            else if (st != SERVER_DEAD && st != SERVER_STARTING
                     && st != SERVER_IDLE_KILL) {
                busy++;
            }
        }
        snap->sb_busy += busy;
        snap->sb_idle += idle;
        for (c = 0; c < snap->nchildren; c++) {
            if (snap->children[c].pid == ps->pid) {
                snap->children[c].busy_workers = busy;
                snap->children[c].idle_workers = idle;
            }
        }
    }
}

/* ?format=NAME anywhere in the query string; html when absent. */
static const char *query_format(request_rec *r)
{
    const char *a = r->args;

    while (a && *a) {
        const char *end = strchr(a, '&');
        apr_size_t len = end ? (apr_size_t)(end - a) : strlen(a);

        if (len >= 7 && strncmp(a, "format=", 7) == 0) {
            return apr_pstrmemdup(r->pool, a + 7, len - 7);
        }
        a = end ? end + 1 : NULL;
    }
    return "html";
}

static apr_uint64_t total_requests(const pw_metrics_app_t *a)
{
    apr_uint64_t n = 0;
    int c;

    for (c = 0; c < PW_METRICS_CLASSES; c++) {
        n += a->requests[c];
    }
    return n;
}

/* The finite bucket bounds as text, "0.0005" to "30". */
static const char **le_labels(apr_pool_t *p)
{
    const char **le = apr_palloc(p, (PW_METRICS_BUCKETS - 1) * sizeof(*le));
    int b;

    for (b = 0; b < PW_METRICS_BUCKETS - 1; b++) {
        le[b] = pw_metrics_fmt_seconds(p, pw_metrics_bucket_le[b]);
    }
    return le;
}

/* --- JSON ------------------------------------------------------------- */

/* A JSON string literal (RFC 8259): quote, backslash and control
 * characters escaped; other bytes as they are (the config is UTF-8). */
static const char *json_str(apr_pool_t *p, const char *s)
{
    apr_size_t len = strlen(s);
    char *out = apr_palloc(p, len * 6 + 3), *o = out;

    *o++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = c;
        }
        else if (c < 0x20 || c == 0x7f) {
            o += apr_snprintf(o, 7, "\\u%04x", c);
        }
        else {
            *o++ = c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static void json_quantile(request_rec *r, const char *name, double v)
{
    if (v < 0) {
        ap_rprintf(r, ", \"%s\": null", name);
    }
    else {
        ap_rprintf(r, ", \"%s\": %.6f", name, v);
    }
}

static void json_queue(request_rec *r, const apr_uint64_t *queue,
                       apr_uint64_t queue_us)
{
    apr_uint64_t n = 0;
    int b, q;

    for (b = 0; b < PW_METRICS_BUCKETS; b++) {
        n += queue[b];
    }
    ap_rprintf(r,
               "\"queue_wait\": {\"sum\": %.6f, \"count\": "
               "%" APR_UINT64_T_FMT,
               SECS(queue_us), n);
    for (q = 0; q < NQUANTILES; q++) {
        json_quantile(r, quantile_names[q],
                      pw_metrics_quantile_of(queue, quantiles[q]));
    }
    ap_rputs("}", r);
}

static void json_saturation(request_rec *r, const pw_metrics_snapshot_t *snap)
{
    ap_rprintf(r,
               " \"workers\": {\"max\": %d, \"busy\": %d, \"idle\": %d, "
               "\"in_apps\": %" APR_INT64_T_FMT "}, "
               "\"saturated_seconds\": %.6f, "
               "\"saturated_share_last_minute\": %.4f,\n ",
               snap->max_workers, snap->sb_busy, snap->sb_idle, snap->busy,
               SECS(snap->saturated_us), snap->saturated_share);
    json_queue(r, snap->queue, snap->queue_us);
    ap_rputs(",\n", r);
}

static void render_json(request_rec *r, const pw_metrics_snapshot_t *snap)
{
    const char **le = le_labels(r->pool);
    int i, b, c, q;

    if (snap->host) {
        /* A tenant's view: the host's apps, nothing of the server's. */
        ap_rprintf(r,
                   "{\"version\": \"%s\", \"host\": %s, \"started\": %.6f, "
                   "\"now\": %.6f, \"in_flight\": %" APR_INT64_T_FMT ",\n",
                   PW_VERSION, json_str(r->pool, snap->host),
                   SECS(snap->started), SECS(snap->now), snap->in_flight);
    }
    else {
        ap_rprintf(r,
                   "{\"version\": \"%s\", \"mpm\": %s, \"started\": %.6f, "
                   "\"now\": %.6f, \"in_flight\": %" APR_INT64_T_FMT ", "
                   "\"child_starts\": %" APR_UINT64_T_FMT
                   ", \"child_exits\": %" APR_UINT64_T_FMT
                   ", \"gil_wait_seconds\": %.6f,\n",
                   PW_VERSION, json_str(r->pool, ap_show_mpm()),
                   SECS(snap->started), SECS(snap->now), snap->in_flight,
                   snap->child_starts, snap->child_exits,
                   SECS(snap->gil_wait_us));
        json_saturation(r, snap);
    }

    ap_rputs(" \"apps\": [", r);
    for (i = 0; i < snap->napps; i++) {
        const pw_metrics_app_t *a = &snap->apps[i];
        apr_uint64_t cum = 0;

        ap_rprintf(r,
                   "%s\n  {\"app\": %s, \"requests\": %" APR_UINT64_T_FMT
                   ", \"status\": {",
                   i ? "," : "", json_str(r->pool, a->app), total_requests(a));
        for (c = 0; c < PW_METRICS_CLASSES; c++) {
            ap_rprintf(r, "%s\"%s\": %" APR_UINT64_T_FMT, c ? ", " : "",
                       class_names[c], a->requests[c]);
        }
        ap_rprintf(
            r,
            "}, \"exceptions\": %" APR_UINT64_T_FMT ", "
            "\"in_flight\": %" APR_INT64_T_FMT
            ", \"bytes_in\": %" APR_UINT64_T_FMT
            ", \"bytes_out\": %" APR_UINT64_T_FMT
            ",\n   \"duration\": {\"sum\": %.6f, \"count\": %" APR_UINT64_T_FMT,
            a->exceptions, a->in_flight, a->bytes_in, a->bytes_out,
            SECS(a->duration_us), a->count);
        for (q = 0; q < NQUANTILES; q++) {
            json_quantile(r, quantile_names[q],
                          pw_metrics_quantile(a, quantiles[q]));
        }
        ap_rputs(", \"buckets\": [", r);
        for (b = 0; b < PW_METRICS_BUCKETS; b++) {
            cum += a->buckets[b];
            if (b < PW_METRICS_BUCKETS - 1) {
                ap_rprintf(r,
                           "{\"le\": %s, \"count\": %" APR_UINT64_T_FMT "}, ",
                           le[b], cum);
            }
            else {
                ap_rprintf(
                    r, "{\"le\": \"+Inf\", \"count\": %" APR_UINT64_T_FMT "}",
                    cum);
            }
        }
        ap_rputs("]}, ", r);
        json_queue(r, a->queue, a->queue_us);
        ap_rputs("}", r);
    }

    ap_rputs("],\n \"children\": [", r);
    for (i = 0; i < snap->nchildren; i++) {
        const pw_metrics_child_t *ch = &snap->children[i];

        ap_rprintf(
            r,
            "%s\n  {\"pid\": %" APR_PID_T_FMT ", \"slot\": %d, "
            "\"started\": %.6f, \"requests\": %" APR_UINT64_T_FMT
            ", \"rss_bytes\": %" APR_UINT64_T_FMT ", "
            "\"gc_collections\": %" APR_UINT64_T_FMT ", "
            "\"gil_wait_seconds\": %.6f, \"in_flight\": %" APR_INT64_T_FMT
            ", \"busy_workers\": %d, \"idle_workers\": %d}",
            i ? "," : "", ch->pid, ch->slot, SECS(ch->started), ch->requests,
            ch->rss, ch->gc_collections, SECS(ch->gil_wait_us), ch->in_flight,
            ch->busy_workers, ch->idle_workers);
    }
    ap_rputs("]}\n", r);
}

/* --- Prometheus text format 0.0.4 ---------------------------------------- */

/* A label value: backslash, double quote and newline escaped, as the
 * exposition format requires. */
static const char *prom_label(apr_pool_t *p, const char *s)
{
    apr_size_t len = strlen(s);
    char *out = apr_palloc(p, len * 2 + 1), *o = out;

    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            *o++ = '\\';
            *o++ = *s;
        }
        else if (*s == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static void prom_family(request_rec *r, const char *name, const char *type,
                        const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter per app, from an apr_uint64_t field of pw_metrics_app_t. */
static void prom_per_app(request_rec *r, const pw_metrics_snapshot_t *snap,
                         const char *const *labels, const char *name,
                         const char *help, apr_size_t field)
{
    int i;

    prom_family(r, name, "counter", help);
    for (i = 0; i < snap->napps; i++) {
        const char *a = (const char *)&snap->apps[i];
        ap_rprintf(r, "%s{app=\"%s\"} %" APR_UINT64_T_FMT "\n", name, labels[i],
                   *(const apr_uint64_t *)(a + field));
    }
}

/* The per-child series: one line per live child, labelled by pid. */
typedef struct {
    const char *name, *type, *help;
    apr_size_t field; /* of pw_metrics_child_t: apr_uint64_t/apr_time_t */
    int micro;        /* a count of microseconds, printed as seconds */
} child_series_t;

static const child_series_t child_series[] = {
    { "pywsgi_process_resident_memory_bytes", "gauge",
      "Resident memory of each live Apache child.",
      APR_OFFSETOF(pw_metrics_child_t, rss), 0 },
    { "pywsgi_process_requests_total", "counter",
      "Requests each live child has served to applications.",
      APR_OFFSETOF(pw_metrics_child_t, requests), 0 },
    { "pywsgi_process_gc_collections_total", "counter",
      "Python garbage collections in each live child (all generations; "
      "sampled at most once a second).",
      APR_OFFSETOF(pw_metrics_child_t, gc_collections), 0 },
    { "pywsgi_process_gil_wait_seconds_total", "counter",
      "Time requests in each live child waited for the GIL.",
      APR_OFFSETOF(pw_metrics_child_t, gil_wait_us), 1 },
    { "pywsgi_process_start_time_seconds", "gauge",
      "When each live child started, in seconds since the epoch.",
      APR_OFFSETOF(pw_metrics_child_t, started), 1 },
};

static void prom_per_child(request_rec *r, const pw_metrics_snapshot_t *snap,
                           const child_series_t *cs)
{
    int i;

    prom_family(r, cs->name, cs->type, cs->help);
    for (i = 0; i < snap->nchildren; i++) {
        const pw_metrics_child_t *ch = &snap->children[i];
        /* apr_time_t and apr_uint64_t: both 64 bits, both >= 0 here. */
        apr_uint64_t v = *(const apr_uint64_t *)((const char *)ch + cs->field);
        if (cs->micro) {
            ap_rprintf(r, "%s{pid=\"%" APR_PID_T_FMT "\"} %.6f\n", cs->name,
                       ch->pid, SECS(v));
        }
        else {
            ap_rprintf(r,
                       "%s{pid=\"%" APR_PID_T_FMT "\"} %" APR_UINT64_T_FMT "\n",
                       cs->name, ch->pid, v);
        }
    }
}

static void render_prometheus(request_rec *r, const pw_metrics_snapshot_t *snap)
{
    const char **labels =
        apr_palloc(r->pool, (snap->napps + 1) * sizeof(*labels));
    const char **le = le_labels(r->pool);
    int i, b, c;

    for (i = 0; i < snap->napps; i++) {
        labels[i] = prom_label(r->pool, snap->apps[i].app);
    }

    prom_family(r, "pywsgi_requests_total", "counter",
                "Requests a WSGI application handled, by final status "
                "class.");
    for (i = 0; i < snap->napps; i++) {
        for (c = 0; c < PW_METRICS_CLASSES; c++) {
            ap_rprintf(r,
                       "pywsgi_requests_total{app=\"%s\",status_class="
                       "\"%s\"} %" APR_UINT64_T_FMT "\n",
                       labels[i], class_names[c], snap->apps[i].requests[c]);
        }
    }

    prom_family(r, "pywsgi_exceptions_total", "counter",
                "Requests whose application failed: raised, returned the "
                "wrong types, or could not be loaded.");
    for (i = 0; i < snap->napps; i++) {
        ap_rprintf(
            r, "pywsgi_exceptions_total{app=\"%s\"} %" APR_UINT64_T_FMT "\n",
            labels[i], snap->apps[i].exceptions);
    }

    prom_family(r, "pywsgi_request_duration_seconds", "histogram",
                "Time mod_pywsgi spent on a request, the wait for the GIL "
                "included.");
    for (i = 0; i < snap->napps; i++) {
        const pw_metrics_app_t *a = &snap->apps[i];
        apr_uint64_t cum = 0;

        for (b = 0; b < PW_METRICS_BUCKETS; b++) {
            cum += a->buckets[b];
            if (b < PW_METRICS_BUCKETS - 1) {
                ap_rprintf(r,
                           "pywsgi_request_duration_seconds_bucket{app="
                           "\"%s\",le=\"%s\"} %" APR_UINT64_T_FMT "\n",
                           labels[i], le[b], cum);
            }
            else {
                ap_rprintf(r,
                           "pywsgi_request_duration_seconds_bucket{app="
                           "\"%s\",le=\"+Inf\"} %" APR_UINT64_T_FMT "\n",
                           labels[i], cum);
            }
        }
        ap_rprintf(r,
                   "pywsgi_request_duration_seconds_sum{app=\"%s\"} %.6f"
                   "\npywsgi_request_duration_seconds_count{app=\"%s\"} "
                   "%" APR_UINT64_T_FMT "\n",
                   labels[i], SECS(a->duration_us), labels[i], a->count);
    }

    prom_family(r, "pywsgi_queue_wait_seconds", "histogram",
                "Time requests waited before their application started: in "
                "the listen backlog or the MPM's queue (from the last bytes "
                "received, TCP_INFO) and in Apache's reading of them.");
    for (i = 0; i < snap->napps; i++) {
        const pw_metrics_app_t *a = &snap->apps[i];
        apr_uint64_t cum = 0;

        for (b = 0; b < PW_METRICS_BUCKETS; b++) {
            cum += a->queue[b];
            ap_rprintf(r,
                       "pywsgi_queue_wait_seconds_bucket{app=\"%s\",le=\"%s\"} "
                       "%" APR_UINT64_T_FMT "\n",
                       labels[i], b < PW_METRICS_BUCKETS - 1 ? le[b] : "+Inf",
                       cum);
        }
        ap_rprintf(r,
                   "pywsgi_queue_wait_seconds_sum{app=\"%s\"} %.6f\n"
                   "pywsgi_queue_wait_seconds_count{app=\"%s\"} "
                   "%" APR_UINT64_T_FMT "\n",
                   labels[i], SECS(a->queue_us), labels[i], cum);
    }

    prom_per_app(r, snap, labels, "pywsgi_request_body_bytes_total",
                 "Request body bytes the application read.",
                 APR_OFFSETOF(pw_metrics_app_t, bytes_in));
    prom_per_app(r, snap, labels, "pywsgi_response_body_bytes_total",
                 "Response body bytes the application produced.",
                 APR_OFFSETOF(pw_metrics_app_t, bytes_out));

    prom_family(r, "pywsgi_requests_in_flight", "gauge",
                "Requests an application is handling now.");
    ap_rprintf(r, "pywsgi_requests_in_flight %" APR_INT64_T_FMT "\n",
               snap->in_flight);

    if (snap->host) {
        /* A tenant's view ends with its apps: children, pids and the
         * server's totals are the administrator's. */
        return;
    }
    for (i = 0; i < (int)(sizeof(child_series) / sizeof(child_series[0]));
         i++) {
        prom_per_child(r, snap, &child_series[i]);
    }

    prom_family(r, "pywsgi_process_workers", "gauge",
                "Workers of each live child by state, from Apache's "
                "scoreboard (busy: serving any request; idle: ready).");
    for (i = 0; i < snap->nchildren; i++) {
        const pw_metrics_child_t *ch = &snap->children[i];
        ap_rprintf(r,
                   "pywsgi_process_workers{pid=\"%" APR_PID_T_FMT
                   "\",state=\"busy\"} %d\n"
                   "pywsgi_process_workers{pid=\"%" APR_PID_T_FMT
                   "\",state=\"idle\"} %d\n",
                   ch->pid, ch->busy_workers, ch->pid, ch->idle_workers);
    }
    prom_family(r, "pywsgi_workers", "gauge",
                "Workers of every child by state, from Apache's scoreboard.");
    ap_rprintf(r,
               "pywsgi_workers{state=\"busy\"} %d\n"
               "pywsgi_workers{state=\"idle\"} %d\n",
               snap->sb_busy, snap->sb_idle);
    prom_family(r, "pywsgi_workers_max", "gauge",
                "MaxRequestWorkers: requests Apache serves at once.");
    ap_rprintf(r, "pywsgi_workers_max %d\n", snap->max_workers);
    prom_family(r, "pywsgi_workers_in_apps", "gauge",
                "Workers running a WSGI application now, every child.");
    ap_rprintf(r, "pywsgi_workers_in_apps %" APR_INT64_T_FMT "\n", snap->busy);
    prom_family(r, "pywsgi_saturated_seconds_total", "counter",
                "Time every one of MaxRequestWorkers was running an "
                "application at once (rate() over 1m: the share of a "
                "minute requests had to queue).");
    ap_rprintf(r, "pywsgi_saturated_seconds_total %.6f\n",
               SECS(snap->saturated_us));

    prom_family(r, "pywsgi_gil_wait_seconds_total", "counter",
                "Time requests waited for the GIL, in every child, exited "
                "ones included.");
    ap_rprintf(r, "pywsgi_gil_wait_seconds_total %.6f\n",
               SECS(snap->gil_wait_us));
    prom_family(r, "pywsgi_children", "gauge", "Live Apache children.");
    ap_rprintf(r, "pywsgi_children %d\n", snap->nchildren);
    prom_family(r, "pywsgi_child_starts_total", "counter",
                "Apache children started.");
    ap_rprintf(r, "pywsgi_child_starts_total %" APR_UINT64_T_FMT "\n",
               snap->child_starts);
    prom_family(r, "pywsgi_child_exits_total", "counter",
                "Apache children that exited (recycled, idle, or died).");
    ap_rprintf(r, "pywsgi_child_exits_total %" APR_UINT64_T_FMT "\n",
               snap->child_exits);
    prom_family(r, "pywsgi_metrics_start_time_seconds", "gauge",
                "When these counters started: Apache's last start or "
                "restart, in seconds since the epoch.");
    ap_rprintf(r, "pywsgi_metrics_start_time_seconds %.6f\n",
               SECS(snap->started));
    prom_family(r, "pywsgi_info", "gauge",
                "mod_pywsgi's version and Apache's MPM.");
    ap_rprintf(r, "pywsgi_info{version=\"%s\",mpm=\"%s\"} 1\n", PW_VERSION,
               prom_label(r->pool, ap_show_mpm()));
}

/* --- HTML -------------------------------------------------------------- */

static const char *human_secs(apr_pool_t *p, double s)
{
    if (s < 0) {
        return "-";
    }
    if (s < 0.001) {
        return apr_psprintf(p, "%.0f \xc2\xb5s", s * 1e6);
    }
    if (s < 1) {
        return apr_psprintf(p, "%.1f ms", s * 1e3);
    }
    return apr_psprintf(p, "%.2f s", s);
}

/* How long ago, to the second: "42 s", "3 min 05 s", "2 h 07 min". */
static const char *human_age(apr_pool_t *p, apr_interval_time_t t)
{
    long s = (long)apr_time_sec(t < 0 ? 0 : t);

    if (s < 60) {
        return apr_psprintf(p, "%ld s", s);
    }
    if (s < 3600) {
        return apr_psprintf(p, "%ld min %02ld s", s / 60, s % 60);
    }
    if (s < 86400) {
        return apr_psprintf(p, "%ld h %02ld min", s / 3600, s / 60 % 60);
    }
    return apr_psprintf(p, "%ld d %02ld h", s / 86400, s / 3600 % 24);
}

static const char *human_bytes(apr_pool_t *p, apr_uint64_t n)
{
    if (n < 1024) {
        return apr_psprintf(p, "%" APR_UINT64_T_FMT " B", n);
    }
    if (n < 1024 * 1024) {
        return apr_psprintf(p, "%.1f KiB", n / 1024.0);
    }
    if (n < (apr_uint64_t)1024 * 1024 * 1024) {
        return apr_psprintf(p, "%.1f MiB", n / (1024.0 * 1024));
    }
    return apr_psprintf(p, "%.2f GiB", n / (1024.0 * 1024 * 1024));
}

static const char *html_time(apr_pool_t *p, apr_time_t t)
{
    char *buf = apr_palloc(p, 32);
    apr_time_exp_t x;
    apr_size_t len;

    apr_time_exp_lt(&x, t);
    apr_strftime(buf, &len, 32, "%Y-%m-%d %H:%M:%S", &x);
    return buf;
}

/* When the advice speaks: every worker busy in an app for at least this
 * share of the last minute, requests waiting at least this long at p90
 * before their app started, a child past this share of PyWSGIMaxMemory. */
#define PW_ADVICE_SATURATED 0.05
#define PW_ADVICE_QUEUE_P90 0.1
#define PW_ADVICE_MEMORY    0.8
/* ... and not before this many requests: the first ones after a start wait
 * in the listen backlog while the child starts Python, and say nothing
 * about the load. */
#define PW_ADVICE_MIN_COUNT 100

/* Workers, saturation and queue wait, then advice in plain words, only
 * when there is something to act on (an idle server shows none). */
static void render_saturation(request_rec *r, const pw_metrics_snapshot_t *snap)
{
    apr_pool_t *p = r->pool;
    double p90 = pw_metrics_quantile_of(snap->queue, 0.9);
    apr_off_t max_memory = pw_config_max_memory(r->server);
    int threads = 0, q, i;
    const char *raise;
    apr_uint64_t queued = 0;

    for (i = 0; i < PW_METRICS_BUCKETS; i++) {
        queued += snap->queue[i];
    }
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) || threads < 1) {
        threads = 1;
    }
    raise = threads > 1 ? "ThreadsPerChild or MaxRequestWorkers"
                        : "MaxRequestWorkers (and ServerLimit)";
    ap_rprintf(r,
               "<p id=\"pywsgi-saturation\">Workers: <span "
               "id=\"pywsgi-workers-busy\">%d</span> busy, <span "
               "id=\"pywsgi-workers-idle\">%d</span> idle of <span "
               "id=\"pywsgi-workers-max\">%d</span> (MaxRequestWorkers); "
               "<span id=\"pywsgi-workers-in-apps\">%" APR_INT64_T_FMT
               "</span> in an application now. Every worker busy in an "
               "application: <span id=\"pywsgi-saturated-share\" "
               "data-value=\"%.4f\">%.0f%%</span> of the last minute (%s "
               "in all). Requests waited before their application started:",
               snap->sb_busy, snap->sb_idle, snap->max_workers, snap->busy,
               snap->saturated_share, snap->saturated_share * 100,
               human_secs(p, SECS(snap->saturated_us)));
    for (q = 0; q < NQUANTILES; q++) {
        double v = pw_metrics_quantile_of(snap->queue, quantiles[q]);
        ap_rprintf(r,
                   " <span class=\"queue-%s\" data-value=\"%.6f\">%s</span> "
                   "at %s%s",
                   quantile_names[q], v, human_secs(p, v), quantile_names[q],
                   q < NQUANTILES - 1 ? "," : ".</p>\n");
    }

    if (snap->saturated_share >= PW_ADVICE_SATURATED) {
        ap_rprintf(r,
                   "<p class=\"pywsgi-advice\" id=\"pywsgi-advice-queue\">"
                   "All %d workers were busy in applications %.0f%% of the "
                   "last minute; requests waited %s at p90 before their "
                   "application started: requests are queueing. Raise %s, "
                   "if memory allows, or make the slow requests faster.</p>\n",
                   snap->max_workers, snap->saturated_share * 100,
                   human_secs(p, p90 < 0 ? 0 : p90), raise);
    }
    else if (p90 >= PW_ADVICE_QUEUE_P90 && queued >= PW_ADVICE_MIN_COUNT) {
        ap_rprintf(r,
                   "<p class=\"pywsgi-advice\" id=\"pywsgi-advice-queue\">"
                   "Requests waited %s at p90 before their application "
                   "started, though the workers were not all in applications "
                   "for long: other work holds them (keep-alive connections "
                   "under prefork/worker, static files, other handlers). "
                   "Raise %s, or lower KeepAliveTimeout.</p>\n",
                   human_secs(p, p90), raise);
    }
    for (i = 0; max_memory > 0 && i < snap->nchildren; i++) {
        const pw_metrics_child_t *ch = &snap->children[i];

        if ((double)ch->rss >= PW_ADVICE_MEMORY * (double)max_memory) {
            ap_rprintf(r,
                       "<p class=\"pywsgi-advice pywsgi-advice-memory\" "
                       "data-pid=\"%" APR_PID_T_FMT "\">Child %" APR_PID_T_FMT
                       " holds %s, %.0f%% of PyWSGIMaxMemory (%s): it will be "
                       "recycled when it passes. If children recycle often, "
                       "raise PyWSGIMaxMemory or look for what grows.</p>\n",
                       ch->pid, ch->pid, human_bytes(p, ch->rss),
                       100.0 * (double)ch->rss / (double)max_memory,
                       human_bytes(p, (apr_uint64_t)max_memory));
        }
    }
}

/* Element ids and classes are an interface: t/metrics.t and people's
 * scrapers read them.  #pywsgi-apps tr.pywsgi-app[data-app] td.<figure>,
 * #pywsgi-children tr.pywsgi-child[data-pid] td.<figure>, raw numbers in
 * data-value where the text is rounded for people. */
static void render_html(request_rec *r, const pw_metrics_snapshot_t *snap)
{
    apr_pool_t *p = r->pool;
    int i, b, c, q;

    ap_rputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
             "<meta charset=\"utf-8\">\n"
             "<meta http-equiv=\"refresh\" content=\"5\">\n"
             "<title>mod_pywsgi status</title>\n<style>\n"
             "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
             "table{border-collapse:collapse;margin-bottom:1.5em}\n"
             "th,td{border:1px solid #ccc;padding:.25em .6em}\n"
             "td{text-align:right}td.app{text-align:left}\n"
             "th{background:#eee}\n"
             "tr.failing td.s5xx,tr.failing td.exceptions{color:#b00}\n"
             "</style>\n</head>\n<body>\n<h1>mod_pywsgi status</h1>\n",
             r);
    if (snap->host) {
        ap_rprintf(r,
                   "<p id=\"pywsgi-summary\">The applications of <span "
                   "id=\"pywsgi-host\">%s</span>, counting since %s. In "
                   "flight: <span id=\"pywsgi-in-flight\">%" APR_INT64_T_FMT
                   "</span>. Refreshes every 5 s; also as <a "
                   "href=\"?format=json\">JSON</a> and <a "
                   "href=\"?format=prometheus\">Prometheus</a>.</p>\n",
                   ap_escape_html(p, snap->host), html_time(p, snap->started),
                   snap->in_flight);
    }
    else {
        ap_rprintf(
            r,
            "<p id=\"pywsgi-summary\">mod_pywsgi %s, MPM %s. Counting "
            "since <span id=\"pywsgi-started\">%s</span> (%s ago). "
            "In flight: <span id=\"pywsgi-in-flight\">%" APR_INT64_T_FMT
            "</span>. Children: <span id=\"pywsgi-children-live\">%d"
            "</span> live, <span id=\"pywsgi-child-starts\">%" APR_UINT64_T_FMT
            "</span> started, <span "
            "id=\"pywsgi-child-exits\">%" APR_UINT64_T_FMT "</span> "
            "exited. Time waiting for the GIL: <span "
            "id=\"pywsgi-gil-wait\">%s</span>. Refreshes every 5 s; also "
            "as <a href=\"?format=json\">JSON</a> and <a "
            "href=\"?format=prometheus\">Prometheus</a>.</p>\n",
            PW_VERSION, ap_escape_html(p, ap_show_mpm()),
            html_time(p, snap->started),
            human_age(p, snap->now - snap->started), snap->in_flight,
            snap->nchildren, snap->child_starts, snap->child_exits,
            human_secs(p, SECS(snap->gil_wait_us)));
        render_saturation(r, snap);
    }

    ap_rputs("<h2>Applications</h2>\n<table id=\"pywsgi-apps\">\n<thead><tr>"
             "<th>Application</th><th>Requests</th>",
             r);
    for (c = 0; c < PW_METRICS_CLASSES; c++) {
        ap_rprintf(r, "<th>%s</th>", class_names[c]);
    }
    ap_rputs("<th>Exceptions</th><th>In flight</th><th>Mean</th>"
             "<th>p50</th><th>p90</th><th>p99</th><th>Bytes in</th>"
             "<th>Bytes out</th></tr></thead>\n<tbody>\n",
             r);
    for (i = 0; i < snap->napps; i++) {
        const pw_metrics_app_t *a = &snap->apps[i];
        const char *name = ap_escape_html(p, a->app);
        double mean = a->count ? SECS(a->duration_us) / a->count : -1;

        ap_rprintf(
            r,
            "<tr class=\"pywsgi-app%s\" data-app=\"%s\">"
            "<td class=\"app\">%s</td><td class=\"requests\">%" APR_UINT64_T_FMT
            "</td>",
            a->requests[4] || a->exceptions ? " failing" : "", name, name,
            total_requests(a));
        for (c = 0; c < PW_METRICS_CLASSES; c++) {
            ap_rprintf(r, "<td class=\"s%s\">%" APR_UINT64_T_FMT "</td>",
                       class_names[c], a->requests[c]);
        }
        ap_rprintf(r,
                   "<td class=\"exceptions\">%" APR_UINT64_T_FMT "</td>"
                   "<td class=\"in-flight\">%" APR_INT64_T_FMT "</td>"
                   "<td class=\"mean\" data-value=\"%.6f\">%s</td>",
                   a->exceptions, a->in_flight, mean, human_secs(p, mean));
        for (q = 0; q < NQUANTILES; q++) {
            double v = pw_metrics_quantile(a, quantiles[q]);
            ap_rprintf(r, "<td class=\"%s\" data-value=\"%.6f\">%s</td>",
                       quantile_names[q], v, human_secs(p, v));
        }
        ap_rprintf(r,
                   "<td class=\"bytes-in\" data-value=\"%" APR_UINT64_T_FMT
                   "\">%s</td><td class=\"bytes-out\" "
                   "data-value=\"%" APR_UINT64_T_FMT "\">%s</td></tr>\n",
                   a->bytes_in, human_bytes(p, a->bytes_in), a->bytes_out,
                   human_bytes(p, a->bytes_out));
    }
    ap_rputs("</tbody>\n</table>\n", r);

    if (!snap->host) {
        ap_rputs("<h2>Children</h2>\n<table id=\"pywsgi-children\">\n"
                 "<thead><tr>"
                 "<th>PID</th><th>Slot</th><th>Up for</th><th>Requests</th>"
                 "<th>In flight</th><th>Resident memory</th><th>GC runs</th>"
                 "<th>GIL wait</th><th>Busy workers</th><th>Idle workers</th>"
                 "</tr></thead>\n<tbody>\n",
                 r);
        for (i = 0; i < snap->nchildren; i++) {
            const pw_metrics_child_t *ch = &snap->children[i];

            ap_rprintf(r,
                       "<tr class=\"pywsgi-child\" data-pid=\"%" APR_PID_T_FMT
                       "\"><td class=\"pid\">%" APR_PID_T_FMT
                       "</td><td class=\"slot\">%d</td><td class=\"uptime\">%s"
                       "</td><td class=\"requests\">%" APR_UINT64_T_FMT "</td>"
                       "<td class=\"in-flight\">%" APR_INT64_T_FMT "</td>"
                       "<td class=\"rss\" data-value=\"%" APR_UINT64_T_FMT "\">"
                       "%s</td><td class=\"gc\">%" APR_UINT64_T_FMT "</td>"
                       "<td class=\"gil-wait\" data-value=\"%.6f\">%s</td>"
                       "<td class=\"busy\">%d</td><td class=\"idle\">%d</td>"
                       "</tr>\n",
                       ch->pid, ch->pid, ch->slot,
                       human_age(p, snap->now - ch->started), ch->requests,
                       ch->in_flight, ch->rss, human_bytes(p, ch->rss),
                       ch->gc_collections, SECS(ch->gil_wait_us),
                       human_secs(p, SECS(ch->gil_wait_us)), ch->busy_workers,
                       ch->idle_workers);
        }
        ap_rputs("</tbody>\n</table>\n", r);
    }

    ap_rputs("<h2>Latency histogram</h2>\n<p>Requests that took at most "
             "so long (cumulative, as Prometheus counts).</p>\n"
             "<table id=\"pywsgi-latency\">\n<thead><tr><th>Application</th>",
             r);
    for (b = 0; b < PW_METRICS_BUCKETS - 1; b++) {
        double le = pw_metrics_bucket_le[b];
        ap_rprintf(
            r, "<th>&le; %s</th>",
            le < 1 ? apr_pstrcat(p, pw_metrics_fmt_seconds(p, le * 1000), " ms",
                                 NULL)
                   : apr_pstrcat(p, pw_metrics_fmt_seconds(p, le), " s", NULL));
    }
    ap_rputs("<th>all</th></tr></thead>\n<tbody>\n", r);
    for (i = 0; i < snap->napps; i++) {
        const pw_metrics_app_t *a = &snap->apps[i];
        apr_uint64_t cum = 0;

        ap_rprintf(r,
                   "<tr class=\"pywsgi-latency\" data-app=\"%s\"><td "
                   "class=\"app\">%s</td>",
                   ap_escape_html(p, a->app), ap_escape_html(p, a->app));
        for (b = 0; b < PW_METRICS_BUCKETS; b++) {
            cum += a->buckets[b];
            ap_rprintf(r, "<td class=\"le\">%" APR_UINT64_T_FMT "</td>", cum);
        }
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</tbody>\n</table>\n</body>\n</html>\n", r);
}

/* --- mod_status -------------------------------------------------------- */

static int status_hook(request_rec *r, int flags)
{
    pw_status_mode_t mode = pw_config_status(r);
    pw_metrics_snapshot_t *snap;
    apr_uint64_t requests = 0, failed = 0, errors = 0, rss = 0;
    int i;

    /* mod_status's page can be set up from .htaccess too: the section
     * follows PyWSGIStatus, as the handler does (silently: the page
     * itself is mod_status's). */
    if (mode == PW_STATUS_OFF
        || (snap = pw_metrics_snapshot(r->pool)) == NULL) {
        return OK;
    }
    if (mode == PW_STATUS_HOST) {
        pw_metrics_snapshot_limit(snap, r->server, r->pool);
    }
    for (i = 0; i < snap->napps; i++) {
        requests += total_requests(&snap->apps[i]);
        errors += snap->apps[i].requests[4];
        failed += snap->apps[i].exceptions;
    }
    for (i = 0; i < snap->nchildren; i++) {
        rss += snap->children[i].rss;
    }
    if (flags & AP_STATUS_SHORT) {
        /* ?auto: "Key: value" lines, like mod_status's own. */
        ap_rprintf(r,
                   "PyWSGIRequests: %" APR_UINT64_T_FMT "\n"
                   "PyWSGIServerErrors: %" APR_UINT64_T_FMT "\n"
                   "PyWSGIExceptions: %" APR_UINT64_T_FMT "\n"
                   "PyWSGIInFlight: %" APR_INT64_T_FMT "\n"
                   "PyWSGIChildren: %d\n"
                   "PyWSGIResidentMemory: %" APR_UINT64_T_FMT "\n",
                   requests, errors, failed, snap->in_flight, snap->nchildren,
                   rss);
        return OK;
    }
    ap_rprintf(
        r,
        "<hr />\n<h2 id=\"pywsgi\">mod_pywsgi</h2>\n<p>%" APR_UINT64_T_FMT
        " requests to WSGI applications, %" APR_UINT64_T_FMT
        " with a 5xx, %" APR_UINT64_T_FMT " "
        "exceptions, %" APR_INT64_T_FMT " in flight; %d children "
        "holding %s resident.</p>\n",
        requests, errors, failed, snap->in_flight, snap->nchildren,
        human_bytes(r->pool, rss));
    if (flags & AP_STATUS_NOTABLE) {
        return OK;
    }
    ap_rputs("<table border=\"0\"><tr><th>Application</th><th>Requests</th>"
             "<th>5xx</th><th>Exceptions</th><th>p50</th><th>p99</th></tr>\n",
             r);
    for (i = 0; i < snap->napps; i++) {
        const pw_metrics_app_t *a = &snap->apps[i];

        ap_rprintf(
            r,
            "<tr><td>%s</td><td>%" APR_UINT64_T_FMT
            "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td>"
            "<td>%s</td><td>%s</td></tr>\n",
            ap_escape_html(r->pool, a->app), total_requests(a), a->requests[4],
            a->exceptions, human_secs(r->pool, pw_metrics_quantile(a, 0.5)),
            human_secs(r->pool, pw_metrics_quantile(a, 0.99)));
    }
    ap_rputs("</table>\n", r);
    return OK;
}

/* ---- pywsgi-health: the node's state, for load balancers ------------- */

/*
 * The handler (200 "ok" while this node serves; 503 "draining" while
 * the PyWSGIHealthDrain file exists; 503 "stopping" once a graceful stop of
 * the whole node has begun).  Its directive is pw_config.c's; a check
 * reads no figure of pw_metrics.c.
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
 * One stat() and two MPM queries per check; never the GIL or Python, so
 * checks answer while every Python thread is busy or stuck (a balancer
 * must not drop a node because its apps are slow: that is what its own
 * timeouts are for).
 */

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
