"""One build, every interpreter: CPython and PyPy (and another CPython installation) share cache entries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Runner, make_environment

ROOT = Path(__file__).parents[1]
MYMATH = (ROOT / "demos" / "mymath" / "mymath.c").read_text()
CALLS = """
    import array, json, nativeimport
    nativeimport.install()
    import mymath
    xs = array.array("d", [1, 2, 3])
    mymath.scale(xs, 3, 2.0)
    p = mymath.Point(x=3.0, y=4.0)
    mymath.translate(p, 1.0, 1.0)
    out = [mymath.add(1.5, 2.0), mymath.sum(xs, 3), xs.tolist(), mymath.length(mymath.Point(3.0, 4.0)), [p.x, p.y],
           mymath.unit_name(mymath.UNIT_KM), int(mymath.Unit.UNIT_KM), mymath.length.__doc__]
    for bad in (lambda: mymath.sum(array.array("i", [1]), 1), lambda: mymath.add("x", 1)):
        try:
            bad()
        except TypeError as exc:
            out.append(type(exc).__name__)
    print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def other_cpython(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    system = "/usr/bin/python3"
    if not os.path.exists(system) or os.path.realpath(system) == os.path.realpath(sys.base_prefix + "/bin/python3"):
        pytest.skip("no second CPython installation (Debian: apt-get install python3 python3-venv)")
    return make_environment(system, tmp_path_factory.mktemp("cpython") / "venv", wheel)


def run_with(runner: Runner, python: Path, code: str) -> tuple[object, str]:
    import textwrap

    script = runner.project / "_interp.py"
    script.write_text(textwrap.dedent(code))
    done = subprocess.run([str(python), str(script)], cwd=runner.project, capture_output=True, text=True,
                          env={**runner.env, "NATIVEIMPORT_VERBOSE": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_cpython_build_serves_pypy_unchanged(runner: Runner, pypy: Path) -> None:
    runner.write("mymath.c", MYMATH)
    on_cpython, log = run_with(runner, Path(sys.executable), CALLS)
    assert "built mymath" in log
    (entry,) = runner.entries()
    library = (entry / "library.so").stat().st_mtime_ns
    on_pypy, log = run_with(runner, pypy, CALLS)
    assert on_pypy == on_cpython
    assert "building" not in log and "running" not in log, "PyPy neither compiles nor regenerates the binding"
    assert runner.entries() == [entry]
    assert (entry / "library.so").stat().st_mtime_ns == library
    assert (entry / "binding_cffi.pypy39.code").exists()
    listed = json.loads(runner.cli("cache", "list", "--json").stdout)[0]["interpreters"]
    assert any(i.startswith("cpython-") and "fast binder" in i for i in listed) and "pypy39" in listed


def test_a_pypy_build_serves_cpython_which_adds_its_fast_wrapper(runner: Runner, pypy: Path) -> None:
    runner.write("mymath.c", MYMATH)
    on_pypy, log = run_with(runner, pypy, CALLS)
    assert "built mymath" in log
    (entry,) = runner.entries()
    assert list(entry.glob("fast.*.so")) == [], "PyPy builds no CPython wrapper"
    library = (entry / "library.so").stat().st_mtime_ns
    on_cpython, log = run_with(runner, Path(sys.executable), CALLS)
    assert on_cpython == on_pypy
    assert "building" not in log, "the native library is not rebuilt"
    assert (entry / "library.so").stat().st_mtime_ns == library
    assert len(list(entry.glob("fast.cpython-*.so"))) == 1


def test_rust_and_zig_modules_under_pypy(runner: Runner, pypy: Path) -> None:
    if shutil.which("rustc") is None:
        pytest.skip("rustc is not installed (https://rustup.rs)")
    pytest.importorskip("ziglang", reason="the ziglang wheel is not installed (pip install nativeimport[zig])")
    runner.write("rmod.rs", '/// Halve.\n#[no_mangle]\npub extern "C" fn halve(x: f64) -> f64 { x / 2.0 }\n')
    runner.write("zmod.zig", "/// Triple.\nexport fn triple(x: i64) i64 { return 3 * x; }\n")
    code = """
        import json, nativeimport
        nativeimport.install()
        import rmod, zmod
        print(json.dumps([rmod.halve(5.0), zmod.triple(7), rmod.halve.__doc__, zmod.triple.__doc__]))
    """
    on_pypy, _ = run_with(runner, pypy, code)
    on_cpython, log = run_with(runner, Path(sys.executable), code)
    assert on_pypy == on_cpython == [2.5, 21, "double halve(double x)\n\nHalve.", "int64_t triple(int64_t x)\n\nTriple."]
    assert "building" not in log


def test_another_cpython_installation_shares_the_build(runner: Runner, other_cpython: Path) -> None:
    runner.write("mymath.c", MYMATH)
    first, _ = run_with(runner, Path(sys.executable), CALLS)
    second, log = run_with(runner, other_cpython, CALLS)
    assert first == second
    assert "building" not in log
    (entry,) = runner.entries()
    assert len(list(entry.glob("fast.*.so"))) == 1, "one wrapper per ABI tag: both are cpython-311"


def test_doctor_under_pypy_explains_the_binders(runner: Runner, pypy: Path) -> None:
    done = subprocess.run([str(pypy), "-m", "nativeimport", "doctor", "--json"], capture_output=True, text=True,
                          env=runner.env, check=True, cwd=runner.project)
    report = json.loads(done.stdout)
    assert report["python"].startswith("pypy 3.9")
    assert report["binders"].startswith("cffi (pypy: the fast binder is for CPython")
    assert [d["name"] for d in report["drivers"] if d["found"]][:1] == ["c"]


