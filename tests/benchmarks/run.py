"""Run the benchmark suite in its own environment: `python tests/benchmarks/run.py`.

Creates tests/benchmarks/.venv, installs nativeimport from this checkout and the
peers from PyPI (Cython, cppimport + pybind11, cffi, matplotlib), then runs
bench.py there, which writes results.md, results.json and results.png here.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS = ["cython>=3", "cppimport", "pybind11", "cffi", "setuptools", "matplotlib"]


def main() -> int:
    environment = HERE / ".venv"
    python = environment / "bin" / "python"
    if not python.exists():
        venv.create(environment, with_pip=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT), *PEERS], check=True)
    return subprocess.run([str(python), str(HERE / "bench.py"), *sys.argv[1:]], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
