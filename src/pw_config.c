/*
 * pw_config.c: directives, defaults, merging and getters.
 *
 * Here: the command table, per-server and per-directory config records, the
 * route lookup, and the declarations the directives make, kept as data:
 * the interpreter names (index 0 is "main") and the application targets
 * (parsed, one pw_target_t per distinct target).  Not here: anything that
 * touches Python — pw_app.c loads the targets, pw_python.c starts the
 * interpreters.  Runs in the parent while reading the config, and
 * read-only in the children; no locks, no GIL.
 *
 * Inheritance: a virtual host sees its own PyWSGIScriptAlias lines first and
 * then the main server's (as mod_alias does); the longest URL-PATH wins.
 * PyWSGIPythonPath, PyWSGIVirtualEnv and PyWSGIShutdownTimeout are process
 * wide (one Python per child) and so allowed in the main server config only;
 * so is PyWSGIHealthDrain (one drain file per node).
 *
 * Tenants (issue 16): a .htaccess may set PyWSGIReload (FileInfo) and
 * PyWSGIPassAuthorization (AuthConfig), nothing else.  The other directives
 * still reach their function from a .htaccess (OR_ALL in their overrides),
 * so that the refusal names the fix rather than Apache's bare "not allowed
 * here" (admin_only()).  Files served by handler get one interpreter per
 * virtual host, declared in check_config (pw_config_check) and created in a
 * child only when first used.
 */
#include "pw_config.h"
#include "pw_http.h"
#include "apr_file_info.h"
#include "apr_hash.h"
#include "apr_lib.h"
#include "http_core.h"
#include "util_md5.h"

APLOG_USE_MODULE(pywsgi);

#define PW_UNSET (-1)
#define PW_MERGE(base, add, field)                                             \
    ((add)->field == PW_UNSET ? (base)->field : (add)->field)

/* Defaults, in one place; README's directive table repeats them. */
#define PW_DEFAULT_PASS_AUTHORIZATION 0
#define PW_DEFAULT_SHUTDOWN_TIMEOUT   apr_time_from_sec(5)
#define PW_DEFAULT_METRICS            1
#define PW_DEFAULT_RELOAD             0
#define PW_DEFAULT_INTERP             0 /* main */
#define PW_DEFAULT_SLOW_REQUEST       0 /* off */
#define PW_DEFAULT_CHUNKED_STREAM     0 /* Buffer */
#define PW_DEFAULT_BODY_BUFFER        (1024 * 1024)
#define PW_MAX_BODY_BUFFER            (1024 * 1024 * 1024)

/* PyWSGIInterpreter %{SERVER}: the virtual host's own interpreter. */
#define PW_INTERP_VHOST (-2)

/* Where an administrator's directive may go (admin_only()). */
enum { PW_AT_SERVER, PW_AT_DIR, PW_AT_PROCESS };

typedef struct {
    apr_array_header_t *routes;           /* pw_route_t, longest url first */
    apr_array_header_t *python_path;      /* const char *; main server only */
    const char *venv;                     /* main server only */
    apr_interval_time_t shutdown_timeout; /* PW_UNSET: default */
    int metrics;                          /* PW_UNSET, 0, 1; main server only */
    apr_interval_time_t slow_request;     /* PW_UNSET: default */
    apr_interval_time_t request_timeout;  /* PW_UNSET: off */
    apr_array_header_t *preloads;         /* pw_preload_t; main server only */
    int max_requests;                     /* 0: off; main server only */
    apr_off_t max_memory;                 /* 0: off; main server only */
    const char *health_drain;             /* NULL: none; main server only */
    int inherit_mounts;                   /* PW_UNSET, 0, 1 */
    int vhost_interp; /* the host's interpreter (pw_config_check), or -1 */
} pw_server_conf_t;

typedef struct {
    int pass_authorization;         /* PW_UNSET, 0, 1 */
    int reload;                     /* PW_UNSET, 0, 1 */
    int interp;                     /* PW_UNSET or an interpreter index */
    int chunked_stream;             /* PW_UNSET, 0 (Buffer), 1 (Stream) */
    apr_off_t body_buffer;          /* PW_UNSET or bytes */
    const char *body_tmpdir;        /* NULL: the system's temporary directory */
    const pw_target_t *auth_script; /* PyWSGIAuthScript, or NULL */
    int auth_interp;                /* its interpreter= (default main) */
    int status;                     /* PW_UNSET or a pw_status_mode_t */
} pw_dir_conf_t;

static const char *cmd_script_alias(cmd_parms *cmd, void *dconf, int argc,
                                    char *const argv[]);
static const char *cmd_python_path(cmd_parms *cmd, void *dconf,
                                   const char *arg);
static const char *cmd_venv(cmd_parms *cmd, void *dconf, const char *arg);
static const char *cmd_shutdown_timeout(cmd_parms *cmd, void *dconf,
                                        const char *arg);
static const char *cmd_pass_authorization(cmd_parms *cmd, void *dconf,
                                          int flag);
static const char *cmd_metrics(cmd_parms *cmd, void *dconf, int flag);
static const char *cmd_interpreter(cmd_parms *cmd, void *dconf,
                                   const char *arg);
static const char *cmd_preload(cmd_parms *cmd, void *dconf, int argc,
                               char *const argv[]);
static const char *cmd_reload(cmd_parms *cmd, void *dconf, int flag);
static const char *cmd_auth_script(cmd_parms *cmd, void *dconf, int argc,
                                   char *const argv[]);
static const char *cmd_request_timeout(cmd_parms *cmd, void *dconf,
                                       const char *arg);
static const char *cmd_max_requests(cmd_parms *cmd, void *dconf,
                                    const char *arg);
static const char *cmd_max_memory(cmd_parms *cmd, void *dconf, const char *arg);
static const char *cmd_status(cmd_parms *cmd, void *dconf, const char *arg);
static const char *cmd_slow_request(cmd_parms *cmd, void *dconf,
                                    const char *arg);
static const char *cmd_chunked_request(cmd_parms *cmd, void *dconf,
                                       const char *arg);
static const char *cmd_body_buffer(cmd_parms *cmd, void *dconf,
                                   const char *arg);
static const char *cmd_body_tmpdir(cmd_parms *cmd, void *dconf,
                                   const char *arg);
static const char *cmd_health_drain(cmd_parms *cmd, void *dconf,
                                    const char *arg);
static const char *cmd_inherit_mounts(cmd_parms *cmd, void *dconf, int flag);
static const char *cmd_own_gil(cmd_parms *cmd, void *dconf, const char *arg);
static const char *admin_only(cmd_parms *cmd, int where);
static const char *admin_global(cmd_parms *cmd);
static int interp_index(apr_pool_t *p, const char *name, const char **err);
static void routes_sort(apr_array_header_t *routes);
static int interp_declare(apr_pool_t *p, const char *name, const char **err);
static const pw_target_t *target_declare(apr_pool_t *pconf, const char *target,
                                         const char *callable,
                                         const char *python_path,
                                         const char **err);

/* What the directives declared, for this reading of the configuration
 * (reset in pre_config; the children inherit it). */
static const char *interp_names[PW_MAX_INTERPS] = { "main" };
static char interp_lazy[PW_MAX_INTERPS];    /* created on first use */
static char interp_own_gil[PW_MAX_INTERPS]; /* PyWSGIOwnGIL */
static int interp_count = 1;
static apr_array_header_t *targets; /* const pw_target_t *, by id */
static apr_hash_t *target_index;    /* key of a target -> pw_target_t */

const command_rec pw_config_cmds[] = {
    AP_INIT_TAKE_ARGV(
        "PyWSGIScriptAlias", cmd_script_alias, NULL, RSRC_CONF | OR_ALL,
        "URL-PATH TARGET [callable=NAME] [interpreter=NAME] "
        "[python-path=DIR:DIR] [interface=wsgi|asgi]: serve the WSGI (or "
        "ASGI) application TARGET (a script file or package.module:callable) "
        "at URL-PATH"),
    AP_INIT_TAKE1(
        "PyWSGIInterpreter", cmd_interpreter, NULL,
        RSRC_CONF | ACCESS_CONF | OR_ALL,
        "main|NAME|%{SERVER}: the Python interpreter apps run in (default "
        "main, and the virtual host's own for files served by handler; a "
        "NAME is a sub-interpreter of its own)"),
    AP_INIT_TAKE_ARGV(
        "PyWSGIPreload", cmd_preload, NULL, RSRC_CONF | OR_ALL,
        "TARGET [callable=NAME] [interpreter=NAME]: load the app when a "
        "child starts, not on its first request"),
    AP_INIT_FLAG(
        "PyWSGIReload", cmd_reload, NULL, RSRC_CONF | ACCESS_CONF | OR_FILEINFO,
        "On|Off: reload an app whose file changed before the next request "
        "(default Off)"),
    AP_INIT_TAKE1("PyWSGIRequestTimeout", cmd_request_timeout, NULL,
                  RSRC_CONF | OR_ALL,
                  "SECONDS: interrupt a request that runs longer and "
                  "answer 504 (default 0, off)"),
    AP_INIT_TAKE1(
        "PyWSGIMaxRequests", cmd_max_requests, NULL, RSRC_CONF | OR_ALL,
        "N: recycle a child (graceful exit) after N requests (default 0, "
        "off)"),
    AP_INIT_TAKE1(
        "PyWSGIMaxMemory", cmd_max_memory, NULL, RSRC_CONF | OR_ALL,
        "MB: recycle a child (graceful exit) once its resident memory "
        "passes MB megabytes (default 0, off)"),
    AP_INIT_ITERATE("PyWSGIPythonPath", cmd_python_path, NULL,
                    RSRC_CONF | OR_ALL,
                    "DIR...: directories put in front of sys.path"),
    AP_INIT_TAKE1(
        "PyWSGIVirtualEnv", cmd_venv, NULL, RSRC_CONF | OR_ALL,
        "DIR: the virtualenv (a directory holding pyvenv.cfg) Python runs in"),
    AP_INIT_TAKE1("PyWSGIShutdownTimeout", cmd_shutdown_timeout, NULL,
                  RSRC_CONF | OR_ALL,
                  "SECONDS: how long a child may spend finalising Python "
                  "when it exits (default 5)"),
    AP_INIT_FLAG("PyWSGIPassAuthorization", cmd_pass_authorization, NULL,
                 RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                 "On|Off: pass the Authorization header to the app as "
                 "HTTP_AUTHORIZATION (default Off)"),
    AP_INIT_FLAG("PyWSGIMetrics", cmd_metrics, NULL, RSRC_CONF | OR_ALL,
                 "On|Off: keep request metrics in shared memory for the "
                 "pywsgi-status handler (default On)"),
    /* Not in .htaccess: the script runs in the server's own Python. */
    AP_INIT_TAKE_ARGV(
        "PyWSGIAuthScript", cmd_auth_script, NULL, RSRC_CONF | ACCESS_CONF,
        "FILE|package.module [interpreter=NAME]: the Python functions "
        "(check_password, get_realm_hash, groups_for_user) behind "
        "AuthBasicProvider pywsgi, AuthDigestProvider pywsgi and Require "
        "pywsgi-group here"),
    /* Not in .htaccess (no OR_* class): which URLs publish the figures is
     * the administrator's choice, never a tenant's (issue 12). */
    AP_INIT_TAKE1("PyWSGIStatus", cmd_status, NULL, RSRC_CONF | ACCESS_CONF,
                  "Off|On|Host: serve the pywsgi-status page here, with "
                  "every figure (On) or only this virtual host's apps "
                  "(Host); default Off"),
    AP_INIT_TAKE1(
        "PyWSGISlowRequest", cmd_slow_request, NULL, RSRC_CONF | OR_ALL,
        "SECONDS: log a warning for requests that take longer (decimals "
        "allowed; default 0, off)"),
    AP_INIT_TAKE1("PyWSGIChunkedRequest", cmd_chunked_request, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Buffer|Stream: read a chunked request body before the app "
                  "runs and give its CONTENT_LENGTH (default Buffer), or "
                  "hand it over as it arrives"),
    AP_INIT_TAKE1("PyWSGIRequestBodyBuffer", cmd_body_buffer, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "BYTES: how much of a buffered chunked request body is "
                  "kept in memory; the rest goes to an unlinked temporary "
                  "file (default 1048576)"),
    AP_INIT_TAKE1("PyWSGIRequestBodyTempDir", cmd_body_tmpdir, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "DIR: where buffered chunked request bodies beyond "
                  "PyWSGIRequestBodyBuffer go (default: the system's "
                  "temporary directory); must be writable by User"),
    AP_INIT_TAKE1("PyWSGIHealthDrain", cmd_health_drain, NULL, RSRC_CONF,
                  "FILE: while it exists, the pywsgi-health handler answers "
                  "503 (drain this node before stopping it)"),
    AP_INIT_FLAG("PyWSGIInheritMounts", cmd_inherit_mounts, NULL,
                 RSRC_CONF | OR_ALL,
                 "On|Off: a virtual host also serves the main server's "
                 "PyWSGIScriptAlias mounts (default On)"),
    AP_INIT_ITERATE("PyWSGIOwnGIL", cmd_own_gil, NULL, RSRC_CONF,
                    "NAME...: these named interpreters each get a GIL of "
                    "their own (PEP 684, Python 3.12+), so their requests "
                    "run in parallel (default: none; all share one GIL)"),
    { NULL }
};

void *pw_config_server_create(apr_pool_t *p, server_rec *s)
{
    pw_server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->routes = apr_array_make(p, 2, sizeof(pw_route_t));
    conf->python_path = apr_array_make(p, 2, sizeof(const char *));
    conf->shutdown_timeout = PW_UNSET;
    conf->metrics = PW_UNSET;
    conf->slow_request = PW_UNSET;
    conf->request_timeout = PW_UNSET;
    conf->preloads = apr_array_make(p, 1, sizeof(pw_preload_t));
    conf->inherit_mounts = PW_UNSET;
    conf->vhost_interp = -1;
    return conf;
}

void *pw_config_server_merge(apr_pool_t *p, void *basev, void *addv)
{
    pw_server_conf_t *base = basev, *add = addv;
    pw_server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    /* The vhost's routes first: on equal URL-PATHs its own line wins, as
     * routes_sort() keeps the order of equal lengths. */
    conf->routes = add->inherit_mounts == 0
                       ? apr_array_copy(p, add->routes)
                       : apr_array_append(p, add->routes, base->routes);
    routes_sort(conf->routes);
    conf->inherit_mounts = add->inherit_mounts;
    conf->vhost_interp = -1;
    /* Process-wide settings are only ever set on the main server. */
    conf->python_path = base->python_path;
    conf->venv = base->venv;
    conf->shutdown_timeout = base->shutdown_timeout;
    conf->metrics = base->metrics;
    conf->slow_request = PW_MERGE(base, add, slow_request);
    conf->request_timeout = PW_MERGE(base, add, request_timeout);
    conf->preloads = base->preloads;
    conf->max_requests = base->max_requests;
    conf->max_memory = base->max_memory;
    conf->health_drain = base->health_drain;
    return conf;
}

void *pw_config_dir_create(apr_pool_t *p, char *dir)
{
    pw_dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->pass_authorization = PW_UNSET;
    conf->reload = PW_UNSET;
    conf->interp = PW_UNSET;
    conf->status = PW_UNSET;
    conf->chunked_stream = PW_UNSET;
    conf->body_buffer = PW_UNSET;
    return conf;
}

void *pw_config_dir_merge(apr_pool_t *p, void *basev, void *addv)
{
    pw_dir_conf_t *base = basev, *add = addv;
    pw_dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->pass_authorization = PW_MERGE(base, add, pass_authorization);
    conf->reload = PW_MERGE(base, add, reload);
    conf->interp = PW_MERGE(base, add, interp);
    conf->chunked_stream = PW_MERGE(base, add, chunked_stream);
    conf->body_buffer = PW_MERGE(base, add, body_buffer);
    conf->body_tmpdir = add->body_tmpdir ? add->body_tmpdir : base->body_tmpdir;
    conf->auth_script = add->auth_script ? add->auth_script : base->auth_script;
    conf->auth_interp = add->auth_script ? add->auth_interp : base->auth_interp;
    conf->status = PW_MERGE(base, add, status);
    return conf;
}

/* Stable insertion sort, longest URL first: the lists are a few lines. */
static void routes_sort(apr_array_header_t *routes)
{
    pw_route_t *r = (pw_route_t *)routes->elts;
    int i, j;

    for (i = 1; i < routes->nelts; i++) {
        pw_route_t cur = r[i];
        for (j = i; j > 0 && r[j - 1].url_len < cur.url_len; j--) {
            r[j] = r[j - 1];
        }
        r[j] = cur;
    }
}

static const char *cmd_script_alias(cmd_parms *cmd, void *dconf, int argc,
                                    char *const argv[])
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *name = cmd->cmd->name;
    const char *callable = NULL, *err = NULL, *python_path = NULL;
    char *url;
    apr_size_t len;
    pw_route_t *route;
    const pw_target_t *app;
    int i, interp = -1, asgi = 0;

    if ((err = admin_only(cmd, PW_AT_SERVER)) != NULL) {
        return err;
    }
    if (argc < 2) {
        return apr_psprintf(cmd->pool,
                            "%s needs URL-PATH and TARGET, e.g. "
                            "'%s / /srv/app/app.py' or '%s / app:app'",
                            name, name, name);
    }
    if (argv[0][0] != '/') {
        return apr_psprintf(cmd->pool,
                            "%s: URL-PATH '%s' must start with "
                            "'/'",
                            name, argv[0]);
    }
    for (i = 2; i < argc; i++) {
        if (strncmp(argv[i], "callable=", 9) == 0 && argv[i][9]) {
            callable = argv[i] + 9;
        }
        else if (strncmp(argv[i], "interpreter=", 12) == 0) {
            interp = interp_index(cmd->pool, argv[i] + 12, &err);
            if (interp == -1) {
                return apr_psprintf(cmd->pool, "%s: %s", name, err);
            }
            if (interp == PW_INTERP_FILE) {
                return apr_psprintf(cmd->pool,
                                    "%s: interpreter=%%{RESOURCE} is for "
                                    "files served by handler; an alias "
                                    "is one app: give it "
                                    "interpreter=NAME",
                                    name);
            }
        }
        else if (strncmp(argv[i], "python-path=", 12) == 0 && argv[i][12]) {
            python_path = argv[i] + 12;
        }
        else if (strncmp(argv[i], "interface=", 10) == 0) {
            if (strcmp(argv[i] + 10, "asgi") == 0) {
                asgi = 1;
            }
            else if (strcmp(argv[i] + 10, "wsgi") == 0) {
                asgi = 0;
            }
            else {
                return apr_psprintf(cmd->pool,
                                    "%s: interface= must be wsgi (the "
                                    "default) or asgi, not '%s'",
                                    name, argv[i] + 10);
            }
        }
        else {
            return apr_psprintf(cmd->pool,
                                "%s: unknown option '%s' (known: "
                                "callable=NAME, interpreter=NAME, "
                                "python-path=DIR:DIR, interface=wsgi|asgi)",
                                name, argv[i]);
        }
    }

    if (asgi && interp > 0 && !PW_HAVE_ASGI_INTERPS) {
        /* Before 3.12, _asyncio keeps the running loop in state shared by
         * all interpreters: two loops in two interpreters clash. */
        return apr_psprintf(cmd->pool,
                            "%s: interface=asgi runs in the main interpreter "
                            "only with Python %s (asyncio cannot run a loop in "
                            "each of two interpreters before 3.12); drop "
                            "interpreter=%s",
                            name, PY_VERSION, interp_names[interp]);
    }
    app = target_declare(cmd->pool, argv[1], callable, python_path, &err);
    if (app == NULL) {
        return apr_psprintf(cmd->pool, "%s: %s", name, err);
    }
    if (app->kind == PW_TARGET_SCRIPT) {
        apr_finfo_t finfo;
        if (apr_stat(&finfo, app->path, APR_FINFO_TYPE, cmd->temp_pool)
                != APR_SUCCESS
            || finfo.filetype != APR_REG) {
            return apr_psprintf(cmd->pool,
                                "%s: script file '%s' does not "
                                "exist or is not a regular file",
                                name, app->path);
        }
    }

    /* "/app/" and "/app" are the same mount; "/" is SCRIPT_NAME "". */
    url = apr_pstrdup(cmd->pool, argv[0]);
    len = strlen(url);
    while (len > 0 && url[len - 1] == '/') {
        url[--len] = '\0';
    }
    route = apr_array_push(conf->routes);
    route->url = url;
    route->url_len = len;
    route->target = app;
    route->interp = interp;
    route->asgi = asgi;
    route->server = cmd->server;
    routes_sort(conf->routes);
    return NULL;
}

static const char *cmd_python_path(cmd_parms *cmd, void *dconf, const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_global(cmd);

    if (err) {
        return apr_pstrcat(cmd->pool, err,
                           " (one Python runs per child: "
                           "set it once, outside any <VirtualHost>)",
                           NULL);
    }
    *(const char **)apr_array_push(conf->python_path) =
        ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

const char *pw_config_venv_value(const char *venv, const char *key,
                                 apr_pool_t *p)
{
    apr_file_t *f;
    char buf[4096];
    apr_size_t len = sizeof(buf) - 1;
    char *line, *next, *val, *end;

    if (apr_file_open(&f, apr_pstrcat(p, venv, "/pyvenv.cfg", NULL),
                      APR_FOPEN_READ, APR_OS_DEFAULT, p)
        != APR_SUCCESS) {
        return NULL;
    }
    apr_file_read_full(f, buf, len, &len);
    apr_file_close(f);
    buf[len] = '\0';

    for (line = buf; line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        val = strchr(line, '=');
        if (!val) {
            continue;
        }
        *val++ = '\0';
        /* It returns the end of what it wrote, not its start. */
        apr_collapse_spaces(line, line);
        if (strcmp(line, key) != 0) {
            continue;
        }
        while (apr_isspace(*val)) {
            val++;
        }
        end = val + strlen(val);
        while (end > val && apr_isspace(end[-1])) {
            *--end = '\0';
        }
        return apr_pstrdup(p, val);
    }
    return NULL;
}

/* The Python version a virtualenv was made by, from its pyvenv.cfg
 * ("version = 3.12.1" from venv, "version_info = 3.12.1.final.0" from
 * virtualenv): "3.12.1" and, in *minor_out, "3.12"; NULL when it does not
 * say. */
static const char *venv_version(const char *venv, const char **minor_out,
                                apr_pool_t *p)
{
    const char *val = pw_config_venv_value(venv, "version", p);
    char *end;
    long major, minor, micro;

    if (val == NULL) {
        val = pw_config_venv_value(venv, "version_info", p);
    }
    if (val == NULL) {
        return NULL;
    }
    major = strtol(val, &end, 10);
    if (end == val || *end != '.') {
        return NULL;
    }
    val = end + 1;
    minor = strtol(val, &end, 10);
    if (end == val) {
        return NULL;
    }
    *minor_out = apr_psprintf(p, "%ld.%ld", major, minor);
    if (*end == '.' && apr_isdigit(end[1])) {
        micro = strtol(end + 1, NULL, 10);
        return apr_psprintf(p, "%ld.%ld.%ld", major, minor, micro);
    }
    return *minor_out;
}

static const char *cmd_venv(cmd_parms *cmd, void *dconf, const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_global(cmd);
    const char *dir, *cfg, *made_by, *made_by_minor = NULL;
    apr_finfo_t finfo;

    if (err) {
        return apr_pstrcat(cmd->pool, err,
                           " (one Python runs per child: "
                           "set it once, outside any <VirtualHost>)",
                           NULL);
    }
    if (conf->venv) {
        return apr_psprintf(cmd->pool,
                            "%s given twice: a child runs one "
                            "virtualenv",
                            cmd->cmd->name);
    }
    dir = ap_server_root_relative(cmd->pool, arg);
    cfg = apr_pstrcat(cmd->temp_pool, dir, "/pyvenv.cfg", NULL);
    if (apr_stat(&finfo, cfg, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS
        || finfo.filetype != APR_REG) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a virtualenv (no "
                            "pyvenv.cfg in it); create one with '%s -m venv "
                            "%s'",
                            cmd->cmd->name, dir,
                            PW_PYTHON_PREFIX "/bin/python3", dir);
    }
    /* A venv holds packages compiled for, and a site-packages named after,
     * the Python that made it; run by another version it fails at child
     * start with CPython's own, unhelpful message (init_fs_encoding). */
    made_by = venv_version(dir, &made_by_minor, cmd->temp_pool);
    if (made_by && strcmp(made_by_minor, PW_PY_MAJOR_MINOR) != 0) {
        return apr_psprintf(
            cmd->pool,
            "%s: '%s' was made by Python %s (its pyvenv.cfg "
            "says so), but mod_pywsgi runs Python " PW_PY_MAJOR_MINOR
            "; make the virtualenv again "
            "with '" PW_PYTHON_PREFIX "/bin/python" PW_PY_MAJOR_MINOR
            " -m venv %s', or build "
            "mod_pywsgi for Python %s (make -f Makefile.apxs "
            "PYTHON_CONFIG=<its python%s-config>)",
            cmd->cmd->name, dir, made_by, dir, made_by_minor, made_by_minor);
    }
    conf->venv = dir;
    return NULL;
}

static const char *cmd_shutdown_timeout(cmd_parms *cmd, void *dconf,
                                        const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_global(cmd);
    char *end;
    long secs;

    if (err) {
        return err;
    }
    secs = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || secs < 1 || secs > 3600) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of seconds "
                            "from 1 to 3600",
                            cmd->cmd->name, arg);
    }
    conf->shutdown_timeout = apr_time_from_sec(secs);
    return NULL;
}

static const char *cmd_pass_authorization(cmd_parms *cmd, void *dconf, int flag)
{
    ((pw_dir_conf_t *)dconf)->pass_authorization = flag;
    return NULL;
}

static const char *cmd_metrics(cmd_parms *cmd, void *dconf, int flag)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_global(cmd);

    if (err) {
        return apr_pstrcat(cmd->pool, err,
                           " (the metrics are kept for the "
                           "whole server)",
                           NULL);
    }
    conf->metrics = flag;
    return NULL;
}

static const char *cmd_slow_request(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    char *end;
    double secs = strtod(arg, &end);
    const char *err = admin_only(cmd, PW_AT_SERVER);

    if (err) {
        return err;
    }
    if (*arg == '\0' || *end != '\0' || secs < 0 || secs > 86400) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of seconds "
                            "from 0 (off) to 86400, e.g. 0.5",
                            cmd->cmd->name, arg);
    }
    conf->slow_request = (apr_interval_time_t)(secs * APR_USEC_PER_SEC);
    return NULL;
}

static const char *cmd_inherit_mounts(cmd_parms *cmd, void *dconf, int flag)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_only(cmd, PW_AT_SERVER);

    if (err) {
        return err;
    }
    conf->inherit_mounts = flag;
    return NULL;
}

/* PyWSGIOwnGIL NAME...: declared here as data; the child makes the
 * interpreter with a GIL of its own (pw_interp_create).  Refused where
 * CPython cannot: before 3.12 (PEP 684 came with it), and for main, which
 * C extensions without sub-interpreter support need (and whose GIL is the
 * one Python's own start made). */
static const char *cmd_own_gil(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = admin_global(cmd);
    int interp;

    if (err) {
        return err;
    }
    if (!PW_HAVE_OWN_GIL) {
        return apr_psprintf(cmd->pool,
                            "PyWSGIOwnGIL %s: interpreters with their own "
                            "GIL need Python 3.12 or later (PEP 684); this "
                            "mod_pywsgi is built for Python " PW_PY_MAJOR_MINOR
                            ": remove PyWSGIOwnGIL (the interpreter then "
                            "shares the GIL), or build the module against "
                            "Python 3.12+",
                            arg);
    }
    interp = interp_index(cmd->pool, arg, &err);
    if (interp == 0) {
        return apr_psprintf(cmd->pool,
                            "PyWSGIOwnGIL %s: main always shares its GIL "
                            "(the C extensions that need main would not "
                            "load with one of its own): name a "
                            "sub-interpreter (PyWSGIInterpreter NAME or "
                            "interpreter=NAME) instead",
                            arg);
    }
    if (interp < 0) {
        return apr_psprintf(cmd->pool, "PyWSGIOwnGIL: %s",
                            err ? err
                                : apr_psprintf(cmd->pool,
                                               "'%s' is made per host or "
                                               "per file; name an "
                                               "interpreter (letters, "
                                               "digits, '_', '-', '.')",
                                               arg));
    }
    interp_own_gil[interp] = 1;
    return NULL;
}

/* NULL when cmd may be used where it is, else the refusal.  A .htaccess is
 * a tenant's: none of the directives that call this is theirs to set. */
static const char *admin_only(cmd_parms *cmd, int where)
{
    const char *name = cmd->cmd->name;

    if (ap_check_cmd_context(cmd, NOT_IN_HTACCESS) != NULL) {
        return apr_psprintf(
            cmd->pool,
            "%s is %s, so not in .htaccess: the server's administrator "
            "sets it in %s%s",
            name,
            where == PW_AT_PROCESS ? "process wide (one Python per child)"
                                   : "a server setting",
            where == PW_AT_PROCESS ? "the main server configuration"
            : where == PW_AT_DIR   ? "the server configuration (server, "
                                     "<VirtualHost> or <Directory>)"
                                   : "the server configuration or a "
                                     "<VirtualHost>",
            where == PW_AT_PROCESS ? ""
                                   : " (a tenant serves a file as an app "
                                     "with 'AddHandler pywsgi-script .wsgi' "
                                     "and 'Options +ExecCGI' in .htaccess; "
                                     "see docs/shared-hosting.md)");
    }
    if (where != PW_AT_DIR) {
        const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
        if (err) {
            return apr_pstrcat(cmd->pool, err,
                               " (it belongs in the server configuration "
                               "or a <VirtualHost>)",
                               NULL);
        }
    }
    return NULL;
}

/* A process-wide directive: the main server configuration only. */
static const char *admin_global(cmd_parms *cmd)
{
    const char *err = admin_only(cmd, PW_AT_PROCESS);

    return err ? err : ap_check_cmd_context(cmd, GLOBAL_ONLY);
}

/* An interpreter=/PyWSGIInterpreter value: a name (declared if new), or
 * %{SERVER} (PW_INTERP_VHOST), %{GLOBAL} (main, as mod_wsgi spells it),
 * %{RESOURCE} (PW_INTERP_FILE: one per file served by handler).
 * -1 and *err when bad. */
static int interp_index(apr_pool_t *p, const char *name, const char **err)
{
    if (strcmp(name, "%{SERVER}") == 0) {
        return PW_INTERP_VHOST;
    }
    if (strcmp(name, "%{GLOBAL}") == 0) {
        return 0;
    }
    if (strcmp(name, "%{RESOURCE}") == 0) {
        return PW_INTERP_FILE;
    }
    if (name[0] == '%') {
        *err = apr_psprintf(p,
                            "'%s' is not an expansion mod_pywsgi knows: "
                            "%%{SERVER} (one interpreter per virtual "
                            "host), %%{RESOURCE} (one per file served by "
                            "handler) and %%{GLOBAL} (main) are",
                            name);
        return -1;
    }
    return interp_declare(p, name, err);
}

static const char *cmd_status(cmd_parms *cmd, void *dconf, const char *arg)
{
    pw_dir_conf_t *conf = dconf;

    if (strcasecmp(arg, "Off") == 0) {
        conf->status = PW_STATUS_OFF;
    }
    else if (strcasecmp(arg, "On") == 0) {
        conf->status = PW_STATUS_ON;
    }
    else if (strcasecmp(arg, "Host") == 0) {
        conf->status = PW_STATUS_HOST;
    }
    else {
        return apr_psprintf(cmd->pool,
                            "PyWSGIStatus: '%s' is not Off, On or Host "
                            "(On: every figure; Host: only this virtual "
                            "host's apps)",
                            arg);
    }
    return NULL;
}

static const char *cmd_chunked_request(cmd_parms *cmd, void *dconf,
                                       const char *arg)
{
    pw_dir_conf_t *conf = dconf;

    if (strcasecmp(arg, "Buffer") == 0) {
        conf->chunked_stream = 0;
    }
    else if (strcasecmp(arg, "Stream") == 0) {
        conf->chunked_stream = 1;
    }
    else {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is neither Buffer (read the body "
                            "before the app runs) nor Stream (hand it over "
                            "as it arrives)",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *cmd_body_buffer(cmd_parms *cmd, void *dconf, const char *arg)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || n < 0 || n > PW_MAX_BODY_BUFFER) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of bytes from 0 "
                            "(always a file) to %d, e.g. 1048576",
                            cmd->cmd->name, arg, PW_MAX_BODY_BUFFER);
    }
    ((pw_dir_conf_t *)dconf)->body_buffer = (apr_off_t)n;
    return NULL;
}

static const char *cmd_body_tmpdir(cmd_parms *cmd, void *dconf, const char *arg)
{
    apr_finfo_t fi;

    /* Checked here as root; that User may write there shows at the first
     * spooled body (PW0315). */
    if (!ap_os_is_path_absolute(cmd->pool, arg)
        || apr_stat(&fi, arg, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS
        || fi.filetype != APR_DIR) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not an existing directory given by "
                            "its absolute path (one User can write to, e.g. "
                            "/var/tmp)",
                            cmd->cmd->name, arg);
    }
    ((pw_dir_conf_t *)dconf)->body_tmpdir = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

static const char *cmd_interpreter(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = admin_only(cmd, PW_AT_DIR);
    int interp;

    if (err) {
        return err;
    }
    interp = interp_index(cmd->pool, arg, &err);
    if (interp == -1) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    ((pw_dir_conf_t *)dconf)->interp = interp;
    return NULL;
}

static const char *cmd_preload(cmd_parms *cmd, void *dconf, int argc,
                               char *const argv[])
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_global(cmd);
    const char *callable = NULL;
    pw_preload_t *pre;
    const pw_target_t *app;
    int i, interp = 0;

    if (err) {
        return err;
    }
    if (argc < 1) {
        return apr_psprintf(cmd->pool,
                            "%s needs a TARGET, as written in its "
                            "PyWSGIScriptAlias",
                            cmd->cmd->name);
    }
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "callable=", 9) == 0 && argv[i][9]) {
            callable = argv[i] + 9;
        }
        else if (strncmp(argv[i], "interpreter=", 12) == 0) {
            interp = interp_declare(cmd->pool, argv[i] + 12, &err);
            if (interp < 0) {
                return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
            }
        }
        else {
            return apr_psprintf(cmd->pool,
                                "%s: unknown option '%s' (known: "
                                "callable=NAME, interpreter=NAME)",
                                cmd->cmd->name, argv[i]);
        }
    }
    app = target_declare(cmd->pool, argv[0], callable, NULL, &err);
    if (app == NULL) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    pre = apr_array_push(conf->preloads);
    pre->target = app;
    pre->interp = interp;
    return NULL;
}

static const char *cmd_reload(cmd_parms *cmd, void *dconf, int flag)
{
    ((pw_dir_conf_t *)dconf)->reload = flag;
    return NULL;
}

/* The script is a target whose object is the module itself (callable ""):
 * pw_auth.c looks its functions up by name. */
static const char *cmd_auth_script(cmd_parms *cmd, void *dconf, int argc,
                                   char *const argv[])
{
    pw_dir_conf_t *conf = dconf;
    const char *name = cmd->cmd->name, *err = NULL, *slash;
    const pw_target_t *script;
    int i, interp = 0;

    if (argc < 1) {
        return apr_psprintf(cmd->pool,
                            "%s needs a script file or package.module, e.g. "
                            "'%s /srv/app/auth.py'",
                            name, name);
    }
    slash = strrchr(argv[0], '/');
    if (strchr(slash ? slash : argv[0], ':')) {
        return apr_psprintf(cmd->pool,
                            "%s: name the script or module only ('%s' names "
                            "a callable): mod_pywsgi calls its "
                            "check_password, get_realm_hash and "
                            "groups_for_user",
                            name, argv[0]);
    }
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "interpreter=", 12) == 0) {
            interp = interp_declare(cmd->pool, argv[i] + 12, &err);
            if (interp < 0) {
                return apr_psprintf(cmd->pool, "%s: %s", name, err);
            }
        }
        else {
            return apr_psprintf(cmd->pool,
                                "%s: unknown option '%s' (known: "
                                "interpreter=NAME)",
                                name, argv[i]);
        }
    }
    script = target_declare(cmd->pool, argv[0], "", NULL, &err);
    if (script == NULL) {
        return apr_psprintf(cmd->pool, "%s: %s", name, err);
    }
    if (script->kind == PW_TARGET_SCRIPT) {
        apr_finfo_t finfo;
        if (apr_stat(&finfo, script->path, APR_FINFO_TYPE, cmd->temp_pool)
                != APR_SUCCESS
            || finfo.filetype != APR_REG) {
            return apr_psprintf(cmd->pool,
                                "%s: script file '%s' does not "
                                "exist or is not a regular file",
                                name, script->path);
        }
    }
    conf->auth_script = script;
    conf->auth_interp = interp;
    return NULL;
}

/* A whole number from 1 to max, or the directive's own error. */
static const char *parse_count(cmd_parms *cmd, const char *arg, long max,
                               const char *what, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || v < 0 || v > max) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not %s from 0 (off) to "
                            "%ld",
                            cmd->cmd->name, arg, what, max);
    }
    *out = v;
    return NULL;
}

static const char *cmd_request_timeout(cmd_parms *cmd, void *dconf,
                                       const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    long v;
    const char *err = admin_only(cmd, PW_AT_SERVER);

    if (err
        || (err = parse_count(cmd, arg, 86400, "a number of seconds", &v))) {
        return err;
    }
    conf->request_timeout = apr_time_from_sec(v);
    return NULL;
}

static const char *cmd_max_requests(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_global(cmd);
    long v;

    if (err
        || (err = parse_count(cmd, arg, 1000000000L,
                              "a number of "
                              "requests",
                              &v))) {
        return err;
    }
    conf->max_requests = (int)v;
    return NULL;
}

static const char *cmd_max_memory(cmd_parms *cmd, void *dconf, const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = admin_global(cmd);
    long v;

    if (err
        || (err = parse_count(cmd, arg, 1048576L,
                              "a number of "
                              "megabytes",
                              &v))) {
        return err;
    }
    conf->max_memory = (apr_off_t)v * 1024 * 1024;
    return NULL;
}

pw_route_t *pw_config_route(server_rec *s, const char *uri)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    pw_route_t *route = (pw_route_t *)conf->routes->elts;
    int i;

    for (i = 0; i < conf->routes->nelts; i++, route++) {
        if (pw_http_under_mount(uri, route->url, route->url_len)) {
            return route;
        }
    }
    return NULL;
}

const apr_array_header_t *pw_config_routes(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->routes;
}

pw_status_mode_t pw_config_status(request_rec *r)
{
    pw_dir_conf_t *d = ap_get_module_config(r->per_dir_config, &pywsgi_module);
    return d->status == PW_UNSET ? PW_STATUS_OFF : d->status;
}

const apr_array_header_t *pw_config_python_path(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->python_path;
}

/* The file comes and goes (it is the operator's switch); its directory
 * must be there, or a typo would make a node that can never be drained. */
static const char *cmd_health_drain(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *path, *slash;
    apr_finfo_t finfo;

    if (err) {
        return apr_pstrcat(cmd->pool, err,
                           " (one drain file per node: set it once, "
                           "outside any <VirtualHost>)",
                           NULL);
    }
    path = ap_server_root_relative(cmd->pool, arg);
    if (path == NULL || *arg == '\0') {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid path",
                            cmd->cmd->name, arg);
    }
    slash = strrchr(path, '/');
    if (slash != NULL && slash != path) {
        const char *dir =
            apr_pstrmemdup(cmd->temp_pool, path, (apr_size_t)(slash - path));

        if (apr_stat(&finfo, dir, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS
            || finfo.filetype != APR_DIR) {
            return apr_psprintf(cmd->pool,
                                "%s: the directory %s does not exist: "
                                "create it, or name a file in an existing "
                                "directory",
                                cmd->cmd->name, dir);
        }
    }
    conf->health_drain = path;
    return NULL;
}

const char *pw_config_health_drain(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->health_drain;
}

const char *pw_config_venv(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->venv;
}

apr_interval_time_t pw_config_shutdown_timeout(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->shutdown_timeout == PW_UNSET ? PW_DEFAULT_SHUTDOWN_TIMEOUT
                                              : conf->shutdown_timeout;
}

int pw_config_metrics(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->metrics == PW_UNSET ? PW_DEFAULT_METRICS : conf->metrics;
}

const apr_array_header_t *pw_config_preloads(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->preloads;
}

int pw_config_max_requests(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->max_requests;
}

apr_off_t pw_config_max_memory(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->max_memory;
}

apr_interval_time_t pw_config_request_timeout(server_rec *s)
{
    pw_server_conf_t *conf =
        ap_get_module_config(s->module_config, &pywsgi_module);
    return conf->request_timeout == PW_UNSET ? 0 : conf->request_timeout;
}

const pw_target_t *pw_config_auth_script(request_rec *r, int *interp)
{
    pw_dir_conf_t *d = ap_get_module_config(r->per_dir_config, &pywsgi_module);

    *interp = d->auth_interp;
    return d->auth_script;
}

void pw_config_request(request_rec *r, const pw_route_t *route,
                       pw_request_conf_t *out)
{
    pw_dir_conf_t *d = ap_get_module_config(r->per_dir_config, &pywsgi_module);
    pw_server_conf_t *sc =
        ap_get_module_config(r->server->module_config, &pywsgi_module);

    /* The alias's interpreter=, else PyWSGIInterpreter, else main. */
    out->interp = route->interp != -1     ? route->interp
                  : d->interp == PW_UNSET ? PW_DEFAULT_INTERP
                                          : d->interp;
    if (out->interp < 0) { /* %{SERVER}; %{RESOURCE} is for files */
        out->interp = sc->vhost_interp >= 0 ? sc->vhost_interp : 0;
    }
    out->reload = d->reload == PW_UNSET ? PW_DEFAULT_RELOAD : d->reload;
    out->pass_authorization = d->pass_authorization == PW_UNSET
                                  ? PW_DEFAULT_PASS_AUTHORIZATION
                                  : d->pass_authorization;
    out->request_timeout =
        sc->request_timeout == PW_UNSET ? 0 : sc->request_timeout;
    out->slow_request = sc->slow_request == PW_UNSET ? PW_DEFAULT_SLOW_REQUEST
                                                     : sc->slow_request;
    out->chunked_stream = d->chunked_stream == PW_UNSET
                              ? PW_DEFAULT_CHUNKED_STREAM
                              : d->chunked_stream;
    out->body_buffer = d->body_buffer == PW_UNSET ? PW_DEFAULT_BODY_BUFFER
                                                  : (apr_size_t)d->body_buffer;
    out->body_tmpdir = d->body_tmpdir;
}

void pw_config_file_request(request_rec *r, const pw_route_t *route,
                            pw_request_conf_t *out)
{
    pw_dir_conf_t *d = ap_get_module_config(r->per_dir_config, &pywsgi_module);
    pw_server_conf_t *sc =
        ap_get_module_config(r->server->module_config, &pywsgi_module);

    pw_config_request(r, route, out);
    /* A file served by handler runs in its virtual host's interpreter
     * unless PyWSGIInterpreter says otherwise, and is reloaded when it
     * changes: a tenant's edit is their deployment. */
    if (d->interp == PW_UNSET
        && (sc->vhost_interp >= 0 || sc->vhost_interp == PW_INTERP_NONE)) {
        out->interp = sc->vhost_interp;
    }
    else if (d->interp == PW_INTERP_FILE) {
        out->interp = PW_INTERP_FILE; /* the handler asks pw_app which */
    }
    out->reload = 1;
}

/* ---- declarations: interpreter names and targets ------------------------ */

void pw_config_pre_config(apr_pool_t *pconf)
{
    interp_count = 1;
    memset(interp_lazy, 0, sizeof(interp_lazy));
    memset(interp_own_gil, 0, sizeof(interp_own_gil));
    targets = apr_array_make(pconf, 4, sizeof(const pw_target_t *));
    target_index = apr_hash_make(pconf);
}

int pw_config_interp_count(void)
{
    return interp_count;
}

int pw_config_interp_own_gil(int interp)
{
    return interp > 0 && interp < PW_MAX_INTERPS && interp_own_gil[interp];
}

int pw_config_interp_lazy(int interp)
{
    /* Past the declared ones: a file's own (%{RESOURCE}), made at run
     * time. */
    return interp > 0 && (interp >= interp_count || interp_lazy[interp]);
}

/*
 * check_config (also run by configtest): each virtual host whose handler-
 * served files would run in its own interpreter (no PyWSGIInterpreter NAME
 * at its server level) gets one, named "vhost:NAME:PORT".  Only declared:
 * a child creates it when a request first needs it (pw_interp.c), so hosts
 * that serve no such file pay nothing.
 */
/* check_config's PW0704, for post_config to log again (pconf). */
static const char *overflow_warning;

int pw_config_check(apr_pool_t *pconf, server_rec *main_s)
{
    server_rec *s;
    pw_server_conf_t *msc =
        ap_get_module_config(main_s->module_config, &pywsgi_module);
    apr_hash_t *seen = apr_hash_make(pconf);
    const char *left = NULL;
    int overflow = 0;

    /* mpm-itk: children run as root until a connection's process switches
     * to its host's user; a preload would run app code as root. */
    if (msc->preloads->nelts > 0 && ap_find_linked_module("mpm_itk.c")) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, main_s,
                     "PW0706: PyWSGIPreload imports apps when a child "
                     "starts, and under mpm-itk a child starts as root "
                     "(it takes a tenant's user per connection): remove "
                     "PyWSGIPreload; each app then loads on its first "
                     "request, as its host's user");
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    for (s = main_s; s; s = s->next) {
        pw_server_conf_t *sc =
            ap_get_module_config(s->module_config, &pywsgi_module);
        pw_dir_conf_t *d =
            ap_get_module_config(s->lookup_defaults, &pywsgi_module);
        const char *name;
        int i;

        /* A host with no PyWSGI directive of its own holds the main
         * server's record itself (Apache merges only for the modules a
         * host configures): its interpreter is its own, so is its record
         * from here on.  Else every such host would run in the one the
         * last of them was given. */
        if (apr_hash_get(seen, &sc, sizeof(sc))) {
            sc = apr_pmemdup(pconf, sc, sizeof(*sc));
            ap_set_module_config(s->module_config, &pywsgi_module, sc);
        }
        apr_hash_set(seen, apr_pmemdup(pconf, &sc, sizeof(sc)), sizeof(sc), "");
        if (d->interp >= 0) {
            sc->vhost_interp = d->interp; /* the administrator chose */
            continue;
        }
        name = apr_psprintf(apr_hook_global_pool, "vhost:%s:%u",
                            s->server_hostname ? s->server_hostname : "?",
                            s->port ? s->port
                                    : (s->addrs ? s->addrs->host_port : 0));
        for (i = 1; i < interp_count; i++) {
            if (strcmp(interp_names[i], name) == 0) {
                break;
            }
        }
        if (i == interp_count) {
            if (interp_count == PW_MAX_INTERPS) {
                /* Never a reason to refuse the whole configuration (a
                 * mass-hosting server may have thousands of hosts that
                 * serve no file by handler): such a host's files get 500
                 * and PW0708 until it is given a shared interpreter.
                 * Which hosts those are depends on Apache's order (it
                 * lists them last to first), so the warning names some. */
                if (overflow++ < 3) {
                    left = apr_pstrcat(pconf, left ? left : "",
                                       left ? ", " : "", name, NULL);
                }
                sc->vhost_interp = PW_INTERP_NONE;
                continue;
            }
            interp_names[interp_count] = name;
            interp_lazy[interp_count] = 1;
            interp_count++;
        }
        sc->vhost_interp = i;
    }
    overflow_warning = NULL;
    if (overflow) {
        overflow_warning = apr_psprintf(
            pconf,
            "PW0704: more than %d interpreters: %d virtual host%s get%s "
            "none of their own for files served by handler (pywsgi-script; "
            "those get 500, PW0708): %s%s. Give such hosts a shared one "
            "with 'PyWSGIInterpreter NAME' in their <VirtualHost> (or in "
            "the main server, for all)",
            PW_MAX_INTERPS - 1, overflow, overflow > 1 ? "s" : "",
            overflow > 1 ? "" : "s", left,
            overflow > 3 ? apr_psprintf(pconf, " and %d more", overflow - 3)
                         : "");
        /* Before the error log is open: on the terminal (configtest, the
         * first of the two startup passes).  The real pass says it again
         * once the log is open (pw_config_post_config). */
        if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0, main_s,
                         "%s", overflow_warning);
        }
    }
    return OK;
}

void pw_config_post_config(server_rec *s)
{
    if (overflow_warning
        && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s", overflow_warning);
    }
}

const char *pw_config_interp_name(int interp)
{
    return interp >= 0 && interp < interp_count ? interp_names[interp] : "?";
}

int pw_config_target_count(void)
{
    return targets ? targets->nelts : 0;
}

const pw_target_t *pw_config_target(int id)
{
    return APR_ARRAY_IDX(targets, id, const pw_target_t *);
}

/* The index of interpreter name ("main" is 0), declaring it if new.  -1
 * and *err when the name is bad or there are too many. */
static int interp_declare(apr_pool_t *p, const char *name, const char **err)
{
    const char *c;
    int i;

    if (*name == '\0') {
        *err = "an interpreter needs a name ('main' or letters, digits, "
               "'_', '-', '.')";
        return -1;
    }
    for (c = name; *c; c++) {
        if (!apr_isalnum(*c) && *c != '_' && *c != '-' && *c != '.') {
            *err = apr_psprintf(p,
                                "interpreter name '%s' may hold only "
                                "letters, digits, '_', '-' and '.'",
                                name);
            return -1;
        }
    }
    for (i = 0; i < interp_count; i++) {
        if (strcmp(interp_names[i], name) == 0) {
            return i;
        }
    }
    if (interp_count == PW_MAX_INTERPS) {
        *err =
            apr_psprintf(p, "more than %d interpreters; '%s' is one too many",
                         PW_MAX_INTERPS - 1, name);
        return -1;
    }
    /* The hook pool lives as long as the configuration does. */
    interp_names[interp_count] = apr_pstrdup(apr_hook_global_pool, name);
    return interp_count++;
}

/* identifier ("." identifier)*, ASCII only: what gunicorn accepts too. */
static int is_dotted_name(const char *s, apr_size_t len)
{
    apr_size_t i;
    int start = 1;

    if (len == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (start) {
                return 0;
            }
            start = 1;
            continue;
        }
        if (!(apr_isalpha(c) || c == '_' || (!start && apr_isdigit(c)))) {
            return 0;
        }
        start = 0;
    }
    return !start;
}

/* Parse TARGET (and an optional callable= value).  The same target named
 * twice gives the same pw_target_t.  NULL and *err when malformed. */
static const pw_target_t *target_declare(apr_pool_t *pconf, const char *target,
                                         const char *callable,
                                         const char *python_path,
                                         const char **err)
{
    pw_target_t t = { 0 }, *found;
    const char *colon, *slash, *key;
    apr_size_t len = strlen(target);

    slash = strrchr(target, '/');
    colon = strrchr(slash ? slash : target, ':');
    t.target = apr_pstrdup(pconf, target);

    if (colon && callable) {
        *err = "give the callable either after ':' or as callable=NAME, "
               "not both";
        return NULL;
    }
    if (slash || (len > 3 && strcmp(target + len - 3, ".py") == 0)) {
        t.kind = PW_TARGET_SCRIPT;
        /* "/srv/app.py:app" is accepted as gunicorn users would expect. */
        t.path = ap_server_root_relative(
            pconf,
            colon ? apr_pstrmemdup(pconf, target, colon - target) : target);
    }
    else {
        t.kind = PW_TARGET_MODULE;
        t.path =
            colon ? apr_pstrmemdup(pconf, target, colon - target) : t.target;
        if (!is_dotted_name(t.path, strlen(t.path))) {
            *err = apr_psprintf(pconf,
                                "'%s' is neither a script file (a path"
                                " or a name ending in .py) nor "
                                "package.module:callable",
                                target);
            return NULL;
        }
    }
    if (colon) {
        callable = colon + 1;
    }
    if (callable == NULL) {
        callable = "application"; /* PEP 3333's customary name */
    }
    len = strlen(callable);
    if (len > 2 && strcmp(callable + len - 2, "()") == 0) {
        t.call_factory = 1;
        len -= 2;
    }
    /* "" from a directive (never from the config text, whose "file:" has
     * an empty name after the colon): the module is the object. */
    if (!(len == 0 && !colon) && !is_dotted_name(callable, len)) {
        *err = apr_psprintf(pconf,
                            "callable '%s' is not a Python name (nor "
                            "name() for a factory)",
                            callable);
        return NULL;
    }
    t.callable = apr_pstrmemdup(pconf, callable, len);
    t.python_path = python_path ? apr_pstrdup(pconf, python_path) : NULL;

    key = apr_psprintf(pconf, "%d|%s|%s|%d|%s", t.kind, t.path, t.callable,
                       t.call_factory, python_path ? python_path : "");
    found = apr_hash_get(target_index, key, APR_HASH_KEY_STRING);
    if (found) {
        return found;
    }
    if (t.kind == PW_TARGET_SCRIPT) {
        t.module_name =
            apr_pstrcat(pconf, "_pywsgi_",
                        ap_md5(pconf, (const unsigned char *)t.path), NULL);
    }
    t.id = targets->nelts;
    found = apr_pmemdup(pconf, &t, sizeof(t));
    apr_hash_set(target_index, key, APR_HASH_KEY_STRING, found);
    *(const pw_target_t **)apr_array_push(targets) = found;
    return found;
}
