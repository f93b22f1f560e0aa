/*
 * pw_handler.h: the request hooks — which URLs are ours, and serving one.
 */
#ifndef PW_HANDLER_H
#define PW_HANDLER_H

#include "pw_common.h"

void pw_handler_register_hooks(apr_pool_t *p);

#endif /* PW_HANDLER_H */
