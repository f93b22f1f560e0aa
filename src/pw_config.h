/*
 * pw_config.h: the directives, their defaults and the getters the rest of
 * the module asks.  Nothing here calls Python or any other file of the
 * module but pw_http: declarations (apps, interpreters) are recorded as
 * data, and the layers that own them make objects of them in each child.
 */
#ifndef PW_CONFIG_H
#define PW_CONFIG_H

#include "pw_common.h"

typedef enum {
    PW_TARGET_SCRIPT, /* /srv/app/app.py, callable "application" */
    PW_TARGET_MODULE  /* package.module:callable, as gunicorn writes it */
} pw_target_kind_t;

/* A WSGI application as configured.  The same target named twice (two
 * vhosts, two prefixes) is one pw_target_t, so it loads once per child. */
typedef struct {
    int id; /* 0..pw_config_target_count()-1; -1: a file served by handler
             * (pw_app.c makes those in each child) */
    const char *target; /* as written in the config, for log lines */
    pw_target_kind_t kind;
    const char *path;        /* script file, or dotted module name */
    const char *callable;    /* attribute, may be dotted; "": the module
                                itself (PyWSGIAuthScript) */
    int call_factory;        /* "create_app()": call it once, no args */
    const char *module_name; /* sys.modules key of a script file */
    const char *python_path; /* python-path=, "DIR:DIR", or NULL */
} pw_target_t;

/* One PyWSGIScriptAlias line. */
typedef struct {
    const char *url; /* no trailing '/', "" for the root */
    apr_size_t url_len;
    const pw_target_t *target;
    int interp;         /* interpreter=NAME, or -1: PyWSGIInterpreter */
    int asgi;           /* interface=asgi: an ASGI 3 app (pw_asgi.c) */
    server_rec *server; /* the (virtual) server whose config has the line */
    /* SCRIPT_NAME as a str per interpreter, made on first use with that
     * interpreter's GIL held (pw_environ.c) and kept for the child's life. */
    PyObject *script_name[PW_MAX_INTERPS];
} pw_route_t;

/* One PyWSGIPreload line. */
typedef struct {
    const pw_target_t *target;
    int interp;
} pw_preload_t;

/* pw_request_conf_t.interp after pw_config_file_request() under
 * "PyWSGIInterpreter %{RESOURCE}": an interpreter of the file's own, which
 * the handler gets from pw_app_file_interp(). */
#define PW_INTERP_FILE (-3)

/* ...and for a file of a virtual host that found no interpreter of its own
 * left at configuration time (more hosts than PW_MAX_INTERPS): 500, PW0708. */
#define PW_INTERP_NONE (-4)

/* What serving one request needs of the configuration, read once by the
 * handler (pw_config_request). */
typedef struct {
    int interp;                          /* index of its interpreter */
    int reload;                          /* PyWSGIReload */
    int pass_authorization;              /* PyWSGIPassAuthorization */
    apr_interval_time_t request_timeout; /* 0: off */
    apr_interval_time_t slow_request;    /* 0: off */
    int chunked_stream;                  /* PyWSGIChunkedRequest Stream */
    apr_size_t body_buffer;              /* PyWSGIRequestBodyBuffer */
    const char *body_tmpdir;             /* NULL: the system's */
} pw_request_conf_t;

extern const command_rec pw_config_cmds[];

void *pw_config_server_create(apr_pool_t *p, server_rec *s);
void *pw_config_server_merge(apr_pool_t *p, void *base, void *add);
void *pw_config_dir_create(apr_pool_t *p, char *dir);
void *pw_config_dir_merge(apr_pool_t *p, void *base, void *add);

/* pre_config: a new reading of the configuration starts (forget the
 * previous one's interpreter names and targets). */
void pw_config_pre_config(apr_pool_t *pconf);

/* Every PyWSGIScriptAlias a server serves (pw_route_t), its own and the
 * main server's it inherits; route->server tells them apart. */
const apr_array_header_t *pw_config_routes(server_rec *s);

/* The route whose URL-PATH is the longest prefix of uri, or NULL. */
pw_route_t *pw_config_route(server_rec *s, const char *uri);

/* The PyWSGIAuthScript of r's location and its interpreter (*interp), or
 * NULL when none is set there. */
const pw_target_t *pw_config_auth_script(request_rec *r, int *interp);

/* The request's settings, in one go. */
void pw_config_request(request_rec *r, const pw_route_t *route,
                       pw_request_conf_t *out);

/* The same for a file served by handler (pywsgi-script without a
 * PyWSGIScriptAlias): its virtual host's interpreter by default, and
 * always reloaded when the file changes. */
void pw_config_file_request(request_rec *r, const pw_route_t *route,
                            pw_request_conf_t *out);

/* Every declared interpreter: index 0 is "main". */
int pw_config_interp_count(void);
const char *pw_config_interp_name(int interp);

/* Whether a child creates interp on first use rather than at its start
 * (the virtual hosts' interpreters for files served by handler, and those
 * past the declared ones: a file's own, pw_app_file_interp()). */
int pw_config_interp_lazy(int interp);

/* Whether interp gets a GIL of its own (PyWSGIOwnGIL; never main, and
 * only with Python 3.12+, which configtest checked). */
int pw_config_interp_own_gil(int interp);

/* check_config: declare one interpreter per virtual host for its handler-
 * served files (past PW_MAX_INTERPS: none, and a PW0704 warning); refuse
 * PyWSGIPreload under mpm-itk (PW0706).  OK or an error, logged. */
int pw_config_check(apr_pool_t *pconf, server_rec *s);

/* post_config: check_config's warnings again, now that the error log is
 * open (check_config's go to the terminal, or nowhere once detached). */
void pw_config_post_config(server_rec *s);

/* Every declared target, by id. */
int pw_config_target_count(void);
const pw_target_t *pw_config_target(int id);

/* Main-server settings (process wide: one Python per process). */
const apr_array_header_t *pw_config_python_path(server_rec *s);
const char *pw_config_venv(server_rec *s);

/* The value of key in the virtualenv venv's pyvenv.cfg ("home",
 * "version"...), spaces trimmed, from p; NULL when the file cannot be read
 * or does not say.  Reads at most 4 KiB.  The one reader of that file: the
 * directive's version check and the child's diagnosis of a failed start
 * both use it. */
const char *pw_config_venv_value(const char *venv, const char *key,
                                 apr_pool_t *p);
apr_interval_time_t pw_config_shutdown_timeout(server_rec *s);
int pw_config_metrics(server_rec *s);
const apr_array_header_t *pw_config_preloads(server_rec *s);
int pw_config_max_requests(server_rec *s);         /* 0: off */
apr_off_t pw_config_max_memory(server_rec *s);     /* bytes, 0: off */
const char *pw_config_health_drain(server_rec *s); /* NULL: none */

/* PyWSGIStatus where r is: off (the pywsgi-status handler answers 404),
 * on (every figure), host (the figures of r->server's own apps). */
typedef enum {
    PW_STATUS_OFF = 0,
    PW_STATUS_ON,
    PW_STATUS_HOST
} pw_status_mode_t;
pw_status_mode_t pw_config_status(request_rec *r);

/* Per server (virtual host). 0: off. */
apr_interval_time_t pw_config_request_timeout(server_rec *s);

#endif /* PW_CONFIG_H */
