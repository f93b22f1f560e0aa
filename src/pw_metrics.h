/*
 * pw_metrics.h: request counters, latency histogram and per-child figures,
 * kept in shared memory and shown by the pywsgi-status handler
 * (pw_status.c).  Nothing here needs the GIL except
 * pw_metrics_python_sample().
 */
#ifndef PW_METRICS_H
#define PW_METRICS_H

#include "pw_common.h"
#include "pw_config.h"

/* What the handler knows about one finished request. */
typedef struct {
    const pw_target_t *target;        /* the app, as configured */
    const server_rec *host;           /* a file served by handler: the
                                         virtual host it was served in
                                         (its tenant's status page lists
                                         it); NULL for the others */
    const char *interp_name;          /* where it ran */
    apr_interval_time_t slow_request; /* PyWSGISlowRequest, 0: off */
    int status;                       /* final HTTP status */
    int app_failed;                   /* raised, wrong types, short body... */
    apr_interval_time_t duration;     /* handler time */
    apr_interval_time_t gil_wait;     /* time spent waiting for the GIL */
    apr_interval_time_t queue_wait;   /* pw_metrics_queue_wait() */
    apr_off_t bytes_in;               /* request body bytes read by the app */
    apr_off_t bytes_out;              /* response body bytes from the app */
} pw_metrics_sample_t;

/* Hooks: post_config (shared memory), child_init. */
void pw_metrics_register_hooks(apr_pool_t *p);

/* No GIL.  A request for an app starts / ends (in-flight gauge, counters,
 * histogram, request notes for LogFormat, the slow-request warning).  host
 * as in pw_metrics_sample_t. */
void pw_metrics_request_begin(const pw_target_t *target,
                              const server_rec *host);

/* How long the request waited before the handler began at start: in the
 * listen backlog or the MPM's queue, and in Apache's reading of it. */
apr_interval_time_t pw_metrics_queue_wait(request_rec *r, apr_time_t start);

/* MaxRequestWorkers (daemons x threads per daemon). */
int pw_metrics_max_workers(void);
void pw_metrics_request_end(request_rec *r, const pw_metrics_sample_t *m);

/* GIL held, at the end of a request: a chance to sample Python-side
 * figures (GC collections) for this child, cheaply. */
void pw_metrics_python_sample(int interp); /* interp: whose GIL is held */

/* --- Reading the figures (pw_status.c).  No GIL, no Python. ------------ */

/* Latency histogram: PW_METRICS_BUCKETS buckets, the last one +Inf.  The
 * upper bounds of the others, in seconds and in microseconds. */
#define PW_METRICS_BUCKETS 16
extern const double pw_metrics_bucket_le[PW_METRICS_BUCKETS - 1];

/* Status classes 1xx..5xx are indexes 0..4. */
#define PW_METRICS_CLASSES 5

/* One application, summed over every child of this generation (exited
 * ones included). */
typedef struct {
    const char *app;
    apr_uint64_t requests[PW_METRICS_CLASSES];
    apr_uint64_t exceptions;
    apr_uint64_t buckets[PW_METRICS_BUCKETS]; /* per bucket, not summed */
    apr_uint64_t count;                       /* all buckets */
    apr_uint64_t duration_us;                 /* sum of durations */
    apr_uint64_t bytes_in;
    apr_uint64_t bytes_out;
    apr_int64_t in_flight;                  /* live children only */
    apr_uint64_t queue[PW_METRICS_BUCKETS]; /* queue wait, per bucket */
    apr_uint64_t queue_us;                  /* sum of queue waits */
    int entry; /* its entry in the shared memory (pw_metrics.c's own) */
} pw_metrics_app_t;

/* One live child. */
typedef struct {
    int slot;
    pid_t pid;
    apr_time_t started;
    apr_uint64_t requests;       /* served by this pid */
    apr_uint64_t rss;            /* bytes; 0: not known */
    apr_uint64_t gc_collections; /* Python GC runs, all generations */
    apr_uint64_t gil_wait_us;
    apr_int64_t in_flight;
    int busy_workers; /* from the scoreboard (pw_status.c fills them) */
    int idle_workers;
} pw_metrics_child_t;

typedef struct {
    apr_time_t started; /* this generation's counters began */
    apr_time_t now;
    apr_uint64_t child_starts;
    apr_uint64_t child_exits;
    apr_uint64_t gil_wait_us; /* every child, exited ones too */
    apr_int64_t in_flight;
    int napps;
    pw_metrics_app_t *apps; /* configured order */
    int nchildren;
    pw_metrics_child_t *children; /* by slot */
    const char *host; /* NULL, or the one virtual host it is limited to */
    int max_workers;  /* MaxRequestWorkers */
    apr_int64_t busy; /* workers in an app now, every child */
    apr_uint64_t saturated_us; /* every worker in an app: since started */
    double saturated_share;    /* ... share of the last minute, 0..1 */
    int sb_busy, sb_idle;      /* scoreboard workers (pw_status.c) */
    apr_uint64_t queue[PW_METRICS_BUCKETS]; /* every app's queue waits */
    apr_uint64_t queue_us;
} pw_metrics_snapshot_t;

/* Seconds as the shortest plain decimal with at most 6 places ("0.0005",
 * "2.5", "30"): Prometheus le labels, JSON numbers, log lines.  (APR's %g
 * writes ".0005", which JSON does not accept.) */
const char *pw_metrics_fmt_seconds(apr_pool_t *p, double s);

/* Are metrics kept (PyWSGIMetrics On and the shared memory there)? */
int pw_metrics_enabled(void);

/* A copy of every figure, allocated from p; NULL when metrics are off.
 * Lock-free: counters being updated meanwhile may be off by the requests
 * in progress, never torn. */
pw_metrics_snapshot_t *pw_metrics_snapshot(apr_pool_t *p);

/* Limits snap to what a tenant may see (PyWSGIStatus Host): the apps of
 * s's own PyWSGIScriptAlias lines (not those it inherits from the main
 * server) and the files served by handler in s, their requests in flight,
 * and no children (pids and memory are the whole server's).  An app two
 * hosts both mount (or a file both serve) is one app, counted once: each
 * host sees its requests from both. */
void pw_metrics_snapshot_limit(pw_metrics_snapshot_t *snap, server_rec *s,
                               apr_pool_t *p);

/* Estimated q-quantile (0 < q < 1) of an app's durations, in seconds, by
 * linear interpolation inside the histogram bucket that holds it; -1 when
 * there were no requests.  Above the last finite bound it answers that
 * bound. */
double pw_metrics_quantile(const pw_metrics_app_t *a, double q);

/* The same over any PW_METRICS_BUCKETS histogram (per bucket counts). */
double pw_metrics_quantile_of(const apr_uint64_t *buckets, double q);

/* Resident set size of pid (0: this process) in bytes, from /proc; 0 when
 * it cannot be read.  Also PyWSGIMaxMemory's measure (pw_guard.c). */
apr_uint64_t pw_metrics_rss(pid_t pid);

#endif /* PW_METRICS_H */
