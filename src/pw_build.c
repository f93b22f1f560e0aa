/*
 * pw_build.c: which Python this module was built against, readable from the
 * .so file itself without loading it.
 *
 * bin/pywsgi-run imports the application before it starts httpd, and must
 * do so with the Python the module embeds (the one src/pw_python.c starts:
 * PREFIX/bin/python3.X), not with whatever python3 runs pywsgi-run.  The
 * build writes that path here behind a fixed tag; pywsgi-run finds the tag
 * with a byte search.  Kept in the file rather than beside it, the answer
 * follows the module through `make install`, a copy or --module, and can
 * never describe another build.  Nothing here runs: no locking.
 */
#include "pw_compat.h"

/* "used": nothing refers to it, and the linker must keep it all the same.
 * The tag and the NUL that ends the path are what pywsgi-run looks for. */
static const char pw_build_python[] __attribute__((used)) =
    "PW_BUILD_PYTHON=" PW_PYTHON_PREFIX "/bin/python" PW_PY_MAJOR_MINOR;
