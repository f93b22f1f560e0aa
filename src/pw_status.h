/*
 * pw_status.h: the pywsgi-status handler (HTML, JSON, Prometheus) and the
 * mod_pywsgi section of mod_status's page.  No GIL, no Python.
 */
#ifndef PW_STATUS_H
#define PW_STATUS_H

#include "pw_common.h"

/* The handler name of the status page: SetHandler pywsgi-status. */
#define PW_STATUS_HANDLER "pywsgi-status"

/* The handler, and mod_status's optional hook (when it is loaded). */
void pw_status_register_hooks(apr_pool_t *p);

#endif /* PW_STATUS_H */
