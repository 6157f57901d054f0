"""Constants, binary data, __ffi__ and Rust handles on PyPy: the entry CPython built, the same results."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers import Runner
from test_bytes import CODEC, ROUND_TRIP
from test_constants import CHECK, HEADER, SOURCE
from test_ffi_toolkit import THINGS, USE
from test_interpreters import run_with
from test_rust_handles import USE as RUST_USE
from test_rust_handles import ZIPCODES

CPYTHON = Path(sys.executable)


def same_on_both(runner: Runner, pypy: Path, code: str, *, differ: tuple[str, ...] = ()) -> dict[str, object]:
    """Run ``code`` on CPython (which builds) then on PyPy (which must not); the results, minus ``differ``."""
    on_cpython, _ = run_with(runner, CPYTHON, code)
    on_pypy, log = run_with(runner, pypy, code)
    assert "building" not in log, "PyPy uses the entry CPython built"
    assert isinstance(on_cpython, dict) and isinstance(on_pypy, dict)
    for key in differ:
        on_cpython.pop(key, None)
        on_pypy.pop(key, None)
    assert on_pypy == on_cpython
    return on_pypy


def test_constants_on_pypy(runner: Runner, pypy: Path) -> None:
    runner.write("shapes.h", HEADER)
    runner.write("shapes.c", SOURCE)
    result = same_on_both(runner, pypy, CHECK, differ=("served",))
    assert result["values"]["VERSION"] == "1.2"  # type: ignore[index]


def test_binary_data_on_pypy(runner: Runner, pypy: Path) -> None:
    runner.write("codec.c", CODEC)
    result = same_on_both(runner, pypy, "BINDER = 'auto'\n" + ROUND_TRIP, differ=("numpy", "numpy_int32", "zero_copy"))
    assert result["bytes"] is True and result["bytearray"] is True and result["zero_copy_array"] == [True]


def test_ffi_toolkit_on_pypy(runner: Runner, pypy: Path) -> None:
    runner.write("things.c", THINGS)
    result = same_on_both(runner, pypy, USE, differ=("served",))
    assert result["null_result"] is None and result["open"] == [0, 5, "gizmo"]


def test_rust_handles_on_pypy(runner: Runner, pypy: Path) -> None:
    if shutil.which("rustc") is None:
        pytest.skip("rustc is not installed (https://rustup.rs)")
    runner.write("zipcodes.rs", ZIPCODES)
    result = same_on_both(runner, pypy, RUST_USE)
    assert result["found"] == ["Paris", None]
