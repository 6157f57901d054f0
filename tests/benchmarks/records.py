"""Structs, a handle, a callback and a string: sources/records.c through every binder, side by side.

Run by bench.py (inside run.py's environment, which has the peers). The same C file is bound by
nativeimport (the fast binder, and the cffi binder for comparison), by hand (sources/handmade_records.c:
Vec2 a real extension type holding the struct, the callback a C trampoline), by pybind11
(sources/records_pb.cpp through cppimport) and by cffi's API mode. Each tool must give the
hand-written extension's answer before it is timed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from timing import interleaved

HANDMADE = "hand-written extension (Vec2 a type)"
CALLBACK_CALLS = 100

# case -> (statement timed, number of runs per sample, calls per run, expression checked against the
# hand-written extension's). The statements read the names record_scope() defines.
CASES: dict[str, tuple[str, int, int, str]] = {
    "double vlen(Vec2 v): struct by value": ("f.vlen(v)", 50_000, 1, "f.vlen(v)"),
    "void vnorm(Vec2 *v): by pointer, in place": ("f.vnorm(u)", 50_000, 1, "(f.vnorm(u), u.x, u.y)[1:]"),
    "Vec2 vadd(Vec2 a, Vec2 b): in and out": ("f.vadd(v, w)", 50_000, 1, "(lambda r: (r.x, r.y))(f.vadd(v, w))"),
    "Vec2(x=1.0, y=2.0)": ("f.Vec2(x=1.0, y=2.0)", 50_000, 1, "(lambda r: (r.x, r.y))(f.Vec2(x=1.0, y=2.0))"),
    "Vec2(1.0, 2.0)": ("f.Vec2(1.0, 2.0)", 50_000, 1, "(lambda r: (r.x, r.y))(f.Vec2(1.0, 2.0))"),
    "v.x": ("v.x", 100_000, 1, "v.x"),
    "counter_add(c, 1): opaque Counter *": ("f.counter_add(c, 1)", 50_000, 1,
                                            "(f.counter_add(c, 1), f.counter_get(c))[1]"),
    f"callback: sum_calls(f, {CALLBACK_CALLS}), per call of f": (f"f.sum_calls(cb, {CALLBACK_CALLS})", 500,
                                                                 CALLBACK_CALLS, f"f.sum_calls(cb, {CALLBACK_CALLS})"),
    # C that may call back from threads of its own needs the GIL released while it runs, each callback taking
    # it back: what nativeimport does by default, cffi always, a hand-written extension and pybind11 when asked.
    f"callback, GIL released around the C call: sum_calls_released(f, {CALLBACK_CALLS}), per call of f": (
        f"f.sum_calls_released(cb, {CALLBACK_CALLS})", 500, CALLBACK_CALLS,
        f"f.sum_calls_released(cb, {CALLBACK_CALLS})"),
    "const char *greet(const char *): str in and out": ('f.greet("world")', 50_000, 1, 'f.greet("world")'),
}


def callback(x: float) -> float:
    """The Python function C calls back: as little work as a function can do, so the binder's cost shows."""
    return x


def record_scope(tool: Any) -> dict[str, Any]:
    """The names the statements use, made by ``tool`` itself (cffi needs struct values and pointers apart)."""
    made = getattr(tool, "bench_scope", None)
    if made is not None:
        return made()  # type: ignore[no-any-return]
    return {"f": tool, "v": tool.Vec2(3.0, 4.0), "w": tool.Vec2(1.0, 2.0), "u": tool.Vec2(3.0, 4.0),
            "c": tool.counter_new(), "cb": callback}


def load_extension(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handmade(src: Path, root: Path) -> Any:
    built = root / f"handmade_records{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(["gcc", "-O2", "-fPIC", "-shared", f"-I{sysconfig.get_paths()['include']}", "-o", str(built),
                    str(src / "handmade_records.c"), str(src / "records.c"), "-lm"], check=True)
    return load_extension("handmade_records", built)


CDEF = """
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
extern "Python" double bench_callback(double);
"""


def cffi_api(src: Path, root: Path) -> Any:
    """records.c compiled by cffi's API mode, called as its documentation suggests.

    Structs are ``ffi.new("Vec2 *")`` pointers (their ``[0]`` the value a by-value parameter takes),
    the callback is an ``extern "Python"`` function (cffi's fastest), strings are encoded and decoded
    by the caller: small Python helpers, as a cffi user writes them, for construction and strings.
    """
    from cffi import FFI

    builder = FFI()
    builder.cdef(CDEF)
    builder.set_source("_records_api", (src / "records.c").read_text(), libraries=["m"])
    module = load_extension("_records_api", Path(builder.compile(tmpdir=str(root / "cffi-records"), verbose=False)))
    ffi, lib = module.ffi, module.lib
    ffi.def_extern(name="bench_callback")(callback)

    def vec2(x: float = 0.0, y: float = 0.0) -> Any:
        return ffi.new("Vec2 *", (x, y))

    def greet(name: str) -> str:
        return ffi.string(lib.greet(name.encode())).decode()  # type: ignore[no-any-return]

    tool = SimpleNamespace(Vec2=vec2, greet=greet, **{name: getattr(lib, name) for name in (
        "vlen", "vnorm", "vadd", "counter_new", "counter_add", "counter_get", "counter_free", "sum_calls",
        "sum_calls_released")})

    def scope() -> dict[str, Any]:
        v, w = vec2(3.0, 4.0), vec2(1.0, 2.0)
        return {"f": tool, "v": v[0], "w": w[0], "u": vec2(3.0, 4.0), "c": lib.counter_new(),
                "cb": lib.bench_callback, "_owners": (v, w)}

    tool.bench_scope = scope
    return tool


def nativeimport_fast(src: Path, cache: Path) -> Any:
    """The default binder, once its wrapper is built: a new module binds through cffi while the wrapper
    compiles in the background, so wait for it and load again, as the next import would."""
    import nativeimport

    first = nativeimport.load(src / "records.c", cache_dir=cache)
    nativeimport.wait_for_wrapper(first)
    return nativeimport.load(src / "records.c", cache_dir=cache)


def tools(src: Path, root: Path, cache: Path) -> dict[str, Any]:
    import nativeimport

    found: dict[str, Any] = {HANDMADE: handmade(src, root)}
    found["nativeimport (fast binder)"] = nativeimport_fast(src, cache)
    # Functions taking callbacks release the GIL (C may call back from threads it waits for); keep_gil
    # keeps it, as the hand-written trampoline does: the other rows of this column are the same calls.
    kept = nativeimport.load(src / "records.c", name="records_keep_gil", cache_dir=cache)
    nativeimport.keep_gil(kept, "sum_calls")
    found["nativeimport (fast, keep_gil)"] = kept
    found["nativeimport (cffi binder)"] = nativeimport.load(src / "records.c", name="records_cffi", cache_dir=cache,
                                                            binder="cffi")
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    import cppimport

    found["pybind11 (cppimport)"] = cppimport.imp("records_pb")
    found["cffi API mode"] = cffi_api(src, root)
    return found


def measure(found: dict[str, Any], rounds: int) -> dict[str, dict[str, float]]:
    """Median ns per call for every case and tool (for the callback: per call of the Python function)."""
    results: dict[str, dict[str, float]] = {}
    for case, (statement, number, per, check) in CASES.items():
        expected = eval(check, record_scope(found[HANDMADE]))
        for name, tool in found.items():
            got = eval(check, record_scope(tool))
            assert got == expected, (name, case, got, expected)
        results[case] = interleaved({name: record_scope(tool) for name, tool in found.items()}, statement,
                                    number, rounds, per)
        print(f"{case}: " + ", ".join(f"{name} {ns:.0f} ns" for name, ns in results[case].items()), flush=True)
    return results


def render(calls: dict[str, dict[str, float]]) -> str:
    """The table, cases as rows: ns per call and the ratio to the hand-written extension."""
    tools = list(next(iter(calls.values())))
    lines = ["### Structs, a handle, a callback, a string: ns per call (ratio to the hand-written extension)", "",
             "| call | " + " | ".join(tools) + " |", "| --- |" + " --- |" * len(tools)]
    for case, row in calls.items():
        cells = [f"{row[tool]:.0f} ({row[tool] / row[HANDMADE]:.2f}x)" for tool in tools]
        lines.append(f"| {'`v.x`' if case == 'v.x' else case} | " + " | ".join(cells) + " |")
    lines += ["", f"The callback rows are the cost of one call of a Python function (`return x`) from C: sum_calls "
              f"calls it {CALLBACK_CALLS} times, holding the GIL in the first row where the binder lets it "
              "(nativeimport's keep_gil applies to sum_calls only; cffi always releases it), releasing it in the "
              "second (each callback takes it back). cffi API mode's `Vec2(...)` and `greet` are the small Python "
              "helpers a cffi user writes (`ffi.new`, `encode` and `ffi.string`)."]
    return "\n".join(lines) + "\n"
