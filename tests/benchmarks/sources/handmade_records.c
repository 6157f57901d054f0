/* records.c bound by hand, as a careful person writes it: Vec2 a real extension type holding the C
   struct inline (members, tp_init with keywords), the Counter handle a small type owning the pointer,
   the callback through a C trampoline calling the current Python function with PyObject_Vectorcall. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct { double x, y; } Vec2;
typedef struct Counter Counter;
double vlen(Vec2 v);
void vnorm(Vec2 *v);
Vec2 vadd(Vec2 a, Vec2 b);
Counter *counter_new(void);
void counter_add(Counter *c, int64_t k);
int64_t counter_get(const Counter *c);
void counter_free(Counter *c);
double sum_calls(double (*f)(double), int n);
double sum_calls_released(double (*f)(double), int n);
const char *greet(const char *name);

/* Vec2 */

typedef struct { PyObject_HEAD Vec2 v; } Vec2Object;
static PyTypeObject Vec2Type;

static int vec2_init(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"x", "y", NULL};
    Vec2 *v = &((Vec2Object *)self)->v;
    v->x = v->y = 0.0;
    return PyArg_ParseTupleAndKeywords(args, kwds, "|dd:Vec2", keywords, &v->x, &v->y) ? 0 : -1;
}

static PyObject *vec2_repr(PyObject *self) {
    char text[96];
    Vec2 *v = &((Vec2Object *)self)->v;
    PyOS_snprintf(text, sizeof text, "Vec2(x=%.17g, y=%.17g)", v->x, v->y);
    return PyUnicode_FromString(text);
}

static PyMemberDef vec2_members[] = {
    {"x", T_DOUBLE, offsetof(Vec2Object, v.x), 0, NULL},
    {"y", T_DOUBLE, offsetof(Vec2Object, v.y), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject Vec2Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "handmade_records.Vec2",
    .tp_basicsize = sizeof(Vec2Object),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = vec2_init,
    .tp_repr = vec2_repr,
    .tp_members = vec2_members,
};

static Vec2 *as_vec2(PyObject *o) {
    if (!PyObject_TypeCheck(o, &Vec2Type)) {
        PyErr_Format(PyExc_TypeError, "expected a Vec2, got %.200s", Py_TYPE(o)->tp_name);
        return NULL;
    }
    return &((Vec2Object *)o)->v;
}

static PyObject *h_vlen(PyObject *self, PyObject *arg) {
    Vec2 *v = as_vec2(arg);
    return v == NULL ? NULL : PyFloat_FromDouble(vlen(*v));
}

static PyObject *h_vnorm(PyObject *self, PyObject *arg) {
    Vec2 *v = as_vec2(arg);
    if (v == NULL) return NULL;
    vnorm(v);
    Py_RETURN_NONE;
}

static PyObject *h_vadd(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "vadd() takes 2 arguments"); return NULL; }
    Vec2 *a = as_vec2(args[0]), *b;
    if (a == NULL || (b = as_vec2(args[1])) == NULL) return NULL;
    PyObject *result = Vec2Type.tp_alloc(&Vec2Type, 0);
    if (result != NULL) ((Vec2Object *)result)->v = vadd(*a, *b);
    return result;
}

/* Counter: the handle owns its pointer; counter_free releases it early. */

typedef struct { PyObject_HEAD Counter *c; } CounterObject;

static void counter_dealloc(PyObject *self) {
    if (((CounterObject *)self)->c != NULL) counter_free(((CounterObject *)self)->c);
    Py_TYPE(self)->tp_free(self);
}

static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "handmade_records.Counter",
    .tp_basicsize = sizeof(CounterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = counter_dealloc,
};

static Counter *as_counter(PyObject *o) {
    if (!PyObject_TypeCheck(o, &CounterType)) {
        PyErr_Format(PyExc_TypeError, "expected a Counter, got %.200s", Py_TYPE(o)->tp_name);
        return NULL;
    }
    if (((CounterObject *)o)->c == NULL) { PyErr_SetString(PyExc_ValueError, "Counter already freed"); return NULL; }
    return ((CounterObject *)o)->c;
}

static PyObject *h_counter_new(PyObject *self, PyObject *unused) {
    CounterObject *o = PyObject_New(CounterObject, &CounterType);
    if (o == NULL) return NULL;
    if ((o->c = counter_new()) == NULL) { Py_DECREF(o); return PyErr_NoMemory(); }
    return (PyObject *)o;
}

static PyObject *h_counter_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "counter_add() takes 2 arguments"); return NULL; }
    Counter *c = as_counter(args[0]);
    if (c == NULL) return NULL;
    long long k = PyLong_AsLongLong(args[1]);
    if (k == -1 && PyErr_Occurred()) return NULL;
    counter_add(c, k);
    Py_RETURN_NONE;
}

static PyObject *h_counter_get(PyObject *self, PyObject *arg) {
    Counter *c = as_counter(arg);
    return c == NULL ? NULL : PyLong_FromLongLong(counter_get(c));
}

static PyObject *h_counter_free(PyObject *self, PyObject *arg) {
    Counter *c = as_counter(arg);
    if (c == NULL) return NULL;
    counter_free(c);
    ((CounterObject *)arg)->c = NULL;
    Py_RETURN_NONE;
}

/* The callback: C gets a plain function pointer, so the Python function waits in a global. The first
   exception stops the calls from reaching Python and is raised when sum_calls returns. */

static PyObject *current_callback;
static int callback_failed;

static double trampoline(double x) {
    if (callback_failed) return 0.0;
    PyObject *arg = PyFloat_FromDouble(x);
    if (arg == NULL) { callback_failed = 1; return 0.0; }
    PyObject *result = PyObject_Vectorcall(current_callback, &arg, 1, NULL);
    Py_DECREF(arg);
    if (result == NULL) { callback_failed = 1; return 0.0; }
    double value = PyFloat_AsDouble(result);
    Py_DECREF(result);
    if (value == -1.0 && PyErr_Occurred()) callback_failed = 1;
    return value;
}

static PyObject *h_sum_calls(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "sum_calls() takes 2 arguments"); return NULL; }
    if (!PyCallable_Check(args[0])) { PyErr_SetString(PyExc_TypeError, "sum_calls() needs a callable"); return NULL; }
    long n = PyLong_AsLong(args[1]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < INT_MIN || n > INT_MAX) { PyErr_SetString(PyExc_OverflowError, "n does not fit an int"); return NULL; }
    PyObject *outer = current_callback;  /* sum_calls may be called from inside a callback */
    int outer_failed = callback_failed;
    current_callback = args[0];
    callback_failed = 0;
    double s = sum_calls(trampoline, (int)n);
    int failed = callback_failed;
    current_callback = outer;
    callback_failed = outer_failed;
    return failed ? NULL : PyFloat_FromDouble(s);
}

/* The hand-written way to let C call back from threads of its own: the GIL released while sum_calls
   runs, taken back by the trampoline for each call. */
static double released_trampoline(double x) {
    PyGILState_STATE state = PyGILState_Ensure();
    double value = trampoline(x);
    PyGILState_Release(state);
    return value;
}

static PyObject *h_sum_calls_released(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "sum_calls_released() takes 2 arguments"); return NULL; }
    if (!PyCallable_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "sum_calls_released() needs a callable");
        return NULL;
    }
    long n = PyLong_AsLong(args[1]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < INT_MIN || n > INT_MAX) { PyErr_SetString(PyExc_OverflowError, "n does not fit an int"); return NULL; }
    PyObject *outer = current_callback;
    int outer_failed = callback_failed;
    current_callback = args[0];
    callback_failed = 0;
    double s;
    Py_BEGIN_ALLOW_THREADS
    s = sum_calls_released(released_trampoline, (int)n);
    Py_END_ALLOW_THREADS
    int failed = callback_failed;
    current_callback = outer;
    callback_failed = outer_failed;
    return failed ? NULL : PyFloat_FromDouble(s);
}

static PyObject *h_greet(PyObject *self, PyObject *arg) {
    Py_ssize_t size;
    const char *name = PyUnicode_AsUTF8AndSize(arg, &size);
    if (name == NULL) return NULL;
    if ((size_t)size != strlen(name)) { PyErr_SetString(PyExc_ValueError, "embedded NUL in name"); return NULL; }
    return PyUnicode_FromString(greet(name));
}

static PyMethodDef methods[] = {
    {"vlen", h_vlen, METH_O, NULL},
    {"vnorm", h_vnorm, METH_O, NULL},
    {"vadd", (PyCFunction)(void (*)(void))h_vadd, METH_FASTCALL, NULL},
    {"counter_new", h_counter_new, METH_NOARGS, NULL},
    {"counter_add", (PyCFunction)(void (*)(void))h_counter_add, METH_FASTCALL, NULL},
    {"counter_get", h_counter_get, METH_O, NULL},
    {"counter_free", h_counter_free, METH_O, NULL},
    {"sum_calls", (PyCFunction)(void (*)(void))h_sum_calls, METH_FASTCALL, NULL},
    {"sum_calls_released", (PyCFunction)(void (*)(void))h_sum_calls_released, METH_FASTCALL, NULL},
    {"greet", h_greet, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "handmade_records", NULL, -1, methods};

PyMODINIT_FUNC PyInit_handmade_records(void) {
    if (PyType_Ready(&Vec2Type) < 0 || PyType_Ready(&CounterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&Vec2Type);
    Py_INCREF(&CounterType);
    if (PyModule_AddObject(m, "Vec2", (PyObject *)&Vec2Type) < 0 ||
        PyModule_AddObject(m, "Counter", (PyObject *)&CounterType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
