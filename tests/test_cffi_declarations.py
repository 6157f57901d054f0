"""The cffi binding of a scalar-only module is made without cffi's C parser (pycparser, ~20 ms to import on
every new module), from cffi's type model directly; the module it writes must be the parser's, byte for byte."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nativeimport import _bind_cffi, _cffi_check
from nativeimport.dwarf import read_interface
from nativeimport.interface import Interface

SCALARS = r"""
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
typedef double Real;
typedef unsigned int Count;
typedef enum { RED, GREEN = 5 } Color;
enum mode { FAST = -1, SLOW = 1 };

/** Scaled. */
Real scale(Real x, double k) { return x * k; }
int8_t i8(int8_t a, uint8_t b) { return a + b; }
int16_t i16(int16_t a, uint16_t b) { return a - b; }
int32_t i32(int32_t a, uint32_t b, Count c) { return a + b + c; }
int64_t i64(int64_t a, uint64_t b) { return a ^ b; }
long lng(long a, unsigned long b, long long c, unsigned long long d) { return a + b + c + d; }
short sh(short a, unsigned short b, signed char c, unsigned char d, char e) { return a + b + c + d + e; }
size_t sz(size_t n, ptrdiff_t d, intptr_t p, uintptr_t q) { return n + d + p + q; }
float f32(float x) { return x; }
bool flag(bool b, _Bool c) { return b && c; }
void nothing(void) { }
double sum(const double *xs, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += xs[i]; return s; }
void fill(int32_t *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = (int32_t)i; }
size_t length(const char *text) { size_t n = 0; while (text[n]) n++; return n; }
char *first(char *text) { return text; }
void *same(void *p, const void *q) { return q ? p : 0; }
const char *name(void) { return "name"; }
Color paint(Color c, enum mode m) { return m == FAST ? c : RED; }
bool *flags(bool *b) { return b; }
"""

WITH_STRUCT = r"""
typedef struct { double x, y; } Vec2;
double vlen(Vec2 v) { return v.x + v.y; }
"""


def _interface(tmp_path: Path, name: str, source: str) -> Interface:
    c_file = tmp_path / f"{name}.c"
    c_file.write_text(source, encoding="utf-8")
    library = tmp_path / f"lib{name}.so"
    subprocess.run(["cc", "-g", "-O2", "-fno-ipa-icf", "-fPIC", "-shared", "-o", str(library), str(c_file)], check=True)
    return _cffi_check.checked(read_interface(library, exported_from=c_file))


def test_a_scalar_module_binds_the_same_without_the_parser(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    interface = _interface(tmp_path, "scalars", SCALARS)
    assert len(interface.functions) == 19 and interface.enums  # every signature above was read
    assert _bind_cffi._scalar_declarations(interface) is not None  # the model route serves it
    direct = _bind_cffi.generate(interface, where="scalars.c")
    monkeypatch.setattr(_bind_cffi, "_scalar_declarations", lambda interface: None)
    parsed = _bind_cffi.generate(interface, where="scalars.c")
    assert direct == parsed


def test_a_module_with_a_struct_goes_through_the_parser(tmp_path: Path) -> None:
    interface = _interface(tmp_path, "vec", WITH_STRUCT)
    assert _bind_cffi._scalar_declarations(interface) is None
    assert "vlen" in _bind_cffi.generate(interface, where="vec.c")


def test_a_scalar_module_imports_no_parser(tmp_path: Path) -> None:
    interface = _interface(tmp_path, "scalars", SCALARS)
    saved = tmp_path / "interface.json"
    import json

    saved.write_text(json.dumps(interface.to_json()), encoding="utf-8")
    code = textwrap.dedent(f"""
        import json, sys
        from nativeimport import _bind_cffi
        from nativeimport.interface import Interface
        interface = Interface.from_json(json.loads(open({str(saved)!r}).read()))
        _bind_cffi.generate(interface, where="scalars.c")
        print(sorted(m for m in sys.modules if m.startswith(("pycparser", "cffi.cparser"))))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
