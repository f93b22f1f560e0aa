/*
 * pw_asgi.h: ASGI 3 applications (PyWSGIScriptAlias ... interface=asgi) —
 * the http scope, one asyncio loop per interpreter per child, the lifespan
 * protocol.
 */
#ifndef PW_ASGI_H
#define PW_ASGI_H

#include "pw_common.h"
#include "pw_config.h"

/*
 * GIL of rc->interp held (released while waiting for the app).  Serve r
 * with the ASGI application app: input and start are the request's
 * wsgi.input and start_response objects (pw_input.c, pw_response.c), which
 * read the body and validate and send the response exactly as for WSGI.
 * Returns what the handler returns; failures are logged (PW08xx).
 */
int pw_asgi_run(request_rec *r, pw_route_t *route, const pw_request_conf_t *rc,
                PyObject *app, PyObject *input, PyObject *start);

/* No GIL needed.  Is r a websocket handshake (HTTP/1.1 GET with Upgrade:
 * websocket), which pw_asgi_run serves as a `websocket` scope? */
int pw_asgi_websocket(request_rec *r);

/* No GIL needed.  Did interp serve ASGI in this child (so it has a loop
 * and lifespans to end)? */
int pw_asgi_active(int interp);

/* GIL of interp held, at child exit (the lifecycle's bounded exit): send
 * lifespan.shutdown to each app that started, stop the loop and join its
 * thread, so that the interpreter can end. */
void pw_asgi_fini(int interp, server_rec *s);

#endif /* PW_ASGI_H */
