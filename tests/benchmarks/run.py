"""Run the benchmark suite in its own environment: `python tests/benchmarks/run.py`.

Creates tests/benchmarks/.venv, installs nativeimport from this checkout and the
peers from PyPI (Cython, cppimport + pybind11, cffi, matplotlib), then runs
bench.py there, which writes results.md, results.json and results.png here.
With `pypy3` on PATH it also makes tests/benchmarks/.venv-pypy (nativeimport
alone: PyPy has cffi built in) for the PyPy rows. Arguments go to bench.py
(`--exports 2000 20000` adds the 20,000-export build, several minutes).
"""

from __future__ import annotations

import shutil
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
    extra = []
    if shutil.which("pypy3") is not None:
        pypy = HERE / ".venv-pypy" / "bin" / "python"
        try:
            if not pypy.exists():  # pypy3's own venv module: this interpreter's would make a CPython environment
                subprocess.run(["pypy3", "-m", "venv", str(pypy.parents[1])], check=True)
            subprocess.run([str(pypy), "-m", "pip", "install", "-q", str(ROOT)], check=True)
            extra = ["--pypy", str(pypy)]
        except subprocess.CalledProcessError as error:  # Debian's pypy3 needs pypy3-venv for `-m venv`
            print(f"no PyPy rows: setting up {pypy.parents[1]} failed ({error})", file=sys.stderr)
    return subprocess.run([str(python), str(HERE / "bench.py"), *extra, *sys.argv[1:]], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
