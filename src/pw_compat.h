/*
 * pw_compat.h: every Python and Apache version check of the module lives
 * here, so the rest of the code reads as if there were one version of each.
 *
 * Supported: CPython 3.8 to 3.13, Apache httpd 2.4.
 */
#ifndef PW_COMPAT_H
#define PW_COMPAT_H

/* Python.h must come before any system header (CPython C-API docs). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "httpd.h"
#include "ap_release.h"
#include "ap_mmn.h"

#if PY_VERSION_HEX < 0x03080000
#error "mod_pywsgi needs Python 3.8 or later (the PyConfig API)"
#endif

#if !AP_MODULE_MAGIC_AT_LEAST(20120211, 0)
#error "mod_pywsgi needs Apache httpd 2.4"
#endif

/* Py_NewRef / Py_XNewRef (3.10) keep ownership visible at the point of
 * storage. */
#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *pw_newref(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
static inline PyObject *pw_xnewref(PyObject *o)
{
    Py_XINCREF(o);
    return o;
}
#define Py_NewRef(o)  pw_newref((PyObject *)(o))
#define Py_XNewRef(o) pw_xnewref((PyObject *)(o))
#endif

/*
 * PyErr_GetRaisedException (3.12) replaces the Fetch/Restore triple.  The
 * module only needs "take the current exception as one object".
 */
#if PY_VERSION_HEX >= 0x030C0000
#define PW_ERR_TAKE() PyErr_GetRaisedException()
#else
static inline PyObject *pw_err_take(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}
#define PW_ERR_TAKE() pw_err_take()
#endif

/* ...and its inverse: make exc (a stolen reference) the current one. */
#if PY_VERSION_HEX >= 0x030C0000
#define PW_ERR_RESTORE(exc) PyErr_SetRaisedException(exc)
#else
static inline void pw_err_restore(PyObject *exc)
{
    if (exc != NULL) {
        PyErr_Restore(Py_NewRef(Py_TYPE(exc)), exc,
                      PyException_GetTraceback(exc));
    }
}
#define PW_ERR_RESTORE(exc) pw_err_restore(exc)
#endif

#if PY_VERSION_HEX < 0x03090000
#define PyObject_CallNoArgs(o) PyObject_CallObject((o), NULL)
#define PW_TSTATE_INTERP(t)    ((t)->interp)
#else
#define PW_TSTATE_INTERP(t) PyThreadState_GetInterpreter(t)
#endif

/*
 * getattr that says "absent" without raising AttributeError: building that
 * exception (its formatted message) costs more than the rest of a small
 * request.  PyObject_GetOptionalAttr is public from 3.13; before, the same
 * function was _PyObject_LookupAttr (3.7-3.12).  1 found, 0 absent, -1
 * error.
 */
#if PY_VERSION_HEX >= 0x030D0000
#define PW_GETATTR_OPTIONAL(o, name, res) PyObject_GetOptionalAttr(o, name, res)
#else
#define PW_GETATTR_OPTIONAL(o, name, res) _PyObject_LookupAttr(o, name, res)
#endif

/* Vectorcall is public from 3.9 (3.8 spells it with an underscore). */
#if PY_VERSION_HEX < 0x03090000
#define PyObject_Vectorcall _PyObject_Vectorcall
#endif

/* "3.11": the bin/pythonX.Y the module was built against. */
#define PW_STR_(x)        #x
#define PW_STR(x)         PW_STR_(x)
#define PW_PY_MAJOR_MINOR PW_STR(PY_MAJOR_VERSION) "." PW_STR(PY_MINOR_VERSION)

/* config.safe_path appeared in 3.11: never put the cwd on sys.path. */
#if PY_VERSION_HEX >= 0x030B0000
#define PW_HAVE_SAFE_PATH 1
#else
#define PW_HAVE_SAFE_PATH 0
#endif

/* Interpreters with a GIL of their own (PEP 684, PyWSGIOwnGIL):
 * Py_NewInterpreterFromConfig() and PyInterpreterConfig_OWN_GIL are 3.12's.
 * From 3.12 on, PyThreadState_Swap() between two interpreters does not
 * hand one GIL over for the other (3.13's does): pw_interp.c switches with
 * PyEval_SaveThread()/PyEval_RestoreThread() wherever a GIL differs. */
#if PY_VERSION_HEX >= 0x030C0000
#define PW_HAVE_OWN_GIL 1
#else
#define PW_HAVE_OWN_GIL 0
#endif

/* asyncio keeps its running loop per interpreter from 3.12 on (3.11's
 * _asyncio caches it in state all interpreters share, so a second loop in
 * another interpreter fails to start): ASGI apps may then run in
 * sub-interpreters, each with a loop of its own. */
#define PW_HAVE_ASGI_INTERPS PW_HAVE_OWN_GIL

/*
 * The module's Python types are heap types, one per interpreter (an own-GIL
 * interpreter may share no object with another, a static type object
 * included: its reference count and dict would be touched under two
 * GILs).  PyType_FromSpec() is there from 3.8 on; immutability has a flag
 * from 3.10.  A type only the module's C code instantiates gets no tp_new
 * (type(environ["wsgi.input"])() must not make a request-less one), as
 * CPython did for its own heap types before
 * Py_TPFLAGS_DISALLOW_INSTANTIATION (3.10).
 */
#if PY_VERSION_HEX >= 0x030A0000
#define PW_TPFLAGS_IMMUTABLE Py_TPFLAGS_IMMUTABLETYPE
#else
#define PW_TPFLAGS_IMMUTABLE 0
#endif
static inline PyTypeObject *pw_type_new(PyType_Spec *spec, int instantiable)
{
    PyTypeObject *t = (PyTypeObject *)PyType_FromSpec(spec);

    if (t != NULL && !instantiable) {
        t->tp_new = NULL;
    }
    return t;
}

/* Is a connection TLS?  ap_ssl_conn_is_ssl() exists from 2.4.47. */
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 102)
#include "http_ssl.h"
#define PW_CONN_IS_TLS(c) ap_ssl_conn_is_ssl(c)
#else
#define PW_CONN_IS_TLS(c) 0
#endif

#endif /* PW_COMPAT_H */
