/*
 * pw_health.h: the pywsgi-health handler, for load balancers' health
 * checks, and the PyWSGIHealthDrain directive.  No GIL, no Python.
 */
#ifndef PW_HEALTH_H
#define PW_HEALTH_H

#include "pw_common.h"

/* The handler name of the health check: SetHandler pywsgi-health. */
#define PW_HEALTH_HANDLER "pywsgi-health"

/* PyWSGIHealthDrain FILE (server config only): while FILE exists the
 * health check answers 503, so an operator drains a node from its
 * balancer before stopping it.  Parsed here; the module's command table
 * carries PW_HEALTH_CMDS. */
const char *pw_health_set_drain(cmd_parms *cmd, void *dummy,
                                const char *arg);

#define PW_HEALTH_CMDS                                                    \
    AP_INIT_TAKE1("PyWSGIHealthDrain", pw_health_set_drain, NULL,         \
                  RSRC_CONF,                                              \
                  "a file whose existence makes pywsgi-health answer 503 " \
                  "(drain this node before stopping it)")

/* The handler, and the pre_config hook that forgets the previous
 * generation's drain file. */
void pw_health_register_hooks(apr_pool_t *p);

#endif /* PW_HEALTH_H */
