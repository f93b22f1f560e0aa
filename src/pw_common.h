/*
 * pw_common.h: what every file of mod_pywsgi includes — the version guards,
 * the Apache headers, the module record and the log-message numbers.
 *
 * Every log line of the module starts with "PWnnnn: "; docs/messages.md says
 * what each number means and what to do about it.
 */
#ifndef PW_COMMON_H
#define PW_COMMON_H

#include "pw_compat.h"

#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

extern module AP_MODULE_DECLARE_DATA pywsgi_module;

#define PW_VERSION "0.1.0"

/* The handler name our requests carry (r->handler). */
#define PW_HANDLER "pywsgi-script"

/* Interpreters a child can hold: "main" (index 0), the named ones
 * (PyWSGIInterpreter NAME) and one per virtual host for files served by
 * handler (created on first use).  64: room for a host with a few dozen
 * tenants; every per-interpreter array (pw_app.c's per target, pw_route_t's
 * SCRIPT_NAME, each thread's states) grows with it. */
#define PW_MAX_INTERPS 64

#endif /* PW_COMMON_H */
