"""The C every fast wrapper shares: argument conversions, errors, binding to the library.

Compiling these helpers is half of a wrapper's compile time, and they never
change for a given interpreter and compiler. So they are written once as
``ni_helpers.c`` beside the precompiled ``Python.h`` and compiled in the
background into an object every later wrapper links (``shared``). Until that
object exists, a wrapper includes them as static functions (``inline``).

The conversions called on every call (``ni_signed``, ``ni_unsigned``,
``ni_double``) stay in each wrapper, always inlined: a call across objects
would cost the scalar calls the nanoseconds the binder exists to save.
"""

from __future__ import annotations

from ._fast_callbacks import CALLBACK_DECLARATIONS, CALLBACK_HELPERS
from ._fast_records import RECORD_DECLARATIONS, RECORD_HELPERS

__all__ = ["HEADER", "helpers_source", "prelude"]

# ni_python.h: what every wrapper and the helpers include (precompiled when the compiler can)
HEADER = "".join(f"{line}\n" for line in ("#define PY_SSIZE_T_CLEAN", "#include <Python.h>", "#include <dlfcn.h>",
                                           "#include <stddef.h>", "#include <stdint.h>", "#include <string.h>"))

_DECLARATIONS = r"""
/* One wrapper module's tables and state, handed to the shared binding helpers. */
typedef struct {
    PyMethodDef *methods;  /* one per function, in the order of symbols and slots */
    const char **symbols;  /* each function's name in the library */
    void ***slots;         /* where each function's address goes */
    int count;
    PyObject *provider;    /* returns the cffi namespace, for arguments only cffi understands */
    PyObject *fallbacks;   /* the cffi wrappers by position, fetched the first time one is needed */
    const char **handle_cdecls;  /* the cffi type of each handle its functions take or return, then of each
                                    pointer field of its records, then of each data pointer its functions
                                    take as a cdata or return (each type once) */
    PyObject **handle_types;     /* those types, from the cffi binding's ffi: handles are the same objects;
                                    each fetched when first needed (ni_lazy_type), forgotten at a rebind */
    struct NiRecordSpec **records;  /* the struct and union types it makes (_fast_records) */
    int record_count;
    const char *takes_callbacks;  /* '1' per function taking callbacks: it releases the GIL unless keep_gil */
    int type_count;              /* the entries of handle_cdecls */
} NiModule;

NI_HELPER int ni_int_error(PyObject *o, const char *what, const char *ctype);
NI_HELPER int ni_bytes(PyObject *o, Py_buffer *view, const void **out, const char *what);
NI_HELPER int ni_buffer(PyObject *o, Py_buffer *view, void **out, char kind, Py_ssize_t itemsize, int writable,
                        const char *what);
NI_HELPER PyObject *ni_string_result(const char *s);
NI_HELPER PyObject *ni_count_error(const char *name, Py_ssize_t expected, Py_ssize_t given);
NI_HELPER PyObject *ni_call_fallback(NiModule *module, int index, PyObject *const *args, Py_ssize_t nargs);
NI_HELPER PyObject *ni_bind_module(NiModule *module, PyObject *self, PyObject *args);
NI_HELPER void *ni_handle(PyObject *o, PyObject *ctype);
NI_HELPER PyObject *ni_handle_result(void *p, PyObject *ctype);
NI_HELPER PyObject *ni_lazy_type(NiModule *module, int index);
NI_HELPER int ni_to_pointer(PyObject *o, PyObject *ctype, void **out, const char *what);
NI_HELPER PyObject *ni_pointer_object(void *p, PyObject *ctype);
NI_HELPER PyObject *ni_typeof(PyObject *provider, const char *cdecl);

NI_HELPER int ni_cdata_pointer(NiModule *module, int index, PyObject *o, void **out);

/* Type ``index`` of the module's table, borrowed (the table keeps it until a rebind, which runs no C of ours
   meanwhile): fetched now if need be, or NULL with an error set. Inlined where a handle crosses. */
static inline PyObject *ni_type_at(NiModule *module, int index) {
    PyObject *known = module->handle_types[index];
    if (known != NULL) return known;
    PyObject *fetched = ni_lazy_type(module, index);
    Py_XDECREF(fetched);  /* the table holds it */
    return fetched;
}

/* A handle result, or another pointer result the cffi binder gives as a cdata (void *, const double *,
   char **): None for NULL (cffi not loaded for it), else a cdata of type ``index`` of the module's table. */
static inline PyObject *ni_handle_back(NiModule *module, int index, void *p) {
    if (p == NULL) Py_RETURN_NONE;
    PyObject *ctype = ni_type_at(module, index);
    return ctype == NULL ? NULL : ni_handle_result(p, ctype);
}
"""

_HELPERS = r"""
NI_HELPER int ni_int_error(PyObject *o, const char *what, const char *ctype) {
    if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_OverflowError, "%s: integer %R does not fit '%s'", what, o, ctype);
    } else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: an integer is required, not %.200s", what, Py_TYPE(o)->tp_name);
    }
    return -1;
}

/* A read-only byte pointer (const char *, const void *, const uint8_t *): 0 with *out set (and *view held
   for a buffer other than bytes), -1 with an error set. bytes and other buffers pass as they are, NULs
   included; a str as its UTF-8, NUL-terminated. The caller sent anything else to cffi (ni_foreign_bytes). */
NI_HELPER int ni_bytes(PyObject *o, Py_buffer *view, const void **out, const char *what) {
    view->obj = NULL;
    if (PyBytes_CheckExact(o)) { *out = PyBytes_AS_STRING(o); return 0; }
    if (PyUnicode_Check(o)) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(o, &size);
        if (text == NULL) return -1;
        if ((Py_ssize_t)strlen(text) != size) {
            PyErr_Format(PyExc_ValueError, "%s: embedded null character in str (pass bytes for binary data)", what);
            return -1;
        }
        *out = text;
        return 0;
    }
    void *data;
    if (ni_buffer(o, view, &data, 0, 1, 0, what)) return -1;
    *out = data;
    return 0;
}

static const char *ni_kind_name(char kind) {
    switch (kind) {
    case 'i': return "signed integers";
    case 'u': return "unsigned integers";
    case 'f': return "floats";
    case 'b': return "bools";
    default: return "items of an unknown kind";
    }
}

static char ni_format_kind(const char *format) {
    if (format == NULL) return 'u';  /* no format means unsigned bytes */
    if (*format == '>' || *format == '!') return '?';
    if (*format == '@' || *format == '=' || *format == '<') format++;
    if (format[0] == '\0' || format[1] != '\0') return '?';
    if (strchr("bhilqn", format[0])) return 'i';
    if (strchr("BHILQN", format[0])) return 'u';
    if (strchr("efd", format[0])) return 'f';
    if (format[0] == '?') return 'b';
    return '?';
}

/* 0: filled *view (or NULL pointer for None); -1: error set. */
NI_HELPER int ni_buffer(PyObject *o, Py_buffer *view, void **out, char kind, Py_ssize_t itemsize, int writable,
                        const char *what) {
    if (o == Py_None) { *out = NULL; view->obj = NULL; return 0; }
    if (PyObject_GetBuffer(o, view, PyBUF_FORMAT | PyBUF_STRIDES) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a buffer (array.array, bytearray, numpy array, ...), not %.200s",
                     what, Py_TYPE(o)->tp_name);
        return -1;
    }
    if (kind) {
        char held = ni_format_kind(view->format);
        if (held != kind || view->itemsize != itemsize) {
            PyErr_Format(PyExc_TypeError, "%s: the buffer holds %zd-byte %s (format '%s'), not %zd-byte %s", what,
                         view->itemsize, ni_kind_name(held), view->format ? view->format : "B", itemsize,
                         ni_kind_name(kind));
            PyBuffer_Release(view);
            return -1;
        }
    }
    if (writable && view->readonly) {
        PyErr_Format(PyExc_TypeError, "%s: the function writes through this pointer; pass a writable buffer, "
                     "not a read-only %.200s", what, Py_TYPE(o)->tp_name);
        PyBuffer_Release(view);
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s: the buffer must be C-contiguous", what);
        PyBuffer_Release(view);
        return -1;
    }
    *out = view->buf;
    return 0;
}

NI_HELPER PyObject *ni_string_result(const char *s) {
    if (s == NULL) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

NI_HELPER PyObject *ni_count_error(const char *name, Py_ssize_t expected, Py_ssize_t given) {
    PyErr_Format(PyExc_TypeError, "%s() takes %zd positional argument%s but %zd %s given", name, expected,
                 expected == 1 ? "" : "s", given, given == 1 ? "was" : "were");
    return NULL;
}

NI_HELPER PyObject *ni_call_fallback(NiModule *module, int index, PyObject *const *args, Py_ssize_t nargs) {
    if (module->fallbacks == NULL) {
        PyObject *namespace = PyObject_CallNoArgs(module->provider);
        if (namespace == NULL) return NULL;
        PyObject *chosen = PyTuple_New(module->count);
        for (int i = 0; chosen != NULL && i < module->count; i++) {
            PyObject *fallback = PyMapping_GetItemString(namespace, module->methods[i].ml_name);
            if (fallback == NULL) Py_CLEAR(chosen);
            else PyTuple_SET_ITEM(chosen, i, fallback);
        }
        Py_DECREF(namespace);
        if (chosen == NULL) return NULL;
        module->fallbacks = chosen;
    }
    return PyObject_Vectorcall(PyTuple_GET_ITEM(module->fallbacks, index), args, nargs, NULL);
}

/* Handles are the cffi binding's own pointer objects, converted with the functions cffi exports to the
   modules it compiles (the table every API-mode extension receives, stable since cffi 1.0): what a
   function returns here is what a cffi-served function takes, and the reverse. */
static void *ni_cffi_exports[32];
static int ni_cffi_ready;

static int ni_load_cffi_exports(void) {
    static void *empty_context[64];  /* a type context declaring nothing */
    if (ni_cffi_ready) return 0;
    void *raw[4] = {(void *)"_nativeimport_handles", (void *)(Py_ssize_t)0x2601, (void *)ni_cffi_exports,
                    (void *)empty_context};
    PyObject *backend = PyImport_ImportModule("_cffi_backend");
    if (backend == NULL) return -1;
    PyObject *arg = PyLong_FromVoidPtr((void *)raw);
    PyObject *made = arg == NULL ? NULL
        : PyObject_CallMethod(backend, "_init_cffi_1_0_external_module", "O", arg);
    Py_XDECREF(arg);
    Py_DECREF(backend);
    if (made == NULL) return -1;
    Py_DECREF(made);
    ni_cffi_ready = 1;
    return 0;
}

/* The ffi of the cffi namespace a provider returns (the cffi binding loads for it): referenced, or NULL with an
   error set. */
static PyObject *ni_provider_ffi(PyObject *provider) {
    PyObject *namespace = PyObject_CallNoArgs(provider);
    if (namespace == NULL) return NULL;
    PyObject *ffi = PyMapping_GetItemString(namespace, "__ffi__");
    Py_DECREF(namespace);
    return ffi;
}

/* ffi.typeof(cdecl) in the cffi binding the provider returns (loaded for it, with cffi's exports): referenced,
   or NULL with an error set. */
NI_HELPER PyObject *ni_typeof(PyObject *provider, const char *cdecl) {
    if (ni_load_cffi_exports() < 0) return NULL;
    PyObject *ffi = ni_provider_ffi(provider);
    PyObject *ctype = ffi == NULL ? NULL : PyObject_CallMethod(ffi, "typeof", "s", cdecl);
    Py_XDECREF(ffi);
    return ctype;
}

/* At a bind: the types fetched from the previous binding are forgotten, to be fetched from this one. */
static void ni_forget_types(NiModule *module) {
    for (int i = 0; i < module->type_count; i++) Py_CLEAR(module->handle_types[i]);
}



/* A handle argument (not None): its address, or NULL with an error set (the caller hands the call to cffi). */
NI_HELPER void *ni_handle(PyObject *o, PyObject *ctype) {
    char *(*to_pointer)(PyObject *, PyObject *) = (char *(*)(PyObject *, PyObject *))ni_cffi_exports[11];
    char *p = to_pointer(o, ctype);
    if (p == NULL && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "NULL handle");
    return p;
}

/* A handle result: None for NULL, else a cdata of the handle's type. */
NI_HELPER PyObject *ni_handle_result(void *p, PyObject *ctype) {
    PyObject *(*from_pointer)(char *, PyObject *) = (PyObject *(*)(char *, PyObject *))ni_cffi_exports[10];
    if (p == NULL) Py_RETURN_NONE;
    return from_pointer((char *)p, ctype);
}

/* Type ``index`` of the module's table, fetched from its cffi binding the first time it is needed: a handle,
   a record's pointer field or a cdata argument loads cffi only once one crosses. A new reference (a rebind
   may replace the table's); NULL with an error set. */
NI_HELPER PyObject *ni_lazy_type(NiModule *module, int index) {
    PyObject *known = module->handle_types[index];
    if (known != NULL) { Py_INCREF(known); return known; }
    PyObject *provider = module->provider;
    Py_INCREF(provider);  /* the call below runs Python, which may bind the module anew */
    PyObject *ctype = ni_typeof(provider, module->handle_cdecls[index]);
    Py_DECREF(provider);
    if (ctype == NULL) return NULL;
    Py_INCREF(ctype);
    Py_XSETREF(module->handle_types[index], ctype);
    return ctype;
}

/* A pointer field's new value, converted by cffi as its own field assignment converts it (the same rules and
   message, after ``what``): 0 with *out set (NULL for ffi.NULL), or -1 with an error set. */
NI_HELPER int ni_to_pointer(PyObject *o, PyObject *ctype, void **out, const char *what) {
    char *(*to_pointer)(PyObject *, PyObject *) = (char *(*)(PyObject *, PyObject *))ni_cffi_exports[11];
    char *p = to_pointer(o, ctype);
    if (p == NULL && PyErr_Occurred()) {
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *raised = PyErr_GetRaisedException();
        PyErr_Format((PyObject *)Py_TYPE(raised), "%s: %S", what, raised);
        Py_DECREF(raised);
#else
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyErr_Format(type, "%s: %S", what, value);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
#endif
        return -1;
    }
    *out = p;
    return 0;
}

/* A cdata argument for a data-pointer parameter, converted as cffi converts it (a compatible pointer or
   array; ffi.NULL is NULL): 0 with *out set, or -1 with no error set, whatever went wrong (another type, the
   binding failing to load): the caller hands the call to the cffi wrapper, which says it in cffi's words.
   ``index``: the parameter's type in the module's table, fetched the first time a cdata comes for it. */
NI_HELPER int ni_cdata_pointer(NiModule *module, int index, PyObject *o, void **out) {
    PyObject *ctype = ni_type_at(module, index);
    if (ctype == NULL) {
        PyErr_Clear();
        return -1;
    }
    char *(*to_pointer)(PyObject *, PyObject *) = (char *(*)(PyObject *, PyObject *))ni_cffi_exports[11];
    char *p = to_pointer(o, ctype);
    if (p == NULL && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    *out = p;
    return 0;
}

/* A pointer field's value as cffi reads it: a cdata of its type, a NULL one for NULL (not None). */
NI_HELPER PyObject *ni_pointer_object(void *p, PyObject *ctype) {
    PyObject *(*from_pointer)(char *, PyObject *) = (PyObject *(*)(char *, PyObject *))ni_cffi_exports[10];
    return from_pointer((char *)p, ctype);
}

/* bind(library_path, module_name, provider) -> (functions, functions releasing the GIL);
   provider() returns the cffi namespace, called only if an argument needs cffi. */
NI_HELPER PyObject *ni_bind_module(NiModule *module, PyObject *self, PyObject *args) {
    const char *path;
    PyObject *module_name, *provider;
    if (!PyArg_ParseTuple(args, "sUO", &path, &module_name, &provider)) return NULL;
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        PyErr_Format(PyExc_OSError, "cannot load %s: %s", path, dlerror());
        return NULL;
    }
    int count = module->count;
    for (int i = 0; i < count; i++) {
        *module->slots[i] = dlsym(library, module->symbols[i]);
        if (*module->slots[i] == NULL) {
            PyErr_Format(PyExc_OSError, "%s does not export %s", path, module->symbols[i]);
            return NULL;
        }
    }
    PyObject *previous = module->provider;
    Py_INCREF(provider);
    module->provider = provider;
    Py_XDECREF(previous);
    Py_CLEAR(module->fallbacks);
    ni_forget_types(module);
    PyObject *kept = PyDict_New(), *released = PyDict_New(), *keeping = NULL;
    if (kept == NULL || released == NULL) goto fail;
    if (ni_bind_records(module->records, module->record_count, module_name, kept) < 0) goto fail;
    keeping = PyDict_New();
    if (keeping == NULL) goto fail;
    for (int i = 0; i < 3 * count; i++) {
        /* self == NULL keeps the GIL during the call, any other self releases it; but a function taking
           callbacks releases it unless self is Py_True (keep_gil: C calls back only from this thread) */
        PyMethodDef *method = &module->methods[i % count];
        int taking = module->takes_callbacks != NULL && module->takes_callbacks[i % count] == '1';
        if (i >= 2 * count && !taking) continue;
        PyObject *bound_self = i < count ? NULL : i < 2 * count ? self : Py_True;
        PyObject *function = PyCFunction_NewEx(method, bound_self, module_name);
        if (function == NULL) goto fail;
        int failed = PyDict_SetItemString(i < count ? kept : i < 2 * count ? released : keeping, method->ml_name,
                                          function);
        Py_DECREF(function);
        if (failed) goto fail;
    }
    return Py_BuildValue("(NNN)", kept, released, keeping);
fail:
    Py_XDECREF(kept);
    Py_XDECREF(released);
    Py_XDECREF(keeping);
    return NULL;
}
"""

_INLINE_HELPERS = r"""
#define NI_HOT __attribute__((always_inline))  /* inlined whatever the optimisation level */

static inline NI_HOT int ni_signed(PyObject *o, long long lo, long long hi, long long *out, const char *what,
                                   const char *ctype) {
    int overflow = 0;
    long long v;
    if (PyLong_Check(o)) {
        v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) return ni_int_error(o, what, ctype);
    } else {
        PyObject *index = PyNumber_Index(o);
        if (index == NULL) return ni_int_error(o, what, ctype);
        v = PyLong_AsLongLongAndOverflow(index, &overflow);
        Py_DECREF(index);
        if (v == -1 && PyErr_Occurred()) return ni_int_error(o, what, ctype);
    }
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_OverflowError, "%s: integer %R does not fit '%s'", what, o, ctype);
        return -1;
    }
    *out = v;
    return 0;
}

static inline NI_HOT int ni_unsigned(PyObject *o, unsigned long long hi, unsigned long long *out,
                                     const char *what, const char *ctype) {
    unsigned long long v;
    if (PyLong_Check(o)) {
        v = PyLong_AsUnsignedLongLong(o);
    } else {
        PyObject *index = PyNumber_Index(o);
        if (index == NULL) return ni_int_error(o, what, ctype);
        v = PyLong_AsUnsignedLongLong(index);
        Py_DECREF(index);
    }
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return ni_int_error(o, what, ctype);
    if (v > hi) {
        PyErr_Format(PyExc_OverflowError, "%s: integer %R does not fit '%s'", what, o, ctype);
        return -1;
    }
    *out = v;
    return 0;
}

static inline NI_HOT int ni_double(PyObject *o, double *out, const char *what) {
    if (PyFloat_CheckExact(o)) { *out = PyFloat_AS_DOUBLE(o); return 0; }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: must be real number, not %.200s", what, Py_TYPE(o)->tp_name);
        }
        return -1;
    }
    *out = v;
    return 0;
}

static inline void ni_release(Py_buffer *view) { if (view->obj != NULL) PyBuffer_Release(view); }

static inline int ni_foreign(PyObject *o) { return o != Py_None && !PyObject_CheckBuffer(o); }

/* A cffi cdata (mod.__ffi__.cast("int", 5)): the cffi wrapper converts it, as cffi users expect. */
static inline int ni_cdata(PyObject *o) { return strncmp(Py_TYPE(o)->tp_name, "_cffi_backend.", 14) == 0; }

static inline int ni_foreign_bytes(PyObject *o) { return !PyUnicode_Check(o) && ni_foreign(o); }
"""

_INCLUDE = '#include "ni_python.h"  /* Python.h and friends, precompiled when the compiler can */\n'
_HIDDEN = '#define NI_HELPER __attribute__((visibility("hidden")))  /* linked into each wrapper, never exported */\n'


def helpers_source() -> str:
    """``ni_helpers.c``: the shared helpers, compiled once into an object each wrapper links."""
    return (_INCLUDE + _HIDDEN + _DECLARATIONS + CALLBACK_DECLARATIONS + RECORD_DECLARATIONS + _HELPERS
            + CALLBACK_HELPERS + _INLINE_HELPERS + RECORD_HELPERS)


def prelude(shared: bool, records: bool = True) -> str:
    """What a wrapper's C starts with: the helpers' declarations, and their definitions unless ``shared``
    (the struct types' only if it has ``records``: they would add half to a small wrapper's compile)."""
    if shared:
        return _INCLUDE + _HIDDEN + _DECLARATIONS + CALLBACK_DECLARATIONS + RECORD_DECLARATIONS + _INLINE_HELPERS
    return (_INCLUDE + "#define NI_HELPER static\n" + _DECLARATIONS + CALLBACK_DECLARATIONS + RECORD_DECLARATIONS
            + _HELPERS + CALLBACK_HELPERS + _INLINE_HELPERS + (RECORD_HELPERS if records else _NO_RECORDS))


_NO_RECORDS = """
NI_HELPER int ni_bind_records(NiRecordSpec **specs, int count, PyObject *module_name, PyObject *into) { return 0; }
"""
