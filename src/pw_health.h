/*
 * pw_health.h: the pywsgi-health handler, for load balancers' health
 * checks (its drain file is PyWSGIHealthDrain, in pw_config).  No GIL, no
 * Python.
 */
#ifndef PW_HEALTH_H
#define PW_HEALTH_H

#include "pw_common.h"

/* The handler name of the health check: SetHandler pywsgi-health. */
#define PW_HEALTH_HANDLER "pywsgi-health"

void pw_health_register_hooks(apr_pool_t *p);

#endif /* PW_HEALTH_H */
