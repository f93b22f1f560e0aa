/*
 * pw_metrics.c: placeholder until the metrics land (issue 5): every call is
 * a no-op.
 */
#include "pw_metrics.h"

void pw_metrics_register_hooks(apr_pool_t *p)
{
}

void pw_metrics_request_begin(request_rec *r)
{
}

void pw_metrics_request_end(request_rec *r, const pw_metrics_sample_t *m)
{
}

void pw_metrics_python_sample(void)
{
}
