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
 */
#include "pw_config.h"
#include "pw_http.h"
#include "apr_file_info.h"
#include "apr_hash.h"
#include "apr_lib.h"
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
} pw_server_conf_t;

typedef struct {
    int pass_authorization; /* PW_UNSET, 0, 1 */
    int reload;             /* PW_UNSET, 0, 1 */
    int interp;             /* PW_UNSET or an interpreter index */
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
static const char *cmd_request_timeout(cmd_parms *cmd, void *dconf,
                                       const char *arg);
static const char *cmd_max_requests(cmd_parms *cmd, void *dconf,
                                    const char *arg);
static const char *cmd_max_memory(cmd_parms *cmd, void *dconf, const char *arg);
static const char *cmd_slow_request(cmd_parms *cmd, void *dconf,
                                    const char *arg);
static const char *cmd_health_drain(cmd_parms *cmd, void *dconf,
                                    const char *arg);
static void routes_sort(apr_array_header_t *routes);
static int interp_declare(apr_pool_t *p, const char *name, const char **err);
static const pw_target_t *target_declare(apr_pool_t *pconf, const char *target,
                                         const char *callable,
                                         const char *python_path,
                                         const char **err);

/* What the directives declared, for this reading of the configuration
 * (reset in pre_config; the children inherit it). */
static const char *interp_names[PW_MAX_INTERPS] = { "main" };
static int interp_count = 1;
static apr_array_header_t *targets; /* const pw_target_t *, by id */
static apr_hash_t *target_index;    /* key of a target -> pw_target_t */

const command_rec pw_config_cmds[] = {
    AP_INIT_TAKE_ARGV(
        "PyWSGIScriptAlias", cmd_script_alias, NULL, RSRC_CONF,
        "URL-PATH TARGET [callable=NAME] [interpreter=NAME] "
        "[python-path=DIR:DIR]: serve the WSGI application TARGET (a script "
        "file or package.module:callable) at URL-PATH"),
    AP_INIT_TAKE1(
        "PyWSGIInterpreter", cmd_interpreter, NULL, RSRC_CONF | ACCESS_CONF,
        "main|NAME: the Python interpreter apps run in (default main; a "
        "NAME is a sub-interpreter of its own)"),
    AP_INIT_TAKE_ARGV(
        "PyWSGIPreload", cmd_preload, NULL, RSRC_CONF,
        "TARGET [callable=NAME] [interpreter=NAME]: load the app when a "
        "child starts, not on its first request"),
    AP_INIT_FLAG(
        "PyWSGIReload", cmd_reload, NULL, RSRC_CONF | ACCESS_CONF,
        "On|Off: reload an app whose file changed before the next request "
        "(default Off)"),
    AP_INIT_TAKE1("PyWSGIRequestTimeout", cmd_request_timeout, NULL, RSRC_CONF,
                  "SECONDS: interrupt a request that runs longer and "
                  "answer 504 (default 0, off)"),
    AP_INIT_TAKE1(
        "PyWSGIMaxRequests", cmd_max_requests, NULL, RSRC_CONF,
        "N: recycle a child (graceful exit) after N requests (default 0, "
        "off)"),
    AP_INIT_TAKE1(
        "PyWSGIMaxMemory", cmd_max_memory, NULL, RSRC_CONF,
        "MB: recycle a child (graceful exit) once its resident memory "
        "passes MB megabytes (default 0, off)"),
    AP_INIT_ITERATE("PyWSGIPythonPath", cmd_python_path, NULL, RSRC_CONF,
                    "DIR...: directories put in front of sys.path"),
    AP_INIT_TAKE1(
        "PyWSGIVirtualEnv", cmd_venv, NULL, RSRC_CONF,
        "DIR: the virtualenv (a directory holding pyvenv.cfg) Python runs in"),
    AP_INIT_TAKE1("PyWSGIShutdownTimeout", cmd_shutdown_timeout, NULL,
                  RSRC_CONF,
                  "SECONDS: how long a child may spend finalising Python "
                  "when it exits (default 5)"),
    AP_INIT_FLAG("PyWSGIPassAuthorization", cmd_pass_authorization, NULL,
                 RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                 "On|Off: pass the Authorization header to the app as "
                 "HTTP_AUTHORIZATION (default Off)"),
    AP_INIT_FLAG("PyWSGIMetrics", cmd_metrics, NULL, RSRC_CONF,
                 "On|Off: keep request metrics in shared memory for the "
                 "pywsgi-status handler (default On)"),
    AP_INIT_TAKE1(
        "PyWSGISlowRequest", cmd_slow_request, NULL, RSRC_CONF,
        "SECONDS: log a warning for requests that take longer (decimals "
        "allowed; default 0, off)"),
    AP_INIT_TAKE1("PyWSGIHealthDrain", cmd_health_drain, NULL, RSRC_CONF,
                  "FILE: while it exists, the pywsgi-health handler answers "
                  "503 (drain this node before stopping it)"),
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
    return conf;
}

void *pw_config_server_merge(apr_pool_t *p, void *basev, void *addv)
{
    pw_server_conf_t *base = basev, *add = addv;
    pw_server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    /* The vhost's routes first: on equal URL-PATHs its own line wins, as
     * routes_sort() keeps the order of equal lengths. */
    conf->routes = apr_array_append(p, add->routes, base->routes);
    routes_sort(conf->routes);
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
    return conf;
}

void *pw_config_dir_merge(apr_pool_t *p, void *basev, void *addv)
{
    pw_dir_conf_t *base = basev, *add = addv;
    pw_dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->pass_authorization = PW_MERGE(base, add, pass_authorization);
    conf->reload = PW_MERGE(base, add, reload);
    conf->interp = PW_MERGE(base, add, interp);
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
    int i, interp = -1;

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
            interp = interp_declare(cmd->pool, argv[i] + 12, &err);
            if (interp < 0) {
                return apr_psprintf(cmd->pool, "%s: %s", name, err);
            }
        }
        else if (strncmp(argv[i], "python-path=", 12) == 0 && argv[i][12]) {
            python_path = argv[i] + 12;
        }
        else {
            return apr_psprintf(cmd->pool,
                                "%s: unknown option '%s' (known: "
                                "callable=NAME, interpreter=NAME, "
                                "python-path=DIR:DIR)",
                                name, argv[i]);
        }
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
    routes_sort(conf->routes);
    return NULL;
}

static const char *cmd_python_path(cmd_parms *cmd, void *dconf, const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

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

/* The Python version a virtualenv was made by, from its pyvenv.cfg
 * ("version = 3.12.1" from venv, "version_info = 3.12.1.final.0" from
 * virtualenv): "3.12.1" and, in *minor_out, "3.12"; NULL when it does not
 * say.  Reads at most 4 KiB. */
static const char *venv_version(const char *cfg, const char **minor_out,
                                apr_pool_t *p)
{
    apr_file_t *f;
    char buf[4096];
    apr_size_t len = sizeof(buf) - 1;
    char *line, *next, *key, *val, *end;
    long major, minor, micro;

    if (apr_file_open(&f, cfg, APR_FOPEN_READ, APR_OS_DEFAULT, p)
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
        key = line;
        if (strcmp(key, "version") && strcmp(key, "version_info")) {
            continue;
        }
        major = strtol(val, &end, 10);
        if (end == val || *end != '.') {
            continue;
        }
        val = end + 1;
        minor = strtol(val, &end, 10);
        if (end == val) {
            continue;
        }
        *minor_out = apr_psprintf(p, "%ld.%ld", major, minor);
        if (*end == '.' && apr_isdigit(end[1])) {
            micro = strtol(end + 1, NULL, 10);
            return apr_psprintf(p, "%ld.%ld.%ld", major, minor, micro);
        }
        return *minor_out;
    }
    return NULL;
}

static const char *cmd_venv(cmd_parms *cmd, void *dconf, const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
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
    made_by = venv_version(cfg, &made_by_minor, cmd->temp_pool);
    if (made_by && strcmp(made_by_minor, PW_PY_MAJOR_MINOR) != 0) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' was made by Python %s (its pyvenv.cfg "
                            "says so), but mod_pywsgi runs Python "
                            PW_PY_MAJOR_MINOR "; make the virtualenv again "
                            "with '" PW_PYTHON_PREFIX "/bin/python"
                            PW_PY_MAJOR_MINOR " -m venv %s', or build "
                            "mod_pywsgi for Python %s (make -f Makefile.apxs "
                            "PYTHON_CONFIG=<its python%s-config>)",
                            cmd->cmd->name, dir, made_by, dir,
                            made_by_minor, made_by_minor);
    }
    conf->venv = dir;
    return NULL;
}

static const char *cmd_shutdown_timeout(cmd_parms *cmd, void *dconf,
                                        const char *arg)
{
    pw_server_conf_t *conf =
        ap_get_module_config(cmd->server->module_config, &pywsgi_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
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
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

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

    if (*arg == '\0' || *end != '\0' || secs < 0 || secs > 86400) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of seconds "
                            "from 0 (off) to 86400, e.g. 0.5",
                            cmd->cmd->name, arg);
    }
    conf->slow_request = (apr_interval_time_t)(secs * APR_USEC_PER_SEC);
    return NULL;
}

static const char *cmd_interpreter(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = NULL;
    int interp = interp_declare(cmd->pool, arg, &err);

    if (interp < 0) {
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
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
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
    const char *err = parse_count(cmd, arg, 86400, "a number of seconds", &v);

    if (err) {
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
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
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
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
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

void pw_config_request(request_rec *r, const pw_route_t *route,
                       pw_request_conf_t *out)
{
    pw_dir_conf_t *d = ap_get_module_config(r->per_dir_config, &pywsgi_module);
    pw_server_conf_t *sc =
        ap_get_module_config(r->server->module_config, &pywsgi_module);

    /* The alias's interpreter=, else PyWSGIInterpreter, else main. */
    out->interp = route->interp >= 0      ? route->interp
                  : d->interp == PW_UNSET ? PW_DEFAULT_INTERP
                                          : d->interp;
    out->reload = d->reload == PW_UNSET ? PW_DEFAULT_RELOAD : d->reload;
    out->pass_authorization = d->pass_authorization == PW_UNSET
                                  ? PW_DEFAULT_PASS_AUTHORIZATION
                                  : d->pass_authorization;
    out->request_timeout =
        sc->request_timeout == PW_UNSET ? 0 : sc->request_timeout;
    out->slow_request = sc->slow_request == PW_UNSET ? PW_DEFAULT_SLOW_REQUEST
                                                     : sc->slow_request;
}

/* ---- declarations: interpreter names and targets ------------------------ */

void pw_config_pre_config(apr_pool_t *pconf)
{
    interp_count = 1;
    targets = apr_array_make(pconf, 4, sizeof(const pw_target_t *));
    target_index = apr_hash_make(pconf);
}

int pw_config_interp_count(void)
{
    return interp_count;
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
    if (!is_dotted_name(callable, len)) {
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
