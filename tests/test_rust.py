"""Rust through the same pipeline: single files with rustc, crate directories with cargo."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import Runner

if shutil.which("rustc") is None or shutil.which("cargo") is None:
    pytest.skip("rustc and cargo are not installed (https://rustup.rs)", allow_module_level=True)

STATS_RS = """
use std::os::raw::c_char;
use std::os::raw::c_int;

#[repr(C)]
pub struct Range { pub lo: f64, pub hi: f64 }

#[repr(C)]
pub enum Color { Red = 0, Green = 5 }

fn helper(x: f64) -> f64 { x * x }                      // private: not exported

/// Mean of the first n values.
#[unsafe(no_mangle)]
pub extern "C" fn mean(xs: *const f64, n: usize) -> f64 {
    let xs = unsafe { std::slice::from_raw_parts(xs, n) };
    xs.iter().sum::<f64>() / n as f64
}
#[unsafe(no_mangle)]
pub extern "C" fn span(r: Range) -> f64 { r.hi - r.lo }
#[unsafe(no_mangle)]
pub extern "C" fn widen(r: *mut Range, by: f64) { unsafe { (*r).hi += by; } }
#[unsafe(no_mangle)]
pub extern "C" fn square(x: f64) -> f64 { helper(x) }
#[unsafe(no_mangle)]
pub extern "C" fn name() -> *const c_char { c"stats".as_ptr() }
/// First byte of a C string.
#[unsafe(no_mangle)]
pub extern "C" fn first(s: *const c_char) -> c_int { unsafe { *s as c_int } }
#[unsafe(no_mangle)]
pub extern "C" fn add_i64(a: i64, b: i64) -> i64 { a.wrapping_add(b) }
/// Wrapping sum (LLVM merges this with add_i64).
#[unsafe(no_mangle)]
pub extern "C" fn add_u64(a: u64, b: u64) -> u64 { a.wrapping_add(b) }
#[unsafe(no_mangle)]
pub extern "C" fn color_value(c: Color) -> i32 { c as i32 }
#[unsafe(no_mangle)]
pub extern "C" fn is_positive(x: f64) -> bool { x > 0.0 }
"""


def test_a_rust_file_behaves_like_a_c_module(runner: Runner) -> None:
    runner.write("stats.rs", STATS_RS)
    result = runner.json("""
        import array, json, nativeimport
        nativeimport.install()
        import stats
        r = stats.Range(lo=1.0, hi=4.0)
        out = {"mean": stats.mean(array.array("d", [1, 2, 3]), 3), "span": stats.span(r)}
        stats.widen(r, 2.5)
        out["widened"] = r.hi
        out["square"] = stats.square(3.0)
        out["name"] = stats.name()
        out["first"] = stats.first("A")
        out["add_u64"] = stats.add_u64(2**64 - 1, 2)
        out["add_i64"] = stats.add_i64(-5, 2)
        out["enum"] = [stats.Color.Green.value, stats.color_value(stats.Green)]
        out["bool"] = stats.is_positive(2.0)
        out["helper"] = hasattr(stats, "helper")
        out["docs"] = [stats.mean.__doc__, stats.add_u64.__doc__, stats.name.__doc__]
        try:
            stats.add_u64(-1, 0)
        except OverflowError as exc:
            out["overflow"] = str(exc)
        print(json.dumps(out))
    """)
    assert result["mean"] == 2.0
    assert result["span"] == 3.0
    assert result["widened"] == 6.5
    assert result["square"] == 9.0
    assert result["name"] == "stats"
    assert result["first"] == 65
    assert result["add_u64"] == 1  # wrapped as u64, not read back as a negative i64
    assert result["add_i64"] == -3
    assert result["enum"] == [5, 5]
    assert result["bool"] is True
    assert result["helper"] is False
    assert result["docs"][0] == "double mean(const double *xs, size_t n)\n\nMean of the first n values."
    assert result["docs"][1] == "uint64_t add_u64(uint64_t a, uint64_t b)\n\nWrapping sum (LLVM merges this with add_i64)."
    assert result["docs"][2] == "const char *name(void)"
    assert "add_u64() argument 'a' (uint64_t)" in result["overflow"]


def test_modules_pulled_in_with_mod_are_dependencies(runner: Runner) -> None:
    runner.write("outer.rs", """
        mod helpers;
        #[unsafe(no_mangle)]
        pub extern "C" fn value() -> i32 { helpers::VALUE }
    """)
    runner.write("helpers.rs", "pub const VALUE: i32 = 1;\n")
    code = "import json, nativeimport; nativeimport.install(); import outer; print(json.dumps(outer.value()))"
    assert runner.json(code) == 1
    runner.write("helpers.rs", "pub const VALUE: i32 = 2;\n")
    assert runner.json(code) == 2


def test_a_cargo_crate_directory_imports_and_is_left_untouched(runner: Runner) -> None:
    runner.write("mycrate/Cargo.toml", """
        [package]
        name = "mycrate"
        version = "0.1.0"
        edition = "2021"

        [lib]
        crate-type = ["cdylib"]
    """)
    runner.write("mycrate/src/lib.rs", """
        mod util;
        /// Twice the value, through a helper module.
        #[no_mangle]
        pub extern "C" fn twice(v: i64) -> i64 { util::times(v, util::FACTOR) }
    """)
    runner.write("mycrate/src/util.rs", "pub const FACTOR: i64 = 2;\npub fn times(a: i64, b: i64) -> i64 { a * b }\n")
    before = sorted(p.relative_to(runner.project) for p in (runner.project / "mycrate").rglob("*"))
    code = "import json, nativeimport; nativeimport.install(); import mycrate; print(json.dumps([mycrate.twice(21), mycrate.twice.__doc__, mycrate.__file__]))"
    value, doc, file = runner.json(code)
    assert value == 42
    assert doc.endswith("Twice the value, through a helper module.")
    assert file == str(runner.project / "mycrate")
    assert sorted(p.relative_to(runner.project) for p in (runner.project / "mycrate").rglob("*")) == before
    runner.write("mycrate/src/util.rs", "pub const FACTOR: i64 = 3;\npub fn times(a: i64, b: i64) -> i64 { a * b }\n")
    assert runner.json(code)[0] == 63


def test_rust_compile_errors_carry_file_and_line(runner: Runner) -> None:
    runner.write("oops.rs", '#[no_mangle]\npub extern "C" fn f() -> i32 {\n    missing_value\n}\n')
    message = runner.import_error("oops", "CompileError")
    assert "oops.rs:3:5" in message
    assert "cannot find value `missing_value`" in message
    assert runner.entries() == []


def test_a_missing_rustc_says_to_install_rustup(runner: Runner) -> None:
    runner.write("tiny.rs", '#[no_mangle]\npub extern "C" fn one() -> i32 { 1 }\n')
    message = runner.import_error("tiny", "ToolchainNotFound", env={"RUSTC": "/nonexistent/rustc"})
    assert "rustup" in message


def test_doctor_and_show_know_rust(runner: Runner) -> None:
    runner.write("stats.rs", STATS_RS)
    report = json.loads(runner.cli("doctor", "--json").stdout)
    rust = next(d for d in report["drivers"] if d["name"] == "rust")
    assert rust["found"] and rust["version"].startswith("rustc ")
    assert any(tool["name"] == "cargo" and tool["version"].startswith("cargo ") for tool in rust["tools"])
    shown = runner.cli("show", "stats.rs").stdout
    assert "def mean(xs: Buffer | None, n: int) -> float:" in shown
    assert "def name() -> str | None:" in shown
