"""The fast binder and the cffi binder give users the same rules: one table of calls, both binders."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Runner

SOURCE = r"""
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { RED = 1, GREEN = 2 } Color;
typedef struct { double x, y; } Point;

int8_t   i8(int8_t v)      { return v; }
uint8_t  u8(uint8_t v)     { return v; }
int16_t  i16(int16_t v)    { return v; }
uint16_t u16(uint16_t v)   { return v; }
int32_t  i32(int32_t v)    { return v; }
uint32_t u32(uint32_t v)   { return v; }
int64_t  i64(int64_t v)    { return v; }
uint64_t u64(uint64_t v)   { return v; }
double   add(double a, double b) { return a + b; }
float    halve(float v)    { return v / 2; }
bool     truth(bool b)     { return b; }
int      color(Color c)    { return (int)c * 10; }
Color    pick(int green)   { return green ? GREEN : RED; }
void     nothing(void)     { }
int64_t  add3(int64_t a, int64_t b, int64_t c) { return a + b + c; }
size_t   length(const char *s) { return s ? strlen(s) : 0; }
const char *word(int i)    { return i == 0 ? "zero" : i == 1 ? "ünï" : NULL; }
double   total(const double *xs, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += xs[i]; return s; }
void     fill(double *xs, size_t n, double v) { for (size_t i = 0; i < n; i++) xs[i] = v; }
uint32_t bytesum(const void *p, size_t n) { uint32_t s = 0; for (size_t i = 0; i < n; i++) s += ((const uint8_t *)p)[i]; return s; }
int64_t  isum(const int32_t *xs, size_t n) { int64_t s = 0; for (size_t i = 0; i < n; i++) s += xs[i]; return s; }
double   norm(Point p) { return p.x * p.x + p.y * p.y; }
"""

TABLE = """
import array, json
class Index:
    def __index__(self): return 7
calls = [
    ("i8", (127,)), ("i8", (128,)), ("i8", (-129,)), ("i8", (1.5,)), ("i8", ("1",)), ("i8", (Index(),)), ("i8", (True,)),
    ("u8", (255,)), ("u8", (256,)), ("u8", (-1,)), ("i16", (-32768,)), ("i16", (32768,)), ("u16", (65535,)),
    ("u16", (65536,)), ("i32", (2**31 - 1,)), ("i32", (2**31,)), ("u32", (2**32 - 1,)), ("u32", (2**32,)),
    ("i64", (-(2**63),)), ("i64", (2**63,)), ("u64", (2**64 - 1,)), ("u64", (2**64,)), ("u64", (-1,)),
    ("i64", (None,)), ("add", (1.5, 2)), ("add", (1, True)), ("add", ("x", 1)), ("add", (1,)), ("add", (1, 2, 3)),
    ("add", (float("inf"), 1.0)), ("halve", (3.0,)), ("halve", (1e300,)), ("truth", (0,)), ("truth", ([1],)),
    ("truth", ("",)), ("color", (2,)), ("pick", (1,)), ("nothing", ()), ("nothing", (1,)), ("add3", (1, 2, 3)),
    ("add3", (1, 2)), ("length", ("héllo",)), ("length", (b"abc",)), ("length", (None,)), ("length", (3,)),
    ("length", ("a\\0b",)), ("length", (bytearray(b"x"),)), ("word", (0,)), ("word", (1,)), ("word", (2,)),
    ("total", (array.array("d", [1, 2, 3]), 3)), ("total", (array.array("f", [1, 2]), 2)),
    ("total", (array.array("q", [1]), 1)), ("total", ([1.0, 2.0], 2)), ("total", (None, 0)),
    ("total", (memoryview(array.array("d", [1, 2, 3, 4]))[::2], 2)), ("total", (b"\\0" * 16, 2)),
    ("fill", (b"\\0" * 16, 2, 1.0)), ("bytesum", (b"\\x01\\x02", 2)), ("bytesum", (array.array("d", [0.0]), 8)),
    ("isum", (array.array("i", [1, 2, 3]), 3)), ("isum", (array.array("I", [1]), 1)),
    ("isum", (array.array("l", [1]), 1)), ("norm", ((3.0, 4.0),)),
]
results = []
for name, args in calls:
    try:
        results.append(["ok", repr(getattr(m, name)(*args))])
    except Exception as exc:
        results.append(["raised", type(exc).__name__])
buf = array.array("d", [0.0, 0.0])
m.fill(buf, 2, 9.5)
results.append(["fill", buf.tolist()])
results.append(["served", sorted(n for n in ("add", "total", "norm", "word") if type(getattr(m, n)).__name__ == "builtin_function_or_method")])
results.append(["help", m.total.__doc__.splitlines()[-1] if m.total.__doc__ else ""])
print(json.dumps(results))
"""


def run_table(runner: Runner, binder: str) -> list[list[object]]:
    return runner.json(f"import nativeimport\nm = nativeimport.load('conv.c', binder={binder!r})\n" + TABLE)  # type: ignore[no-any-return]


def test_both_binders_agree_on_every_call(runner: Runner) -> None:
    runner.write("conv.c", SOURCE)
    fast = run_table(runner, "auto")
    cffi = run_table(runner, "cffi")
    assert fast[:-2] == cffi[:-2]
    assert fast[-2] == ["served", ["add", "norm", "total", "word"]]  # a struct by value too (tests/test_fast_records.py)
    assert cffi[-2] == ["served", []]
    outcomes = dict(zip(["i8 127", "i8 128"], fast[:2]))
    assert outcomes == {"i8 127": ["ok", "127"], "i8 128": ["raised", "OverflowError"]}
    assert fast[-3] == ["fill", [9.5, 9.5]]


def test_error_messages_name_the_function_and_parameter_in_both(runner: Runner) -> None:
    runner.write("conv.c", SOURCE)
    code = """
        import array, json, nativeimport
        out = []
        for binder in ("auto", "cffi"):
            m = nativeimport.load("conv.c", binder=binder)
            for call in (lambda: m.i8(300), lambda: m.add("x", 1), lambda: m.total(array.array("f", [1.0]), 1),
                         lambda: m.fill(b"12345678", 1, 0.0), lambda: m.length(3)):
                try:
                    call()
                except Exception as exc:
                    out.append(f"{binder}: {type(exc).__name__}: {exc}")
        print(json.dumps(out))
    """
    messages = runner.json(code)
    for fast, cffi in zip(messages[:5], messages[5:]):
        assert fast.split(":")[1:3] == cffi.split(":")[1:3], (fast, cffi)
    assert "i8() argument 'v' (int8_t)" in messages[0]
    assert "total() argument 'xs' (const double *): the buffer holds 4-byte floats" in messages[2]


def test_without_a_usable_compiler_everything_stays_on_cffi(runner: Runner) -> None:
    if shutil.which("rustc") is None:
        pytest.skip("rustc is not installed (https://rustup.rs)")
    runner.write("nocc.rs", '#[unsafe(no_mangle)]\npub extern "C" fn add(a: f64, b: f64) -> f64 { a + b }\n')
    result = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import nocc
        print(json.dumps([nocc.add(1.0, 2.0), type(nocc.add).__name__]))
    """, env={"CC": "/nonexistent/cc"})
    assert result == [3.0, "function"]
    (entry,) = runner.entries()
    assert "no\\x20C\\x20compiler" in next(entry.glob("fast*.unavailable-*")).read_text()  # an escaped field


def test_a_cache_hit_loads_the_stored_wrapper_and_release_gil_keeps_results(runner: Runner) -> None:
    runner.write("conv.c", SOURCE)
    runner.json("import nativeimport, json; nativeimport.install(); import conv; print(json.dumps(conv.add(1, 2)))")
    result = runner.json("""
        import array, json, sys, threading, nativeimport
        nativeimport.install()
        import conv
        heavy = [m for m in ("pycparser", "cffi.recompiler", "nativeimport._bind_fast", "subprocess") if m in sys.modules]
        nativeimport.release_gil(conv, "total")
        xs = array.array("d", range(1000))
        out = []
        threads = [threading.Thread(target=lambda: out.append(conv.total(xs, 1000))) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(json.dumps([heavy, type(conv.add).__name__, out]))
    """)
    assert result == [[], "builtin_function_or_method", [499500.0] * 4]


def test_without_python_headers_everything_stays_on_cffi(runner: Runner) -> None:
    runner.write("conv.c", SOURCE)
    # An interpreter whose headers are missing: the real import path, with sysconfig pointing nowhere.
    result = runner.json("""
        import json, sysconfig
        real = sysconfig.get_paths
        sysconfig.get_paths = lambda *a, **k: {**real(*a, **k), "include": "/nonexistent/include"}
        import nativeimport
        m = nativeimport.load("conv.c")
        print(json.dumps([m.add(1, 2), type(m.add).__name__, m.i8(5)]))
    """)
    assert result == [3.0, "function", 5]
    (entry,) = runner.entries()
    assert list(entry.glob("fast.*.so")) == []
    assert "no\\x20Python\\x20headers" in next(entry.glob("fast*.unavailable-*")).read_text()


def test_a_module_the_fast_wrapper_serves_entirely_loads_cffi_only_when_asked(runner: Runner) -> None:
    runner.write("light.c", """
        #include <stddef.h>
        enum Level { LOW = 1, HIGH = 9 };
        double total(const double *xs, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += xs[i]; return s; }
        int level(enum Level l) { return (int)l * 2; }
    """)
    runner.json("import json, nativeimport; nativeimport.install(); import light; print(json.dumps(light.HIGH))")
    result = runner.json("""
        import array, json, sys, nativeimport
        nativeimport.install()
        import light
        out = [light.total(array.array("d", [1, 2]), 2), light.level(light.HIGH), "_cffi_backend" in sys.modules]
        out.append(int(light.Level.HIGH))
        pointer = light.__ffi__.new("double[]", [3.0, 4.0])  # cffi, loaded on first use
        out.append("_cffi_backend" in sys.modules)
        out.append(light.total(pointer, 2))                  # a cffi pointer: the cffi wrapper serves it
        namespace = {}
        exec("from light import *", namespace)
        out.append(sorted(n for n in namespace if not n.startswith("__")))
        print(json.dumps(out))
    """)
    assert result == [3.0, 18, False, 9, True, 7.0, ["HIGH", "LOW", "Level", "level", "total"]]


def test_later_wrappers_link_the_helpers_built_once_and_call_the_same(runner: Runner) -> None:
    # The first wrapper compiles the shared helpers inline and leaves them compiling in the background;
    # later wrappers link that object. A damaged object costs one inline build, never the fast binder.
    runner.write("conv.c", SOURCE)
    inline = run_table(runner, "auto")
    helpers = _wait_for(lambda: list(runner.cache.glob("scratch/fast-pch/*/ni_helpers.o")))

    def rebuilt(edit: str) -> tuple[list[list[object]], str]:
        runner.write("conv.c", SOURCE + f"/* {edit} */\n")  # a new key: a fresh build
        done = runner.run("import nativeimport\nm = nativeimport.load('conv.c')\n" + TABLE,
                          env={"NATIVEIMPORT_VERBOSE": "1"})
        return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr

    shared, log = rebuilt("edit 1")
    assert shared == inline
    assert "ni_helpers.o" in log  # linked, not compiled again
    helpers[0].write_bytes(b"not an object file")
    recovered, log = rebuilt("edit 2")
    assert recovered == inline
    assert "compiling the helpers inline" in log


def _wait_for(found: Callable[[], list[Path]], seconds: float = 120.0) -> list[Path]:
    deadline = time.monotonic() + seconds
    while not (paths := found()):
        assert time.monotonic() < deadline, "the background build never finished"
        time.sleep(0.2)
    return paths
