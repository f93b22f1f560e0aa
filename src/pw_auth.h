/*
 * pw_auth.h: Python as Apache's authentication and authorisation provider
 * (PyWSGIAuthScript; "AuthBasicProvider pywsgi", "AuthDigestProvider
 * pywsgi", "Require pywsgi-group NAME...").
 */
#ifndef PW_AUTH_H
#define PW_AUTH_H

#include "pw_common.h"
#include "pw_guard.h"

/* The request timeout's begin and end (pw_guard_begin/pw_guard_end), handed
 * over by the front door, which already calls both files: the script
 * functions run under PyWSGIRequestTimeout as apps do, without a link from
 * pw_auth to pw_guard. */
typedef struct {
    void (*begin)(request_rec *r, int interp, apr_interval_time_t timeout,
                  pw_guard_saved_t *saved);
    int (*end)(pw_guard_saved_t *saved);
} pw_auth_guard_t;

/* register_hooks: the authn provider "pywsgi" and the authz provider
 * "pywsgi-group", their calls guarded by guard. */
void pw_auth_register_hooks(apr_pool_t *p, const pw_auth_guard_t *guard);

#endif /* PW_AUTH_H */
