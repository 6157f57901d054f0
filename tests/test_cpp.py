"""C++ through the C++ driver: extern "C" functions over structs, enums and classes behind handles."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import Runner

if not any(shutil.which(name) for name in ("c++", "g++", "clang++")):
    pytest.skip("no C++ compiler (Debian: apt-get install g++)", allow_module_level=True)

BINDERS = [pytest.param({}, id="default"), pytest.param({"NATIVEIMPORT_BINDER": "cffi"}, id="cffi")]

SETTINGS_HPP = "#pragma once\nconstexpr int kStep = 1;\n"
SHAPES_CPP = """
#include <stdexcept>
#include <string>
#include <vector>
#include "settings.hpp"

namespace tally {
// A C++ class with state C cannot see (a vector, private members): Python holds it by handle.
class Counter {
 public:
  explicit Counter(int start) : value_(start) {}
  int bump(int by) { value_ += by * kStep; seen_.push_back(by); return value_; }
  int value() const { return value_; }
  int times() const { return static_cast<int>(seen_.size()); }
 private:
  int value_;
  std::vector<int> seen_;
};
}  // namespace tally

struct Point { double x; double y; };
enum Shade { light = 1, dark = 2 };
// A struct C cannot describe (a std::string member): behind a pointer, a handle too.
struct Label { std::string text; };

namespace api {
// extern "C" inside a namespace: still a plain C name.
extern "C" int api_version() { return 3; }
}

extern "C" {
/// A new counter, starting at start.
tally::Counter *counter_new(int start) { return new tally::Counter(start); }
int counter_bump(tally::Counter *c, int by) { return c->bump(by); }
int counter_times(const tally::Counter *c) { return c->times(); }
void counter_free(tally::Counter *c) { delete c; }

/// Squared length of p.
double norm2(Point p) { return p.x * p.x + p.y * p.y; }
void scale(Point *p, double k) { p->x *= k; p->y *= k; }
Point midpoint(Point a, Point b) { return Point{(a.x + b.x) / 2, (a.y + b.y) / 2}; }
int shade_weight(Shade s) { return s == dark ? 10 * kStep : kStep; }
double sum(const double *xs, int n) { double s = 0; for (int i = 0; i < n; ++i) s += xs[i]; return s; }

Label *label_new(const char *text) { return new Label{text}; }
int label_length(const Label *l) { return static_cast<int>(l->text.size()); }
void label_free(Label *l) { delete l; }

int checked_div(int a, int b) {
  if (b == 0) throw std::domain_error("division by zero in checked_div");
  return a / b;
}
}

// Not extern "C": a C++-ABI function with a mangled name.
int forgot_extern_c(int x) { return x; }
"""


def _write(runner: Runner) -> None:
    runner.write("shapes.cpp", SHAPES_CPP)
    runner.write("settings.hpp", SETTINGS_HPP)


@pytest.mark.parametrize("binder", BINDERS)
def test_structs_enums_and_buffers(runner: Runner, binder: dict[str, str]) -> None:
    _write(runner)
    result = runner.json("""
        import array, json, warnings, nativeimport
        nativeimport.install()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import shapes
        p = shapes.Point(x=3.0, y=4.0)
        shapes.scale(p, 2.0)
        m = shapes.midpoint(shapes.Point(0.0, 0.0), shapes.Point(2.0, 4.0))
        print(json.dumps({
            "norm2": shapes.norm2(shapes.Point(3.0, 4.0)), "scaled": [p.x, p.y], "mid": [m.x, m.y],
            "shade": [shapes.shade_weight(shapes.Shade.dark), shapes.shade_weight(shapes.light)],
            "sum": shapes.sum(array.array("d", [1.0, 2.0, 3.5]), 3),
            "div": shapes.checked_div(7, 2), "version": shapes.api_version(),
            "doc": shapes.norm2.__doc__, "handle_doc": shapes.counter_new.__doc__,
            "warnings": [f"shapes.{n} was left out: {r}" for n, r in sorted(shapes.__native_left_out__.items())],
            "summary": [str(w.message).split(";")[0] for w in caught],
            "exports": sorted(shapes.__all__),
        }))
    """, env=binder)
    assert result["norm2"] == 25.0
    assert result["scaled"] == [6.0, 8.0]
    assert result["mid"] == [1.0, 2.0]
    assert result["shade"] == [10, 1]
    assert result["sum"] == 6.5
    assert result["div"] == 3
    assert result["version"] == 3
    assert result["doc"] == "double norm2(Point p)\n\nSquared length of p."
    assert result["handle_doc"] == "tally::Counter *counter_new(int start)\n\nA new counter, starting at start."
    # The one C++-ABI function said aloud is the free function that lacks extern "C"; the class's
    # members and std::vector's instances, also exported, are not bindable and not worth a warning each.
    assert result["warnings"] == [
        "shapes.forgot_extern_c was left out: it is a C++ function (its symbol is the mangled _Z15forgot_extern_ci); "
        'declare it extern "C" to export it'
    ]
    assert result["summary"] == ["shapes: 1 export left out (forgot_extern_c)"]  # one warning, at the build
    assert "forgot_extern_c" not in result["exports"]
    assert {"counter_new", "counter_bump", "counter_free", "label_new", "label_length", "norm2", "Point",
            "Shade"} <= set(result["exports"])


HANDLE_CALLS = """
    import json, nativeimport
    nativeimport.install()
    import shapes
    c = shapes.counter_new(5)
    values = [shapes.counter_bump(c, 3), shapes.counter_bump(c, 4), shapes.counter_times(c)]
    shapes.counter_free(c)
    label = shapes.label_new("hello")
    values.append(shapes.label_length(label))
    shapes.label_free(label)
    print(json.dumps(values))
"""


@pytest.mark.parametrize("binder", BINDERS)
def test_a_class_behind_a_handle(runner: Runner, binder: dict[str, str]) -> None:
    _write(runner)
    assert runner.json(HANDLE_CALLS, env=binder) == [8, 12, 2, 5]


@pytest.mark.parametrize("binder", BINDERS)
def test_an_escaping_exception_stops_the_process_with_its_message(runner: Runner, binder: dict[str, str]) -> None:
    # The documented behaviour: no handler above the extern "C" frame, so std::terminate runs,
    # the C++ runtime prints the exception, and the process aborts. Never silent.
    _write(runner)
    done = runner.run("""
        import nativeimport
        nativeimport.install()
        import shapes
        print("before", shapes.checked_div(8, 2), flush=True)
        shapes.checked_div(1, 0)
        print("after", flush=True)
    """, check=False, env=binder)
    assert done.returncode == -signal.SIGABRT
    assert "before 4" in done.stdout and "after" not in done.stdout
    assert "std::domain_error" in done.stderr
    assert "division by zero in checked_div" in done.stderr


def test_headers_are_tracked_and_cxxflags_honoured(runner: Runner) -> None:
    _write(runner)
    code = """
        import json, nativeimport
        nativeimport.install()
        import shapes
        print(json.dumps(shapes.shade_weight(shapes.dark)))
    """
    assert runner.json(code) == 10
    runner.write("settings.hpp", "#pragma once\nconstexpr int kStep = 3;\n")
    assert runner.json(code) == 30
    # A C++20 feature builds when CXXFLAGS asks for C++20, and the flags are part of the key.
    runner.write("modern.cc", """
        consteval int square(int x) { return x * x; }
        extern "C" int nine() { return square(3); }
    """)
    modern = """
        import json, nativeimport
        nativeimport.install()
        import modern
        print(json.dumps(modern.nine()))
    """
    assert runner.json(modern, env={"CXXFLAGS": "-std=c++20"}) == 9
    assert "consteval" in runner.import_error("modern", "CompileError", env={"CXXFLAGS": "-std=c++14"})


@pytest.mark.parametrize("cxx", ["c++", "g++"])
def test_identical_functions_keep_their_own_signatures(runner: Runner, cxx: str) -> None:
    # The driver recognises GCC by either name and passes -fno-ipa-icf, as the C driver does, so
    # identical code folding never leaves a twin without debug info; both bind, with no warning.
    if shutil.which(cxx) is None or "clang" in subprocess.run([cxx, "--version"], capture_output=True,
                                                               text=True).stdout:
        pytest.skip(f"{cxx} is not GCC here")
    runner.write("twins.cpp", """
        extern "C" long twin_a(long x) { return x * 3 + 1; }
        extern "C" long twin_b(long x) { return x * 3 + 1; }
    """)
    assert runner.json("""
        import json, warnings, nativeimport
        nativeimport.install()
        warnings.simplefilter("error")
        import twins
        print(json.dumps([twins.twin_a(2), twins.twin_b(3)]))
    """, env={"CXX": cxx}) == [7, 10]


def test_a_compile_error_shows_file_and_line(runner: Runner) -> None:
    runner.write("broken.cpp", 'extern "C" int f() {\n    return missing_name;\n}\n')
    message = runner.import_error("broken", "CompileError")
    # (g++ quotes the name with typographic or plain quotes depending on the locale.)
    assert "broken.cpp:2:12: error:" in message and "missing_name" in message and "not declared" in message
    assert runner.entries() == []


def test_a_missing_compiler_says_what_to_install(runner: Runner) -> None:
    runner.write("tiny.cxx", 'extern "C" int one() { return 1; }\n')
    message = runner.import_error("tiny", "ToolchainNotFound", env={"CXX": "/nonexistent/c++"})
    assert "CXX='/nonexistent/c++'" in message and "apt-get install g++" in message


def test_doctor_lists_cpp(runner: Runner) -> None:
    report = json.loads(runner.cli("doctor", "--json").stdout)
    cpp = next(d for d in report["drivers"] if d["name"] == "cpp")
    assert cpp["found"] and cpp["suffixes"] == [".cpp", ".cc", ".cxx"]
    assert cpp["entry_point"] == "nativeimport.compilers.cpp:CppDriver"


def test_cpython_and_pypy_share_the_build(runner: Runner, pypy: Path) -> None:
    _write(runner)
    code = """
        import array, json, nativeimport
        nativeimport.install()
        import shapes
        p = shapes.Point(1.5, 2.0)
        shapes.scale(p, 2.0)
        print(json.dumps([shapes.norm2(shapes.Point(3.0, 4.0)), [p.x, p.y], shapes.shade_weight(shapes.Shade.dark),
                          shapes.sum(array.array("d", [1.0, 2.0]), 2), shapes.checked_div(9, 3)]))
    """
    on_cpython = runner.json(code)
    script = runner.project / "_on_pypy.py"
    script.write_text(textwrap.dedent(code))
    done = subprocess.run([str(pypy), str(script)], cwd=runner.project, env=runner.env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == on_cpython == [25.0, [3.0, 4.0], 10, 3.0, 3]
    assert len(runner.entries()) == 1  # one build, both interpreters
    # An escaping exception ends PyPy as it ends CPython: the runtime's message, then SIGABRT.
    script.write_text("import nativeimport\nnativeimport.install()\nimport shapes\nshapes.checked_div(1, 0)\n")
    done = subprocess.run([str(pypy), str(script)], cwd=runner.project, env=runner.env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == -signal.SIGABRT
    assert "std::domain_error" in done.stderr and "division by zero in checked_div" in done.stderr


def test_a_class_behind_a_handle_on_pypy(runner: Runner, pypy: Path) -> None:
    _write(runner)
    script = runner.project / "_on_pypy.py"
    script.write_text(textwrap.dedent(HANDLE_CALLS))
    done = subprocess.run([str(pypy), str(script)], cwd=runner.project, env=runner.env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [8, 12, 2, 5]


def test_per_source_settings_choose_the_standard(runner: Runner) -> None:
    runner.write("modern.cpp", """
        /* nativeimport:
        flags = ["-std=c++20"]
        define = ["BASE=40"]
        */
        consteval int base() { return BASE; }   // C++20 only
        extern "C" int answer(void) { return base() + 2; }
    """)
    found = runner.json("import json, nativeimport; nativeimport.install(); import modern; "
                        "print(json.dumps(modern.answer()))")
    assert found == 42
