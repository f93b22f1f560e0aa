/*
 * pw_metrics.h: request counters, latency histogram and per-child figures,
 * kept in shared memory and shown by the pywsgi-status handler.
 */
#ifndef PW_METRICS_H
#define PW_METRICS_H

#include "pw_common.h"

/* What the handler knows about one finished request. */
typedef struct {
    const char *app;              /* the app's target, as configured */
    int status;                   /* final HTTP status */
    int app_failed;               /* raised, wrong types, short body... */
    apr_interval_time_t duration; /* handler time */
    apr_interval_time_t gil_wait; /* time spent waiting for the GIL */
    apr_off_t bytes_in;           /* request body bytes read by the app */
    apr_off_t bytes_out;          /* response body bytes from the app */
} pw_metrics_sample_t;

/* Hooks: post_config (shared memory), child_init, the status handler. */
void pw_metrics_register_hooks(apr_pool_t *p);

/* No GIL.  A request for an app starts / ends (in-flight gauge, counters,
 * histogram, request notes for LogFormat, the slow-request warning). */
void pw_metrics_request_begin(request_rec *r);
void pw_metrics_request_end(request_rec *r, const pw_metrics_sample_t *m);

/* GIL held, at the end of a request: a chance to sample Python-side
 * figures (GC collections) for this child, cheaply. */
void pw_metrics_python_sample(void);

#endif /* PW_METRICS_H */
