"""The plugin API proven by an outsider: demos/toylang, installed on its own, found through its entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Runner

TOYLANG = Path(__file__).parents[1] / "demos" / "toylang"

GCDLIB = """\
/// Greatest common divisor.
fn gcd(a: i64, b: i64) -> i64 {
    while b != 0 { let t = b; b = a % b; a = t; }
    return a;
}

/// Steps of the Collatz sequence from n down to 1.
fn collatz(n: i64) -> i32 {
    let steps: i32 = 0;
    while n != 1 {
        if n % 2 == 0 { n = n / 2; } else { n = 3 * n + 1; }
        steps = steps + 1;
    }
    return steps;
}

fn lcm(a: i64, b: i64) -> i64 { return a / gcd(a, b) * b; }

/// Whether a is within tolerance of b.
fn close(a: f64, b: f64, tolerance: f64) -> bool {
    let d = a - b;
    if d < 0.0 { d = -d; }
    return d <= tolerance;
}

fn safe_div(a: i64, b: i64) -> i64 { return a / b; }
"""


@pytest.fixture(scope="module")
def toylang_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution, pip-installed into a directory of its own."""
    target = tmp_path_factory.mktemp("toylang-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(TOYLANG)], check=True, capture_output=True)
    return target


@pytest.fixture
def toy(runner: Runner, toylang_site: Path) -> Runner:
    runner.env["PYTHONPATH"] = str(toylang_site)
    return runner


def test_a_toy_module_imports_with_the_binding_rules_of_c(toy: Runner) -> None:
    toy.write("gcdlib.toy", GCDLIB)
    result = toy.json("""
        import json, nativeimport
        nativeimport.install()
        import gcdlib
        out = [gcdlib.gcd(84, 36), gcdlib.collatz(27), gcdlib.lcm(4, 6), gcdlib.close(1.0, 1.05, 0.1),
               gcdlib.safe_div(7, 0), gcdlib.safe_div(-2**63, -1), gcdlib.gcd.__doc__, gcdlib.__file__]
        for bad in (lambda: gcdlib.gcd(2**63, 1), lambda: gcdlib.gcd(1.5, 1), lambda: gcdlib.gcd(1)):
            try:
                bad()
            except (TypeError, OverflowError) as exc:
                out.append(type(exc).__name__)
        print(json.dumps(out))
    """)
    assert result[:6] == [12, 111, 12, True, 0, -2**63]
    assert result[6] == "i64 gcd(i64 a, i64 b)\n\nGreatest common divisor."
    assert result[7].endswith("gcdlib.toy")
    assert result[8:] == ["OverflowError", "TypeError", "TypeError"]


@pytest.mark.parametrize(("source", "diagnostic"), [
    ("fn f(a: i64) -> i64 {\n    let b = 2;\n    return a + b * c;\n}\n", "bad.toy:3:20: error: unknown name 'c'"),
    ("fn f(a: i64) -> i64 {\n    return a +;\n}\n", "bad.toy:2:15: error: expected an expression, found ';'"),
    ("fn f(a: i64) -> f64 {\n    return a;\n}\n", "bad.toy:2:12: error: expected f64, found i64"),
    ("fn f(a: i64) -> i64 {\n    if a { return 1; }\n    return 0;\n}\n", "bad.toy:2:8: error: expected bool, found i64"),
    ("fn f(a: i64) -> i64 {\n    while a > 0 { a = a - 1; }\n}\n",
     "bad.toy:1:1: error: function 'f' can reach its end without returning a value"),
    ("fn f(a: u8) -> i64 { return 1; }\n", "bad.toy:1:9: error: unknown type 'u8'; types are i64, i32, f64, bool"),
])
def test_toy_errors_read_like_a_compilers(toy: Runner, source: str, diagnostic: str) -> None:
    toy.write("bad.toy", source)
    message = toy.import_error("bad", "CompileError")
    assert diagnostic in message.splitlines()
    assert toy.entries() == []


def test_editing_a_toy_file_then_importing_again(toy: Runner) -> None:
    source = toy.write("live.toy", "fn version() -> i64 { return 1; }\n")
    result = toy.json(f"""
        import importlib, json, pathlib, nativeimport
        nativeimport.install()
        import live
        first = live.version()
        pathlib.Path({str(source)!r}).write_text("fn version() -> i64 {{ return 2; }}\\n")
        importlib.reload(live)
        print(json.dumps([first, live.version()]))
    """)
    assert result == [1, 2]


def test_doctor_lists_the_outside_driver(toy: Runner) -> None:
    report = json.loads(toy.cli("doctor", "--json").stdout)
    toy_driver = next(d for d in report["drivers"] if d["name"] == "toy")
    assert toy_driver["entry_point"] == "toylang.driver:ToyDriver"
    assert toy_driver["found"] and toy_driver["version"].startswith("toyc 0.1.0 with ")
