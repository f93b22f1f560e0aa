/*
 * pw_config.h: the directives, their defaults and the getters the rest of
 * the module asks.  Nothing here calls Python.
 */
#ifndef PW_CONFIG_H
#define PW_CONFIG_H

#include "pw_common.h"
#include "pw_app.h"

/* One PyWSGIScriptAlias line. */
typedef struct {
    const char *url; /* no trailing '/', "" for the root */
    apr_size_t url_len;
    pw_app_t *app;
    int interp; /* interpreter=NAME, or -1: PyWSGIInterpreter */
    /* SCRIPT_NAME as a str per interpreter, made on first use with that
     * interpreter's GIL held (pw_environ.c) and kept for the child's life. */
    PyObject *script_name[PW_MAX_INTERPS];
} pw_route_t;

/* One PyWSGIPreload line. */
typedef struct {
    pw_app_t *app;
    int interp;
} pw_preload_t;

extern const command_rec pw_config_cmds[];

void *pw_config_server_create(apr_pool_t *p, server_rec *s);
void *pw_config_server_merge(apr_pool_t *p, void *base, void *add);
void *pw_config_dir_create(apr_pool_t *p, char *dir);
void *pw_config_dir_merge(apr_pool_t *p, void *base, void *add);

/* The route whose URL-PATH is the longest prefix of uri, or NULL. */
pw_route_t *pw_config_route(server_rec *s, const char *uri);

/* Main-server settings (process wide: one Python per process). */
const apr_array_header_t *pw_config_python_path(server_rec *s);
const char *pw_config_venv(server_rec *s);
apr_interval_time_t pw_config_shutdown_timeout(server_rec *s);
int pw_config_metrics(server_rec *s);

/* Per server (virtual host). 0: off. */
apr_interval_time_t pw_config_slow_request(server_rec *s);

const apr_array_header_t *pw_config_preloads(server_rec *s);
int pw_config_max_requests(server_rec *s);     /* 0: off */
apr_off_t pw_config_max_memory(server_rec *s); /* bytes, 0: off */

/* Per server (virtual host). 0: off. */
apr_interval_time_t pw_config_request_timeout(server_rec *s);

/* Per directory. */
int pw_config_pass_authorization(request_rec *r);
int pw_config_reload(request_rec *r);

/* The interpreter a request runs in: the alias's interpreter=, else
 * PyWSGIInterpreter, else main (0). */
int pw_config_interp(request_rec *r, const pw_route_t *route);

#endif /* PW_CONFIG_H */
