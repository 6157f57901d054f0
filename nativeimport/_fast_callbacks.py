"""Function-pointer parameters in the fast wrapper: Python callables called from C through generated trampolines.

A C function pointer carries no state, so each callback type a module's
functions take gets a pool of static trampolines (``POOL``), each reading its
Python callable from its own slot of a static table. A callable passed to a
function-pointer parameter takes a slot, holding only a weak reference to it,
and keeps it while it lives (C may store the pointer and call it later, as
long as the caller keeps the function); a callable that cannot be weakly
referenced has a slot for the call only. The semantics are those of the cffi
binder (:mod:`nativeimport._cffi_callbacks`): C arguments reach Python as the
fast binder returns results (pointers as cffi's own objects, below), the return
value is converted like an argument, an exception is kept and raised again when
the C function that took the callback returns (per thread), one raised outside
any such call is reported as unraisable, and C receives zero. A trampoline
whose callable has died raises ``ReferenceError`` the same way; it never
touches a dead object. The slot freed by a dead callable is reused as late as
possible (the pool is scanned round-robin), so a stale pointer C kept calls
nothing rather than a stranger for as long as the pool allows.

What the trampolines cannot serve goes to the cffi wrapper, whole call: a
full pool, a native function (a cdata, a cffi wrapper, another module's fast
function: cffi passes its C address; one of this module's own functions of the
same type is passed directly), and callback types taking or returning records
by value, or variadic ones (those functions stay on cffi altogether).

Pointers cross as the cffi binder's callbacks give them: a pointer argument
(``void *user``, ``const void *``, ``char **``, ``struct point *``) reaches
Python as a cdata of the pointer's cffi type, None for NULL; a ``const char *``
stays a str. A pointer result is converted by cffi's own rules (a cdata of a
compatible pointer type; None is NULL, except for a ``const char *`` result, as
with cffi). The conversions are the functions cffi exports to the modules it
compiles (as for handles: :mod:`nativeimport._fast_c`), and the cffi types are
the module's cffi binding's: ``ffi.typeof`` of the callback type, its ``args``
and ``result``, exactly what cffi converts with. They are fetched from the
binding the first time a pool serving pointers hands out a trampoline (so a
module whose pointer callbacks are never used never loads cffi), and again
once the module is bound anew (a reload makes another ffi).

An exception a cffi callback raises while no cffi call is in progress (the
pool was full when C stored it) goes to this thread's fast call taking
callbacks, if any (``_cffi_callbacks.FAST_CALLS``), as within one binder.

Every trampoline takes the GIL itself (``PyGILState_Ensure``). A function
taking callbacks releases it during the call, whichever variant is bound (as
cffi's calls do): C may call back from threads of its own while the call waits
for them (a parallel map joining its workers), and a held GIL would hang them.
Taking it back costs a callback from the calling thread some 25 ns, about
what the call into Python costs; a hand-written trampoline that keeps the GIL
saves that but hangs in the threaded case.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ._fast_spelling import c_string, int_limits, scalar_c_type, to_python
from .interface import CType, Function

__all__ = ["CALLBACK_DECLARATIONS", "CALLBACK_HELPERS", "CALLS_END", "CALLS_START", "POOL", "Pools", "callback_ok",
           "convert_argument", "release_held"]

#: Trampolines per callback type: that many distinct live Python functions are served in C at once.
POOL = 32
#: ... unless a wrapper has many callback types: each trampoline costs its compile about half a millisecond,
#: so beyond this many in all the pools shrink (to no fewer than 8 trampolines each).
TRAMPOLINES = 512


def pool_size(types: int) -> int:
    """The trampolines per pool for a wrapper taking ``types`` callback types."""
    return POOL if types * POOL <= TRAMPOLINES else max(8, TRAMPOLINES // types)


def callback_ok(ctype: CType) -> bool:
    """Whether ``ctype`` is a function pointer whose calls the trampolines can convert both ways
    (numbers, bools, enums and pointers of any kind; records by value stay on cffi)."""
    function = ctype.pointee if ctype.is_function_pointer else None
    if function is None or function.variadic or function.pointee is None:
        return False
    result = function.pointee
    return ((result.kind in ("void", "int", "float", "bool", "enum") or _is_pointer(result))
            and all(p.kind in ("int", "float", "bool", "enum") or _is_pointer(p) for p in function.params))


def _is_pointer(ctype: CType) -> bool:
    """A pointer the trampolines pass as cffi does (not an array: those are struct fields only)."""
    return ctype.kind == "pointer" and not ctype.length


def _as_cdata(ctype: CType) -> bool:
    """A callback parameter reaching Python as a cdata (every pointer but a ``const char *``, a str)."""
    return _is_pointer(ctype) and not ctype.is_string


def _uses_cffi_types(ctype: CType) -> bool:
    """Whether a callback type's trampolines convert pointers with its cffi types (a pointer parameter
    other than a string, or a pointer result, strings included)."""
    function = ctype.pointee
    assert function is not None and function.pointee is not None
    return _is_pointer(function.pointee) or any(_as_cdata(p) for p in function.params)


def _key(ctype: CType) -> str:
    """The pool a function-pointer type uses: its canonical declaration (enums as their integers)."""
    return ctype.cdecl()


class Pools:
    """The callback types a wrapper's functions take, numbered: one pool of trampolines each."""

    def __init__(self, functions: Sequence[Function]) -> None:
        self.functions = functions
        self.types: dict[str, CType] = {}
        for function in functions:
            for param in function.params:
                if callback_ok(param.type):
                    self.types.setdefault(_key(param.type), param.type)
        self.numbered = {key: index for index, key in enumerate(self.types)}

    def index(self, ctype: CType) -> int:
        return self.numbered[_key(ctype)]

    def source(self) -> Iterator[str]:
        """Every pool's C; a function of the wrapper whose own type is a pool's is passed as its address."""
        if not self.numbered:
            return
        yield from (f"static NiPool ni_pool_{index};" for index in self.numbered.values())  # trampolines use them
        own = [_key(CType.pointer(CType.function(f.result, tuple(p.type for p in f.params), f.variadic)))
               for f in self.functions]
        for key, index in self.numbered.items():
            natives = [i for i, k in enumerate(own) if k == key]
            yield pool_source(index, self.types[key], natives, pool_size(len(self.numbered)))


def _c_type(ctype: CType) -> str:
    if ctype.is_string:
        return "const char *"
    return "void *" if _is_pointer(ctype) else scalar_c_type(ctype)


def _to_python(ctype: CType, var: str, position: int) -> str:
    """C argument ``var`` as the callable receives it; a pointer as a cdata of the type at ``position`` of
    the pool's cffi types (``ni_handle_result`` gives None for NULL, as the cffi binder does)."""
    if _as_cdata(ctype):
        return f"ni_handle_result({var}, PyTuple_GET_ITEM(types, {position}))"
    return to_python(ctype, var)


def _from_python(ctype: CType, position: int) -> list[str]:
    """Statements converting ``back`` (the callable's return value) into ``r`` and clearing ``failed``
    (``what`` names the value in errors; a pointer's cffi type is at ``position`` of the pool's)."""
    if ctype.kind == "void":
        return ["failed = 0;"]
    if _is_pointer(ctype):  # None is NULL but for a string, whose None cffi refuses too
        none_is_null = 0 if ctype.is_string else 1
        return ["void *v;",
                f"if (ni_pointer_back(back, PyTuple_GET_ITEM(types, {position}), {none_is_null}, &v) == 0) "
                f"{{ r = v; failed = 0; }}"]
    if ctype.kind == "float":
        return ["double v;", "if (ni_double(back, &v, what) == 0) { r = v; failed = 0; }"]
    if ctype.kind == "bool":
        return ["int v = PyObject_IsTrue(back);", "if (v >= 0) { r = v; failed = 0; }"]
    name = _c_type(ctype)
    low, high = int_limits(name)
    if name.startswith("u"):
        return ["unsigned long long v;",
                f"if (ni_unsigned(back, {high}, &v, what, \"{name}\") == 0) {{ r = ({name})v; failed = 0; }}"]
    return ["long long v;",
            f"if (ni_signed(back, {low}, {high}, &v, what, \"{name}\") == 0) {{ r = ({name})v; failed = 0; }}"]


def pool_source(index: int, ctype: CType, natives: Sequence[int], size: int = POOL) -> str:
    """The pool of trampolines for one callback type; ``natives``: this module's functions of that very type
    (by position in the method table), passed to C as their addresses."""
    function = ctype.pointee
    assert function is not None and function.pointee is not None
    result = function.pointee
    params = function.params
    typed = ", ".join(f"{_c_type(p)} x{i}" for i, p in enumerate(params))
    names = "".join(f", x{i}" for i in range(len(params)))
    r_type = "void" if result.kind == "void" else _c_type(result)
    what = c_string(f"the result of a {ctype.cdecl()} callback")
    typed_pool = _uses_cffi_types(ctype)
    lines = [f"static {r_type} ni_cb{index}(int slot{', ' + typed if typed else ''}) {{",
             "    PyGILState_STATE gil = PyGILState_Ensure();"]
    if result.kind != "void":
        lines.append(f"    {r_type} r = 0;")
    lines += [f"    PyObject *f = ni_callback_target(&ni_pool_{index}, slot);",
              "    int failed = 1;"]
    if typed_pool:  # (parameter types..., result type), referenced for the call: a rebind may replace them
        lines += [f"    PyObject *types = f == NULL ? NULL : ni_pool_types(&ni_pool_{index}, &ni_this);",
                  "    if (types != NULL) {"]
    else:
        lines.append("    if (f != NULL) {")
    count = len(params)
    if count:
        converted = ", ".join(_to_python(p, f"x{i}", i) for i, p in enumerate(params))
        lines.append(f"        PyObject *a[{count}] = {{{converted}}};")
        ready = " && ".join(f"a[{i}]" for i in range(count))
        lines.append(f"        PyObject *back = {ready} ? PyObject_Vectorcall(f, a, {count}, NULL) : NULL;")
        lines += [f"        Py_XDECREF(a[{i}]);" for i in range(count)]
    else:
        lines.append("        PyObject *back = PyObject_CallNoArgs(f);")
    lines += ["        if (back != NULL) {", f"            const char *what = {what}; (void)what;"]
    lines += [f"            {line}" for line in _from_python(result, count)]
    lines += ["            Py_DECREF(back);", "        }", "    }",
              "    if (failed) ni_callback_failed(f);",
              *(["    Py_XDECREF(types);"] if typed_pool else []),
              "    Py_XDECREF(f);",
              "    PyGILState_Release(gil);",
              "    return;" if result.kind == "void" else "    return r;",
              "}"]
    for slot in range(size):
        call = f"{'' if r_type == 'void' else 'return '}ni_cb{index}({slot}{names});"
        lines.append(f"static {r_type} ni_t{index}_{slot}({typed or 'void'}) {{ {call} }}")
    trampolines = ", ".join(f"(void *)ni_t{index}_{slot}" for slot in range(size))
    native_list = ", ".join(str(n) for n in (*natives, -1))
    cdecl = c_string(ctype.cdecl()) if typed_pool else "NULL"
    lines += [f"static void *const ni_tramps_{index}[{size}] = {{{trampolines}}};",
              f"static const int ni_natives_{index}[] = {{{native_list}}};",
              f"static PyObject *ni_refs_{index}[{size}], *ni_ids_{index}[{size}];",
              f"static char ni_strong_{index}[{size}];",
              f"static NiPool ni_pool_{index} = {{{size}, 0, 0, ni_refs_{index}, ni_ids_{index}, ni_strong_{index}, "
              f"ni_tramps_{index}, "
              f"ni_natives_{index}, NULL, {cdecl}, NULL, NULL}};",
              ""]
    return "\n".join(lines)


def convert_argument(position: int, pool: int, what: str, fall_back: str, held_before: dict[int, int]) -> Iterator[str]:
    """A wrapper's lines converting callback argument ``position`` to ``a<position>``; on a refusal the call
    goes to cffi after the slots held for earlier callback arguments are given back."""
    yield f"    void *a{position};"
    arguments = f"&ni_pool_{pool}, &ni_this, args[{position}], &a{position}, &h{position}, {what}"
    yield f"    {{ int took = ni_callback({arguments});"
    yield "      if (took < 0) goto fail;"
    yield f"      if (took > 0) {{ {release_held(held_before)} {fall_back} }} }}"


def release_held(held: dict[int, int]) -> str:
    """Give back the slots held for the call only (callables that cannot be weakly referenced);
    ``held``: the pool of each callback argument by position."""
    return " ".join(f"if (h{p} >= 0) ni_callback_done(&ni_pool_{pool}, h{p});" for p, pool in held.items())


# Around the C call of a function taking callbacks: this thread's exceptions raised in them are kept, then raised.
CALLS_START = "    NiCalls calls; ni_calls_begin(&calls);"
CALLS_END = "    if (ni_calls_end(&calls)) goto fail;  /* a callback raised: raised again now */"


CALLBACK_DECLARATIONS = r"""
/* One callback type's trampolines and the callables their slots hold. */
typedef struct {
    int size;
    int cursor;               /* where the search for a free slot starts: freed slots are reused as late as possible */
    int last;                 /* the slot found last, looked at first */
    PyObject **refs;          /* per slot: a weak reference to its callable, the callable (held for a call), or NULL */
    PyObject **ids;           /* per weakly held slot: its callable's address, only compared, never dereferenced */
    char *strong;             /* per slot: 1 when refs holds the callable itself, for one call */
    void *const *trampolines;
    const int *natives;       /* this module's functions of this very type, by method index, -1 ending */
    PyObject *on_death;       /* the weak references' callback, freeing the slot */
    const char *cdecl;        /* the callback type as cffi reads it, if pointers cross as cdata; else NULL */
    PyObject *types;          /* then its cffi types: (parameter types..., result type) */
    PyObject *typed_by;       /* the module's provider they came from (another after a rebind) */
} NiPool;

/* A call in progress that took Python callbacks, on this thread: the first exception they raised. */
typedef struct NiCalls { struct NiCalls *outer; PyObject *type, *value, *traceback; } NiCalls;

NI_HELPER int ni_callback(NiPool *pool, NiModule *module, PyObject *o, void **out, int *held, const char *what);
NI_HELPER void ni_callback_done(NiPool *pool, int slot);
NI_HELPER PyObject *ni_callback_gone_error(void);
/* The callable of a slot, referenced; NULL with ReferenceError set if it no longer exists. */
static inline PyObject *ni_callback_target(NiPool *pool, int slot) {  /* on every call: inlined */
    PyObject *ref = pool->refs[slot], *f = ref;
    if (ref == NULL) return ni_callback_gone_error();
    if (pool->strong[slot]) { Py_INCREF(f); return f; }
#if PY_VERSION_HEX >= 0x030D0000  /* PyWeakref_GET_OBJECT is deprecated there */
    if (PyWeakref_GetRef(ref, &f) <= 0) return ni_callback_gone_error();
#else
    f = PyWeakref_GET_OBJECT(ref);
    if (f == Py_None) return ni_callback_gone_error();
    Py_INCREF(f);
#endif
    return f;
}

NI_HELPER PyObject *ni_pool_load(NiPool *pool, NiModule *module);
/* The pool's cffi types, referenced (on every call of a pool passing pointers: inlined). */
static inline PyObject *ni_pool_types(NiPool *pool, NiModule *module) {
    if (pool->typed_by != module->provider) return ni_pool_load(pool, module);
    Py_INCREF(pool->types);
    return pool->types;
}
NI_HELPER int ni_pointer_back(PyObject *o, PyObject *ctype, int none_is_null, void **out);

NI_HELPER void ni_callback_failed(PyObject *f);
NI_HELPER void ni_calls_begin(NiCalls *calls);
NI_HELPER int ni_calls_end(NiCalls *calls);
"""

CALLBACK_HELPERS = r"""
static _Thread_local NiCalls *ni_calls_top;  /* this thread's innermost call taking callbacks */

static PyObject *ni_callbacks_module(void) {
    static PyObject *module;
    if (module == NULL) module = PyImport_ImportModule("nativeimport._cffi_callbacks");
    return module;
}

/* A function nativeimport bound (a cffi wrapper, another module's fast function): cffi passes its address. */
static int ni_is_native(PyObject *o) {
    if (PyFunction_Check(o)) {
        PyObject *dict = ((PyFunctionObject *)o)->func_dict;
        return dict != NULL && PyDict_GetItemString(dict, "__native__") != NULL;
    }
    if (!PyCFunction_Check(o)) return 0;
    PyObject *self = PyCFunction_GET_SELF(o);
    /* a bound method of a builtin object; Py_True marks a wrapper's keep_gil variant */
    if (self != NULL && self != Py_True && !PyModule_Check(self)) return 0;
    PyObject *module = ni_callbacks_module();
    PyObject *answer = module == NULL ? NULL : PyObject_CallMethod(module, "is_native", "O", o);
    int native = answer == NULL ? -1 : PyObject_IsTrue(answer);
    Py_XDECREF(answer);
    return native;
}

static PyObject *ni_callback_gone(PyObject *capsule, PyObject *ref) {
    NiPool *pool = (NiPool *)PyCapsule_GetPointer(capsule, NULL);
    for (int i = 0; pool != NULL && i < pool->size; i++) {
        if (pool->refs[i] == ref) {
            pool->refs[i] = NULL;
            pool->ids[i] = NULL;
            Py_DECREF(ref);
            break;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef ni_callback_gone_def = {"callback_gone", ni_callback_gone, METH_O, NULL};

/* A function-pointer argument: 0 with *out set (and *held the slot to give back after the call, or -1),
   1 when cffi must serve the call (a native function, a full pool), -1 with an error set. */
NI_HELPER int ni_callback(NiPool *pool, NiModule *module, PyObject *o, void **out, int *held, const char *what) {
    *held = -1;
    if (o == Py_None) { *out = NULL; return 0; }
    if (pool->cdecl != NULL && pool->typed_by != module->provider) {
        /* Now, on the calling thread, rather than in the first callback (maybe on a thread of C's own). */
        PyObject *types = ni_pool_load(pool, module);
        if (types == NULL) return -1;
        Py_DECREF(types);
    }
    int i = pool->last;
    if (pool->ids[i] != o) {
        for (i = 0; i < pool->size && pool->ids[i] != o; i++) {}
    }
    if (i < pool->size) {
        pool->last = i;
        *out = pool->trampolines[i];
        return 0;
    }
    if (strncmp(Py_TYPE(o)->tp_name, "_cffi_backend.", 14) == 0) return 1;  /* a cdata: cffi checks its type */
    if (PyCFunction_Check(o)) {
        PyMethodDef *method = ((PyCFunctionObject *)o)->m_ml;
        if (method >= module->methods && method < module->methods + module->count) {
            int index = (int)(method - module->methods);
            for (const int *n = pool->natives; *n >= 0; n++) {
                if (*n == index) { *out = *module->slots[index]; return 0; }
            }
            return 1;  /* another type: cffi explains */
        }
    }
    int native = ni_is_native(o);
    if (native) return native < 0 ? -1 : 1;
    if (!PyCallable_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a function (native or Python), not %.200s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    if (pool->on_death == NULL) {
        PyObject *capsule = PyCapsule_New(pool, NULL, NULL);
        if (capsule == NULL) return -1;
        pool->on_death = PyCFunction_New(&ni_callback_gone_def, capsule);
        Py_DECREF(capsule);
        if (pool->on_death == NULL) return -1;
    }
    /* Made before a slot is chosen: making it may run Python (a collection), which may take slots. */
    PyObject *ref = PyWeakref_NewRef(o, pool->on_death);
    if (ref == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
        PyErr_Clear();  /* not weakly referenceable: held for this call only */
    }
    int size = pool->size, free_slot = -1;
    for (int k = 0; k < size && free_slot < 0; k++) {
        int j = (pool->cursor + k) % size;
        if (pool->refs[j] == NULL) free_slot = j;
    }
    if (free_slot < 0) {  /* every slot taken: cffi makes a callback of its own */
        Py_XDECREF(ref);
        return 1;
    }
    if (ref == NULL) {
        Py_INCREF(o);
        pool->refs[free_slot] = o;
        pool->strong[free_slot] = 1;
        *held = free_slot;
    } else {
        pool->refs[free_slot] = ref;
        pool->ids[free_slot] = o;
        pool->last = free_slot;
    }
    pool->cursor = (free_slot + 1) % size;
    *out = pool->trampolines[free_slot];
    return 0;
}

/* After the call: the slot held for it is free again (its callable was referenced strongly). */
NI_HELPER void ni_callback_done(NiPool *pool, int slot) {
    PyObject *o = pool->refs[slot];
    pool->refs[slot] = NULL;
    pool->strong[slot] = 0;
    Py_XDECREF(o);
}

/* The cffi types pointers cross with, from the module's cffi binding (made now if need be): ffi.typeof of
   the callback type, its args and result, exactly what cffi's own callbacks convert with. Kept with the
   provider they came from: a module bound anew (a reload) has another ffi. Referenced, or NULL with an
   error set. */
NI_HELPER PyObject *ni_pool_load(NiPool *pool, NiModule *module) {
    PyObject *provider = module->provider, *types = NULL;
    Py_INCREF(provider);  /* the call below runs Python, which may bind the module anew */
    PyObject *callback = ni_typeof(provider, pool->cdecl);
    PyObject *args = callback == NULL ? NULL : PyObject_GetAttrString(callback, "args");
    PyObject *result = args == NULL ? NULL : PyObject_GetAttrString(callback, "result");
    Py_XDECREF(callback);
    if (result != NULL && PyTuple_Check(args)) {
        Py_ssize_t count = PyTuple_GET_SIZE(args);
        types = PyTuple_New(count + 1);
        for (Py_ssize_t i = 0; types != NULL && i < count; i++) {
            PyObject *ctype = PyTuple_GET_ITEM(args, i);
            Py_INCREF(ctype);
            PyTuple_SET_ITEM(types, i, ctype);
        }
        if (types != NULL) {
            Py_INCREF(result);
            PyTuple_SET_ITEM(types, count, result);
        }
    } else if (result != NULL) {
        PyErr_Format(PyExc_TypeError, "cffi's type %s has no parameter types", pool->cdecl);
    }
    Py_XDECREF(args);
    Py_XDECREF(result);
    if (types == NULL) { Py_DECREF(provider); return NULL; }
    Py_XSETREF(pool->typed_by, provider);
    Py_INCREF(types);
    Py_XSETREF(pool->types, types);
    return types;
}

/* A callback's pointer result, by cffi's own rules (the conversion cffi's callbacks use: a cdata of a
   compatible pointer type, or an array); None is NULL where the cffi binder makes it so. 0, or -1 with
   cffi's error set. */
NI_HELPER int ni_pointer_back(PyObject *o, PyObject *ctype, int none_is_null, void **out) {
    char *(*to_pointer)(PyObject *, PyObject *) = (char *(*)(PyObject *, PyObject *))ni_cffi_exports[11];
    if (o == Py_None && none_is_null) { *out = NULL; return 0; }
    char *p = to_pointer(o, ctype);
    if (p == NULL && PyErr_Occurred()) return -1;  /* else a NULL cdata (ffi.NULL) */
    *out = p;
    return 0;
}

NI_HELPER PyObject *ni_callback_gone_error(void) {
    PyErr_SetString(PyExc_ReferenceError, "the Python function behind this C callback no longer exists; "
                    "keep a reference to it for as long as C may call it");
    return NULL;
}

/* A callback raised (error set): kept for the call in progress on this thread, else handed to the cffi
   binder's bookkeeping (a cffi-served call in progress keeps it, or it is reported as unraisable). */
NI_HELPER void ni_callback_failed(PyObject *f) {
    NiCalls *calls = ni_calls_top;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) PyException_SetTraceback(value, traceback);
    if (calls != NULL && calls->type == NULL) {
        calls->type = type; calls->value = value; calls->traceback = traceback;
        return;
    }
    PyObject *module = ni_callbacks_module();
    PyObject *name = f == NULL ? PyUnicode_FromString("(no longer exists)") : PyObject_Repr(f);
    PyObject *done = NULL;
    if (module != NULL && name != NULL) {
        done = calls != NULL ? PyObject_CallMethod(module, "unraisable", "Os", value,
                                                   "Exception ignored in a callback (an earlier one is raised)")
                             : PyObject_CallMethod(module, "record_error", "OO", value, name);
    }
    if (done == NULL) PyErr_WriteUnraisable(f != NULL ? f : Py_None);
    Py_XDECREF(done);
    Py_XDECREF(name);
    Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(traceback);
}

/* keep_error(exception) -> bool: the cffi binder's callbacks hand over an exception raised while no cffi call
   is in progress; kept (True) if this thread is in a call of this wrapper taking callbacks. */
static PyObject *ni_keep_error(PyObject *unused, PyObject *error) {
    NiCalls *calls = ni_calls_top;
    if (calls == NULL || calls->type != NULL || !PyExceptionInstance_Check(error)) Py_RETURN_FALSE;
    Py_INCREF(Py_TYPE(error));
    calls->type = (PyObject *)Py_TYPE(error);
    Py_INCREF(error);
    calls->value = error;
    calls->traceback = PyException_GetTraceback(error);
    Py_RETURN_TRUE;
}

static PyMethodDef ni_keep_error_def = {"keep_error", ni_keep_error, METH_O, NULL};

/* Once per wrapper, at its first call taking callbacks: ni_keep_error joins _cffi_callbacks.FAST_CALLS. */
static void ni_join_cffi_callbacks(void) {
    PyObject *module = ni_callbacks_module();
    PyObject *calls = module == NULL ? NULL : PyObject_GetAttrString(module, "FAST_CALLS");
    PyObject *keep = calls == NULL ? NULL : PyCFunction_New(&ni_keep_error_def, NULL);
    if (keep == NULL || PyList_Append(calls, keep) < 0) PyErr_Clear();  /* only where errors go is at stake */
    Py_XDECREF(keep);
    Py_XDECREF(calls);
}

NI_HELPER void ni_calls_begin(NiCalls *calls) {
    static int joined;
    if (!joined) {
        joined = 1;
        ni_join_cffi_callbacks();
    }
    calls->outer = ni_calls_top;
    calls->type = calls->value = calls->traceback = NULL;
    ni_calls_top = calls;
}

/* After the C call: -1 with the first exception a callback raised set again, else 0. */
NI_HELPER int ni_calls_end(NiCalls *calls) {
    ni_calls_top = calls->outer;
    if (calls->type == NULL) return 0;
    PyErr_Restore(calls->type, calls->value, calls->traceback);
    return -1;
}
"""
