/*
 * mod_pywsgi.c: the front door — the module record and the hooks.
 *
 * Each concern lives in its own file under src/ and registers its own
 * hooks; this file only wires them together.  README.md ("Architecture")
 * draws the way a request takes through them.
 */
#include "pw_common.h"
#include "pw_auth.h"
#include "pw_config.h"
#include "pw_guard.h"
#include "pw_handler.h"
#include "pw_metrics.h"
#include "pw_python.h"
#include "pw_status.h"

/* Python starts here, in each child, never in the parent: the parent runs
 * as root, re-reads its configuration on every restart, and a Python
 * initialised before fork() is shared state no child can trust. */
static void pw_child_init(apr_pool_t *pchild, server_rec *s)
{
    pw_guard_child_early(s);
    pw_python_child_init(pchild, s);
    pw_guard_child_init(pchild, s);
}

static int pw_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    pw_config_pre_config(pconf);
    return OK;
}

/* Two embedded Pythons in one process share one libpython's global state
 * (or load two): either way a crash waiting to happen.  Refuse to start,
 * at configtest already. */
static int pw_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    static const char *const rivals[] = { "mod_wsgi.c", "mod_python.c", NULL };
    const char *const *m;

    for (m = rivals; *m; m++) {
        if (ap_find_linked_module(*m)) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s,
                         "PW0002: %s is loaded too: two embedded Pythons "
                         "cannot share one Apache process. Remove its "
                         "LoadModule (a2dismod) or mod_pywsgi's",
                         *m);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return pw_config_check(pconf, s);
}

/* pw_auth's script functions run under PyWSGIRequestTimeout too. */
static const pw_auth_guard_t auth_guard = { pw_guard_begin, pw_guard_end };

static void pw_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(pw_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(pw_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(pw_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    pw_handler_register_hooks(p);
    pw_auth_register_hooks(p, &auth_guard);
    pw_metrics_register_hooks(p);
    pw_status_register_hooks(p);
}

AP_DECLARE_MODULE(pywsgi) = { STANDARD20_MODULE_STUFF, pw_config_dir_create,
                              pw_config_dir_merge,     pw_config_server_create,
                              pw_config_server_merge,  pw_config_cmds,
                              pw_register_hooks,       AP_MODULE_FLAG_NONE };
