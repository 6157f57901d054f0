/* What a careful person writes by hand: METH_FASTCALL and PyObject_GetBuffer, no framework. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

double add(double a, double b);
int64_t add3(int64_t a, int64_t b, int64_t c);
void nothing(void);
double sum(const double *xs, size_t n);

static PyObject *h_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "add() takes 2 arguments"); return NULL; }
    double a = PyFloat_AsDouble(args[0]);
    if (a == -1.0 && PyErr_Occurred()) return NULL;
    double b = PyFloat_AsDouble(args[1]);
    if (b == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(add(a, b));
}

static PyObject *h_add3(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "add3() takes 3 arguments"); return NULL; }
    long long v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = PyLong_AsLongLong(args[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    return PyLong_FromLongLong(add3(v[0], v[1], v[2]));
}

static PyObject *h_nothing(PyObject *self, PyObject *unused) { nothing(); Py_RETURN_NONE; }

static PyObject *h_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "sum() takes 2 arguments"); return NULL; }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (view.itemsize != 8 || view.format == NULL || view.format[0] != 'd') {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "expected a buffer of doubles");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred()) { PyBuffer_Release(&view); return NULL; }
    double r = sum((const double *)view.buf, (size_t)n);
    PyBuffer_Release(&view);
    return PyFloat_FromDouble(r);
}

static PyMethodDef methods[] = {
    {"add", (PyCFunction)(void (*)(void))h_add, METH_FASTCALL, NULL},
    {"add3", (PyCFunction)(void (*)(void))h_add3, METH_FASTCALL, NULL},
    {"nothing", h_nothing, METH_NOARGS, NULL},
    {"sum", (PyCFunction)(void (*)(void))h_sum, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "handmade", NULL, -1, methods};
PyMODINIT_FUNC PyInit_handmade(void) { return PyModule_Create(&module); }
