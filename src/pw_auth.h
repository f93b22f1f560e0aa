/*
 * pw_auth.h: Python as Apache's authentication and authorisation provider
 * (PyWSGIAuthScript; "AuthBasicProvider pywsgi", "AuthDigestProvider
 * pywsgi", "Require pywsgi-group NAME...").
 */
#ifndef PW_AUTH_H
#define PW_AUTH_H

#include "pw_common.h"

/* register_hooks: the authn provider "pywsgi" and the authz provider
 * "pywsgi-group". */
void pw_auth_register_hooks(apr_pool_t *p);

#endif /* PW_AUTH_H */
