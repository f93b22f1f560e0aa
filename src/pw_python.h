/*
 * pw_python.h: Python's life in an Apache child — start, the per-
 * interpreter set-up of every concern, preloading, the startup report,
 * bounded finalisation.  Called from the front door only.
 */
#ifndef PW_PYTHON_H
#define PW_PYTHON_H

#include "pw_common.h"

/* child_init: start Python and every declared interpreter in this child,
 * set each up for requests, preload apps.  Called without the GIL; returns
 * without it.  A failure is logged (PW0101/PW0105) and the requests of the
 * interpreters concerned then get 500. */
void pw_python_child_init(apr_pool_t *pchild, server_rec *s);

#endif /* PW_PYTHON_H */
