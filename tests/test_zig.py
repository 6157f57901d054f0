"""Zig through the same pipeline, the interface read from the source."""

from __future__ import annotations

import json

import pytest
from helpers import Runner

try:
    from nativeimport.driver import ziglang_executable as zig_executable
except ImportError:  # pragma: no cover - the package is always installed for tests
    zig_executable = None  # type: ignore[assignment]

if zig_executable is None or zig_executable() is None:
    pytest.skip("the ziglang wheel is not installed (pip install nativeimport[zig])", allow_module_level=True)

VEC_ZIG = """
const helper = @import("helper.zig");

pub const V2 = extern struct { x: f64, y: f64 };
pub const Op = enum(c_int) { add = 0, sub = 1 };

/// Dot product of the first n values.
export fn dot(a: [*]const f64, b: [*]const f64, n: usize) f64 {
    var s: f64 = 0;
    var i: usize = 0;
    while (i < n) : (i += 1) s += a[i] * b[i];
    return s;
}
export fn apply(op: Op, a: i32, b: i32) i32 {
    return switch (op) { .add => a + b, .sub => a - b };
}
export fn len2(v: V2) f64 { return v.x * v.x + v.y * v.y; }
export fn greet() [*:0]const u8 { return "hi"; }
export fn scale(v: *V2, k: f64) void { v.x *= k; v.y *= k; }
export fn bump(xs: [*]i64, n: usize) void { for (0..n) |i| xs[i] += helper.STEP; }
export fn unused_param(a: i32, b: i32) i32 { _ = b; return a; }
fn private_fn(x: i32) i32 { return x; }
"""


def test_a_zig_file_behaves_like_a_c_module(runner: Runner) -> None:
    runner.write("vec.zig", VEC_ZIG)
    runner.write("helper.zig", "pub const STEP: i64 = 1;\n")
    code = """
        import array, json, nativeimport
        nativeimport.install()
        import vec
        a = array.array("d", [1, 2, 3])
        out = {"dot": vec.dot(a, a, 3), "apply": [vec.apply(vec.Op.sub, 5, 3), vec.apply(vec.Op.add, 5, 3)]}
        out["len2"] = vec.len2(vec.V2(x=3.0, y=4.0))
        out["greet"] = vec.greet()
        v = vec.V2(1.0, 2.0)
        vec.scale(v, 3.0)
        out["scaled"] = [v.x, v.y]
        xs = array.array("q", [1, 2])
        vec.bump(xs, 2)
        out["bumped"] = xs.tolist()
        out["unused_param"] = vec.unused_param(7, 9)
        out["private"] = hasattr(vec, "private_fn")
        out["enum"] = [vec.Op.sub.value, vec.sub, type(vec.Op.sub).__mro__[1].__name__]
        out["doc"] = vec.dot.__doc__
        try:
            vec.dot(array.array("f", [1.0]), a, 1)
        except TypeError as exc:
            out["type_error"] = str(exc)
        print(json.dumps(out))
    """
    result = runner.json(code)
    assert result["dot"] == 14.0
    assert result["apply"] == [2, 8]
    assert result["len2"] == 25.0
    assert result["greet"] == "hi"
    assert result["scaled"] == [3.0, 6.0]
    assert result["bumped"] == [2, 3]
    assert result["unused_param"] == 7
    assert result["private"] is False
    assert result["enum"] == [1, 1, "IntEnum"]
    assert result["doc"] == "double dot(const double *a, const double *b, size_t n)\n\nDot product of the first n values."
    assert "dot() argument 'a'" in result["type_error"]
    # An imported file is a dependency: editing it rebuilds.
    runner.write("helper.zig", "pub const STEP: i64 = 10;\n")
    assert runner.json(code)["bumped"] == [11, 12]
    # Zig's own caches live inside nativeimport's cache.
    assert (runner.cache / "scratch" / "zig" / "global").is_dir()


def test_zig_compile_errors_carry_file_and_line(runner: Runner) -> None:
    runner.write("bad.zig", "export fn f() i32 {\n    return missing;\n}\n")
    result = runner.import_error("bad", "CompileError")
    assert "bad.zig:2:12: error: use of undeclared identifier 'missing'" in result
    assert runner.entries() == []


def test_a_missing_zig_says_what_to_install(runner: Runner) -> None:
    runner.write("tiny.zig", "export fn one() i32 { return 1; }\n")
    message = runner.import_error("tiny", "ToolchainNotFound", env={"ZIG": "/nonexistent/zig"})
    assert "pip install nativeimport[zig]" in message


def test_doctor_reports_zig(runner: Runner) -> None:
    report = json.loads(runner.cli("doctor", "--json").stdout)
    zig = next(d for d in report["drivers"] if d["name"] == "zig")
    assert zig["found"] and zig["version"].startswith("0.")
