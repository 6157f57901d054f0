"""The demos run as the README says, each with its own cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEMOS = Path(__file__).parents[1] / "demos"


def run_demo(script: Path, cache: Path) -> str:
    env = {**os.environ, "NATIVEIMPORT_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_mymath_demo(tmp_path: Path) -> None:
    out = run_demo(DEMOS / "mymath" / "demo.py", tmp_path)
    assert "mymath.length(mymath.Point(x=3.0, y=4.0)) = 5.0" in out
    assert "TypeError: sum() argument 'xs'" in out


@pytest.mark.skipif(shutil.which("rustc") is None, reason="rustc is not installed (https://rustup.rs)")
def test_rust_sieve_demo(tmp_path: Path) -> None:
    out = run_demo(DEMOS / "rust_sieve" / "demo.py", tmp_path)
    assert "primes below 10,000,000: 664,579" in out
    assert "the 1,000,000th prime: 15485863" in out


def test_zig_vector_demo(tmp_path: Path) -> None:
    pytest.importorskip("ziglang", reason="the ziglang wheel is not installed (pip install nativeimport[zig])")
    out = run_demo(DEMOS / "zig_vector" / "demo.py", tmp_path)
    assert "y[:5] = [1.0, 3.0, 5.0, 7.0, 9.0]" in out
    assert "normalize([3, 4]) -> old length 5.0, now [0.6, 0.8]" in out


def test_the_demo_notebook_executes_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the jupyter test dependencies are not installed")
    nbclient = pytest.importorskip("nbclient", reason="the jupyter test dependencies are not installed")
    monkeypatch.setenv("NATIVEIMPORT_CACHE_DIR", str(tmp_path / "cache"))
    notebook = nbformat.read(DEMOS / "notebook.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "C: " in text and "NumPy: " in text
    assert "Escape-time Mandelbrot" in text
