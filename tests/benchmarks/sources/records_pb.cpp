// cppimport
// records.c bound with pybind11 as its documentation suggests: Vec2 a py::class_ with def_readwrite and a
// py::init with named arguments, the Counter handle a class whose holder frees it, the callback a
// std::function called from a C trampoline (C takes a plain function pointer).
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
namespace py = pybind11;

extern "C" {
#include "records.c"
}

// records.c only declares Counter; pybind11 needs a complete type to register it.
struct Counter { int64_t total; };
struct CounterFree { void operator()(Counter *c) const { counter_free(c); } };

static std::function<double(double)> *current_callback = nullptr;
static double trampoline(double x) { return (*current_callback)(x); }

PYBIND11_MODULE(records_pb, m) {
    py::class_<Vec2>(m, "Vec2")
        .def(py::init([](double x, double y) { return Vec2{x, y}; }), py::arg("x") = 0.0, py::arg("y") = 0.0)
        .def_readwrite("x", &Vec2::x)
        .def_readwrite("y", &Vec2::y);
    m.def("vlen", &vlen);
    m.def("vnorm", &vnorm);
    m.def("vadd", &vadd);
    py::class_<Counter, std::unique_ptr<Counter, CounterFree>>(m, "Counter");
    m.def("counter_new", &counter_new, py::return_value_policy::take_ownership);
    m.def("counter_add", &counter_add);
    m.def("counter_get", &counter_get);
    m.def("sum_calls", [](std::function<double(double)> f, int n) {
        // A Python exception inside f propagates as a C++ exception through sum_calls: C code between
        // the throw and the catch is not unwound, so restore the outer callback however we leave.
        auto *outer = current_callback;
        current_callback = &f;
        struct Restore { std::function<double(double)> *outer; ~Restore() { current_callback = outer; } } restore{outer};
        return sum_calls(trampoline, n);
    });
    m.def("sum_calls_released", [](std::function<double(double)> f, int n) {
        // The GIL released while C runs; pybind11's std::function takes it back for each call.
        auto *outer = current_callback;
        current_callback = &f;
        struct Restore { std::function<double(double)> *outer; ~Restore() { current_callback = outer; } } restore{outer};
        py::gil_scoped_release released;
        return sum_calls_released(trampoline, n);
    });
    m.def("greet", &greet);
}
/*
<%
setup_pybind11(cfg)
%>
*/
