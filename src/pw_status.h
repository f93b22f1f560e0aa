/*
 * pw_status.h: the module's own pages: the pywsgi-status handler (HTML,
 * JSON, Prometheus), the mod_pywsgi section of mod_status's page, and the
 * pywsgi-health handler for load balancers' health checks (its drain file
 * is PyWSGIHealthDrain, in pw_config).  No GIL, no Python.
 */
#ifndef PW_STATUS_H
#define PW_STATUS_H

#include "pw_common.h"

/* The handler name of the status page: SetHandler pywsgi-status. */
#define PW_STATUS_HANDLER "pywsgi-status"

/* The handler name of the health check: SetHandler pywsgi-health. */
#define PW_HEALTH_HANDLER "pywsgi-health"

/* Both handlers, and mod_status's optional hook (when it is loaded). */
void pw_status_register_hooks(apr_pool_t *p);

#endif /* PW_STATUS_H */
