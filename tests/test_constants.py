"""Object-like #define constants of a C source and its local headers, valued by the compiler."""

from __future__ import annotations

import math

import pytest
from helpers import Runner

from nativeimport.interface import Constant, Interface

HEADER = r"""
#ifndef SHAPES_H
#define SHAPES_H
#include <stdint.h>

#define SHAPES_OK 0
#define SHAPES_ERROR (-7)
#define SHAPES_ALL_BITS 0xFFFFFFFFFFFFFFFFull
#define SHAPES_FLAG ((uint32_t)1 << 5)
#define SHAPES_RATIO 0.25f
#define SHAPES_PI 3.141592653589793
#define SHAPES_NAME "sha" "pes"
#define SHAPES_BINARY "a\0b"
#define SHAPES_SIZE sizeof(struct shape)
#define SHAPES_NEXT (SHAPES_OK + 1)
#define SHAPES_TYPE unsigned int
#define SHAPES_API __attribute__((visibility("default")))
#define SHAPES_TWICE(x) ((x) * 2)
#define SHAPES_CALL shapes_count()
#define SHAPES_GONE 5
#undef SHAPES_GONE
#if 0
#define SHAPES_HIDDEN 1
#endif
struct shape { int32_t sides; double side; };
SHAPES_API int shapes_count(void);
#endif
"""

SOURCE = r"""
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "shapes.h"
#define VERSION "1.2"
#define LOCAL_LIMIT (SHAPES_NEXT + 41)
#define CHAR_CONST 'x'
#define count shapes_count
#ifdef __OPTIMIZE__  /* the probe compiles unoptimized, yet must see what the library saw */
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif

int shapes_count(void) { return 3; }
long long c_error(void) { return SHAPES_ERROR; }
unsigned long long c_all_bits(void) { return SHAPES_ALL_BITS; }
unsigned int c_flag(void) { return SHAPES_FLAG; }
float c_ratio(void) { return SHAPES_RATIO; }
double c_pi(void) { return SHAPES_PI; }
const char *c_name(void) { return SHAPES_NAME; }
size_t c_size(void) { return SHAPES_SIZE; }
int c_limit(void) { return LOCAL_LIMIT; }
int c_char(void) { return CHAR_CONST; }
int c_optimized(void) { return OPTIMIZED; }
"""

CHECK = """
import json, nativeimport
nativeimport.install()
import shapes
names = ["SHAPES_OK", "SHAPES_ERROR", "SHAPES_ALL_BITS", "SHAPES_FLAG", "SHAPES_RATIO", "SHAPES_PI", "SHAPES_NAME",
         "SHAPES_BINARY", "SHAPES_SIZE", "SHAPES_NEXT", "VERSION", "LOCAL_LIMIT", "CHAR_CONST", "OPTIMIZED"]
absent = ["SHAPES_TYPE", "SHAPES_API", "SHAPES_TWICE", "SHAPES_CALL", "SHAPES_GONE", "SHAPES_HIDDEN", "SHAPES_H",
          "EOF", "INT_MAX", "count"]
print(json.dumps({
    "values": {n: getattr(shapes, n, "missing") for n in names},
    "present": [n for n in absent if n in vars(shapes)],
    "from_c": [shapes.c_error(), shapes.c_all_bits(), shapes.c_flag(), shapes.c_ratio(), shapes.c_pi(),
               shapes.c_name(), shapes.c_size(), shapes.c_limit(), shapes.c_char(), shapes.c_optimized()],
    "count": shapes.count() if callable(getattr(shapes, "count", None)) else None,
    "all": "SHAPES_OK" in shapes.__all__,
    "served": type(shapes.c_pi).__name__,
}))
"""


@pytest.mark.parametrize("binder", ["auto", "cffi"])
def test_defines_become_attributes_with_the_values_c_computes(runner: Runner, binder: str) -> None:
    runner.write("shapes.h", HEADER)
    runner.write("shapes.c", SOURCE)
    env = {"NATIVEIMPORT_BINDER": binder}
    cold = runner.json(CHECK, env=env)
    hit = runner.json(CHECK, env=env)  # a cache hit (the fast binder's light binding, when it serves)
    assert cold == hit
    values = cold["values"]
    assert [values[n] for n in ("SHAPES_ERROR", "SHAPES_ALL_BITS", "SHAPES_FLAG", "SHAPES_RATIO", "SHAPES_PI",
                                "SHAPES_NAME", "SHAPES_SIZE", "LOCAL_LIMIT", "CHAR_CONST", "OPTIMIZED")] == cold["from_c"]
    assert values["SHAPES_OK"] == 0 and values["SHAPES_NEXT"] == 1 and values["VERSION"] == "1.2"
    assert values["SHAPES_BINARY"] == "a\0b"  # a literal's own length: embedded NULs kept
    assert isinstance(values["SHAPES_RATIO"], float) and isinstance(values["SHAPES_SIZE"], int)
    assert cold["present"] == []  # types, attributes, macros with parameters, calls, #undef, #if 0, system headers
    assert cold["all"]
    assert cold["served"] == ("function" if binder == "cffi" else "builtin_function_or_method")


def test_show_lists_the_constants(runner: Runner) -> None:
    runner.write("shapes.h", HEADER)
    runner.write("shapes.c", SOURCE)
    shown = runner.cli("show", "shapes.c").stdout
    assert "SHAPES_NAME: Final = 'shapes'" in shown
    assert "LOCAL_LIMIT: Final = 42" in shown


def test_a_name_already_bound_keeps_its_binding(runner: Runner) -> None:
    runner.write("clash.c", """
        enum mode { MODE_A = 1 };
        int answer(void) { return 1; }
        enum mode mode_of(int v) { return v ? MODE_A : MODE_A; }
        #define answer 42  /* after: C compiles it, and the module keeps the function */
        #define MODE_A 7
    """)
    result = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import clash
        print(json.dumps([callable(clash.answer), clash.MODE_A]))
    """)
    assert result == [True, 1]


def test_a_source_without_local_macros_runs_no_probe(runner: Runner) -> None:
    runner.write("plain.c", """
        #include <stdint.h>
        #include <stdio.h>
        int64_t twice(int64_t v) { return 2 * v; }
    """)
    runner.write("defines.c", """
        #define TWICE_LIMIT 100
        int twice(int v) { return v < TWICE_LIMIT ? 2 * v : v; }
    """)
    done = runner.run("""
        import nativeimport
        nativeimport.install()
        import plain, defines
        assert not [n for n in vars(plain) if n.isupper()], vars(plain)
        assert defines.TWICE_LIMIT == 100
    """, env={"NATIVEIMPORT_VERBOSE": "1"})
    probes = [line for line in done.stderr.splitlines() if " -dD " in line]
    assert len(probes) == 1 and "defines.c" in probes[0], done.stderr


def test_a_source_whose_defines_are_not_constants_still_builds(runner: Runner) -> None:
    runner.write("odd.c", """
        #define BEGIN {
        #define END }
        #define STATIC static
        #define REAL 2.5
        STATIC int hidden(void) BEGIN return 1; END
        int visible(void) BEGIN return hidden(); END
    """)
    result = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import odd
        print(json.dumps([odd.visible(), getattr(odd, "REAL", None), hasattr(odd, "BEGIN")]))
    """)
    assert result[0] == 1 and result[2] is False
    assert result[1] in (2.5, None)  # kept unless the compiler's error recovery swallowed its record


def test_interface_round_trips_constants() -> None:
    interface = Interface(constants=(Constant("A", -1), Constant("B", 2.5), Constant("C", "x\0y"),
                                     Constant("D", math.inf), Constant("E", 2**64 - 1)))
    import json

    back = Interface.from_json(json.loads(json.dumps(interface.to_json())))
    assert back == interface
    assert Interface.from_json({**interface.to_json(), "constants": []}).constants == ()
    namespace: dict[str, object] = {}
    exec("\n".join(f"{c.name} = {c.literal()}" for c in interface.constants), namespace)
    assert [namespace[c.name] for c in interface.constants] == [c.value for c in interface.constants]
    assert "D: Final[float]" in interface.stub() and "C: Final = 'x\\x00y'" in interface.stub()


def test_a_define_naming_a_variable_is_no_constant(runner: Runner) -> None:
    runner.write("names.c", """
        static char buffer[16] = "mutable";
        static const char fixed[] = "fixed";
        static int counter = 3;
        #define BUFFER buffer
        #define FIXED fixed
        #define COUNTER counter
        #define LITERAL "literal"
        char *use(void) { counter++; return buffer; }
        const char *fixed_name(void) { return fixed; }
    """)
    result = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import names
        print(json.dumps([getattr(names, n, None) for n in ("BUFFER", "FIXED", "COUNTER", "LITERAL")]))
    """)
    assert result[0] is None and result[2] is None  # variables: their contents change
    assert result[1] in ("fixed", None) and result[3] == "literal"


def test_clang_through_zig_cc_values_them_too(runner: Runner) -> None:
    ziglang = pytest.importorskip("ziglang", reason="the ziglang wheel is not installed (pip install nativeimport[zig])")
    import os

    zig = os.path.join(os.path.dirname(ziglang.__file__), "zig")
    runner.write("shapes.h", HEADER)
    runner.write("shapes.c", SOURCE)
    result = runner.json(CHECK, env={"CC": f"{zig} cc", "NATIVEIMPORT_BINDER": "cffi"})
    values = result["values"]
    assert [values[n] for n in ("SHAPES_ERROR", "SHAPES_ALL_BITS", "SHAPES_FLAG", "SHAPES_RATIO", "SHAPES_PI",
                                "SHAPES_NAME", "SHAPES_SIZE", "LOCAL_LIMIT", "CHAR_CONST", "OPTIMIZED")] == result["from_c"]
    assert values["SHAPES_BINARY"] == "a\0b" and result["present"] == []
