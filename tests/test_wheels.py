"""From sources to a wheel: nativeimport.build_meta prebuilds a package's C, Rust and Zig modules into it.

One sample project (written here) is built into a wheel once per module, with
the nativeimport under test as its build backend, then installed beside a
wheel of nativeimport into fresh environments (CPython, and PyPy when present)
whose PATH holds no compiler and whose cache directory is read-only. There
the modules import and call correctly, build nothing and write nothing, and
mypy reads the stubs the wheel carries.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from helpers import Runner

ROOT = Path(__file__).parents[1]

if shutil.which("rustc") is None:
    pytest.skip("rustc is not installed (https://rustup.rs): the sample project has a Rust module",
                allow_module_level=True)
if importlib.util.find_spec("ziglang") is None and shutil.which("zig") is None:
    pytest.skip("no Zig compiler (pip install nativeimport[zig]): the sample project has a Zig module",
                allow_module_level=True)
HAS_CARGO = shutil.which("cargo") is not None

FAST_C = """
    #include <stdint.h>

    /** A point in the plane. */
    struct Vec2 { double x; double y; };

    /** Which way to go. */
    enum Mode { MODE_DOWN = 0, MODE_UP = 3 };

    /** The sum of two doubles. */
    double add(double a, double b) { return a + b; }

    /** The dot product. */
    double dot(struct Vec2 a, struct Vec2 b) { return a.x * b.x + a.y * b.y; }

    /** The sum of the first n values. */
    double total(const double *xs, int64_t n) {
        double sum = 0;
        for (int64_t i = 0; i < n; i++) sum += xs[i];
        return sum;
    }

    int32_t scaled(enum Mode mode, int32_t x) { return (int32_t)mode * x; }
"""
KERNELS_RS = """
    /// Half of x.
    #[no_mangle]
    pub extern "C" fn halve(x: f64) -> f64 { x / 2.0 }
"""
VEC_ZIG = """
    /// Three times x.
    export fn triple(x: i64) i64 { return 3 * x; }
"""
CRATE_TOML = """
    [package]
    name = "sample_crate"
    version = "0.1.0"
    edition = "2021"

    [lib]
    crate-type = ["cdylib"]
"""
CRATE_LIB = """
    /// x squared.
    #[no_mangle]
    pub extern "C" fn square(x: i32) -> i32 { x * x }
"""
PYPROJECT = """
    [build-system]
    requires = ["setuptools>=64", "nativeimport"]
    build-backend = "nativeimport.build_meta"

    [project]
    name = "mypkg"
    version = "1.0"
    dependencies = ["nativeimport"]
"""
MODULES = ["combo", "fast", "kernels", "vec", *(["crate"] if HAS_CARGO else [])]

CALLS = """
    import array, json, shutil, sys
    from mypkg import combo, fast, kernels, vec
    xs = array.array("d", [1.0, 2.0, 3.5])
    out = {
        "add": fast.add(1.5, 2.25),
        "dot": fast.dot(fast.Vec2(x=1.0, y=2.0), fast.Vec2(3.0, 4.0)),
        "total": fast.total(xs, 3),
        "scaled": fast.scaled(fast.Mode.MODE_UP, 5),
        "enum": [int(fast.MODE_UP), fast.Mode.MODE_UP == 3],
        "halve": kernels.halve(5.0),
        "triple": vec.triple(-7),
        "combo": combo.two(),
        "doc": fast.add.__doc__,
        "file": fast.__file__,
        "stray": [n for n in vars(fast) if not n.startswith("_") and n not in fast.__all__],
        "compilers": [n for n in ("cc", "gcc", "clang", "rustc", "cargo", "zig") if shutil.which(n)],
    }
    if HAS_CARGO:
        from mypkg import crate
        out["square"] = crate.square(12)
    try:
        fast.add("one", 2.0)
    except TypeError as exc:
        out["wrong_type"] = type(exc).__name__
    out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("nativeimport", "cffi", "pycparser", "elftools"))
    out["add_type"] = type(fast.add).__name__
    print(json.dumps(out))
""".replace("HAS_CARGO", repr(HAS_CARGO))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def _sample_project(project: Path) -> None:
    _write(project / "pyproject.toml", PYPROJECT)
    _write(project / "mypkg" / "__init__.py", '"""A package with native modules."""\n')
    _write(project / "mypkg" / "fast.c", FAST_C)
    _write(project / "mypkg" / "kernels.rs", KERNELS_RS)
    _write(project / "mypkg" / "vec.zig", VEC_ZIG)
    # A module nativeimport.toml defines from two files in a folder that is not a package.
    _write(project / "mypkg" / "nativeimport.toml", '[combo]\nsources = ["csrc/one.c", "csrc/two.c"]\n')
    _write(project / "mypkg" / "csrc" / "one.c", "int one(void) { return 1; }\n")
    _write(project / "mypkg" / "csrc" / "two.c", "int one(void);\nint two(void) { return one() + 1; }\n")
    if HAS_CARGO:
        _write(project / "mypkg" / "crate" / "Cargo.toml", CRATE_TOML)
        _write(project / "mypkg" / "crate" / "src" / "lib.rs", CRATE_LIB)


def _pip_wheel(project: Path, out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATIVEIMPORT_")}
    env["NATIVEIMPORT_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                           str(project)], capture_output=True, text=True, env=env, timeout=900, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the sample project's wheel, the cache its build used); the project is beside the cache."""
    base = tmp_path_factory.mktemp("sample")
    project = base / "project"
    _sample_project(project)
    done = _pip_wheel(project, base / "dist", base / "cache")
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (base / "dist").glob("mypkg-*.whl")
    return wheel, base / "cache"


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


@pytest.fixture(scope="module")
def nativeimport_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nativeimport-wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = folder.glob("nativeimport-*.whl")
    return wheel


def _environment(python: str, target: Path, wheels: list[Path]) -> Path:
    """A fresh venv holding ``wheels`` (and their dependencies), installed by this pip for speed."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(target)], check=True, capture_output=True, timeout=300)
    interpreter = target / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(interpreter), "install", "-q",
                    *map(str, wheels)], check=True, capture_output=True, timeout=900)
    return interpreter


@pytest.fixture(scope="module")
def cpython(tmp_path_factory: pytest.TempPathFactory, built: tuple[Path, Path], nativeimport_wheel: Path) -> Path:
    return _environment(sys.executable, tmp_path_factory.mktemp("cpython") / "venv", [nativeimport_wheel, built[0]])


@pytest.fixture(scope="module")
def pypy(tmp_path_factory: pytest.TempPathFactory, built: tuple[Path, Path], nativeimport_wheel: Path) -> Path:
    if shutil.which("pypy3") is None:
        pytest.skip("PyPy is not installed (Debian: apt-get install pypy3 pypy3-venv)")
    return _environment("pypy3", tmp_path_factory.mktemp("pypy") / "venv", [nativeimport_wheel, built[0]])


def _package_dir(python: Path) -> Path:
    done = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
                          capture_output=True, text=True, check=True, timeout=60)
    return Path(done.stdout.strip()) / "mypkg"


def _tree(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*")}


def _run_without_toolchains(python: Path, tmp_path: Path) -> dict[str, object]:
    """Run CALLS with only the venv on PATH, a read-only empty cache and an empty home; nothing may be written."""
    cache = tmp_path / "read-only-cache"
    cache.mkdir()
    cache.chmod(0o555)
    home = tmp_path / "home"
    home.mkdir()
    installed = _package_dir(python)
    before = _tree(installed)
    script = tmp_path / "use_it.py"
    script.write_text(textwrap.dedent(CALLS), encoding="utf-8")
    env = {"PATH": str(python.parent), "HOME": str(home), "NATIVEIMPORT_CACHE_DIR": str(cache),
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([str(python), str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert not done.stderr, "no warning, no build log"
    assert list(cache.iterdir()) == [], "the cache is not touched"
    assert list(home.iterdir()) == [], "nor the default cache"
    assert _tree(installed) == before, "nothing written beside the shipped entries (no code cache, no record)"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _check_calls(result: dict[str, object], installed: Path) -> None:
    assert result["compilers"] == [], "the environment must have no compiler"
    assert result["add"] == 1.5 + 2.25
    assert result["dot"] == 1.0 * 3.0 + 2.0 * 4.0
    assert result["total"] == 1.0 + 2.0 + 3.5
    assert result["scaled"] == 3 * 5
    assert result["enum"] == [3, True]
    assert result["halve"] == 5.0 / 2
    assert result["triple"] == -21
    assert result["combo"] == 2
    if HAS_CARGO:
        assert result["square"] == 144
    assert result["doc"] == "double add(double a, double b)\n\nThe sum of two doubles."
    assert result["wrong_type"] == "TypeError"
    assert result["file"] == str(installed / "fast.py")
    assert result["stray"] == [], "the module holds the native exports and nothing of its .py"
    modules = result["modules"]
    assert isinstance(modules, list)
    assert "nativeimport._build" not in modules, "nothing is built"
    assert not [m for m in modules if m.startswith(("pycparser", "elftools", "cffi.recompiler", "cffi.cparser"))]
    assert "nativeimport._finder" not in modules, "no install(): Python's own finder imports the wheel's modules"


def test_the_wheel_holds_prebuilt_modules_stubs_and_no_sources(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for module in MODULES:
            assert {f"mypkg/{module}.py", f"mypkg/{module}.pyi"} <= names
            entry = {n.rpartition("/")[2] for n in names if n.startswith(f"mypkg/{module}.nativeimport/")}
            assert {"library.so", "binding_cffi.py", "binding_light.py", "interface.json", "manifest.json"} <= entry
            assert f"fast{sysconfig.get_config_var('EXT_SUFFIX')}" in entry, "the building CPython's wrapper"
            assert f"binding_light.{sys.implementation.cache_tag}.code" in entry
            assert "last-used" not in entry
        assert "mypkg/py.typed" in names
        assert not [n for n in names if n.endswith((".c", ".rs", ".zig", "Cargo.toml"))]
        shim = archive.read("mypkg/fast.py").decode()
        assert "bind_shipped(__name__" in shim
        stub = archive.read("mypkg/fast.pyi").decode()
        assert "def add(a: float, b: float) -> float:" in stub and "The sum of two doubles." in stub
        assert "class Vec2:" in stub and "class Mode(enum.IntEnum):" in stub


def test_the_wheel_tags_name_the_platform_and_the_wrappers_abi(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    python = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    abi = "cp" + sysconfig.get_config_var("SOABI").split("-")[1]
    assert wheel.name == f"mypkg-1.0-{python}.py3-{abi}.none-{platform}.whl"
    with zipfile.ZipFile(wheel) as archive:
        lines = archive.read("mypkg-1.0.dist-info/WHEEL").decode().splitlines()
        assert "Root-Is-Purelib: false" in lines
        assert sorted(line[5:] for line in lines if line.startswith("Tag: ")) == sorted(
            f"{i}-{a}-{platform}" for i in (python, "py3") for a in (abi, "none"))
        rows = list(csv.reader(io.StringIO(archive.read("mypkg-1.0.dist-info/RECORD").decode())))
        assert {row[0] for row in rows} == set(archive.namelist())
        for name, digest, size in rows:
            if name.endswith("RECORD"):
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data)), name


def test_installed_on_cpython_it_imports_with_no_compiler_source_or_cache(cpython: Path, tmp_path: Path) -> None:
    installed = _package_dir(cpython)
    assert not [p for p in installed.rglob("*") if p.suffix in (".c", ".rs", ".zig")], "no source is installed"
    result = _run_without_toolchains(cpython, tmp_path)
    _check_calls(result, installed)
    assert result["add_type"] == "builtin_function_or_method", "served by the shipped fast wrapper"


def test_installed_on_pypy_the_same_wheel_binds_through_cffi(pypy: Path, tmp_path: Path) -> None:
    result = _run_without_toolchains(pypy, tmp_path)
    _check_calls(result, _package_dir(pypy))


def test_a_damaged_or_mismatched_shipped_module_says_to_reinstall(built: tuple[Path, Path], tmp_path: Path) -> None:
    with zipfile.ZipFile(built[0]) as archive:
        archive.extractall(tmp_path / "site")
    package = tmp_path / "site" / "mypkg"
    (package / "vec.nativeimport" / "library.so").write_bytes(b"not a library")
    shutil.rmtree(package / "kernels.nativeimport")
    shim = package / "fast.py"
    shim.write_text(shim.read_text().replace("bind_shipped(__name__, '", "bind_shipped(__name__, '99."))
    code = """
        import json, nativeimport
        out = {}
        for name in ("mypkg.vec", "mypkg.kernels", "mypkg.fast"):
            try:
                __import__(name)
            except nativeimport.BindingError as exc:
                out[name] = [str(exc), exc.name, exc.path]
        print(json.dumps(out))
    """
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "NATIVEIMPORT_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["mypkg.vec"][0].endswith("not a 64-bit little-endian ELF library); reinstall the package")
    assert out["mypkg.vec"][1:] == ["mypkg.vec", str(package / "vec.nativeimport")]
    assert out["mypkg.kernels"][0] == f"mypkg.kernels: its prebuilt build {package / 'kernels.nativeimport'} is missing; reinstall the package"
    assert "was built by nativeimport 99." in out["mypkg.fast"][0] and "rebuild the package's wheel" in out["mypkg.fast"][0]
    assert not (tmp_path / "cache").exists(), "nothing is rebuilt"


def test_mypy_reads_the_stubs_the_wheel_ships(cpython: Path, tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")
    good = tmp_path / "good.py"
    good.write_text(textwrap.dedent("""
        import array
        from mypkg import combo, fast, kernels, vec

        total: float = fast.add(1.0, 2) + fast.dot(fast.Vec2(x=1.0, y=2.0), fast.Vec2(3.0, 4.0))
        total += fast.total(array.array("d", [1.0]), 1) + kernels.halve(3.0)
        count: int = vec.triple(3) + fast.scaled(fast.Mode.MODE_UP, 2) + fast.MODE_DOWN
    """))
    bad = tmp_path / "bad.py"
    bad.write_text("from mypkg import fast\n\nfast.add('one', 2.0)\n")

    def mypy(script: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mypy", "--python-executable", str(cpython), "--strict",
                               "--cache-dir", str(tmp_path / "mypy-cache"), str(script)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)

    passed = mypy(good)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = mypy(bad)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert 'bad.py:3: error: Argument 1 to "add" has incompatible type "str"; expected "float"' in failed.stdout


def test_a_wheel_whose_project_does_not_require_nativeimport_is_refused(built: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    project = tmp_path / "project"
    _write(project / "pyproject.toml", PYPROJECT.replace('dependencies = ["nativeimport"]', "dependencies = []"))
    _write(project / "mypkg" / "__init__.py", "")
    _write(project / "mypkg" / "fast.c", FAST_C)
    done = _pip_wheel(project, tmp_path / "dist", built[1])  # the sample's cache: fast.c is built already
    assert done.returncode != 0
    assert 'add "nativeimport>=' in done.stdout + done.stderr
    assert not list(tmp_path.glob("dist/*.whl"))


def test_an_sdist_carries_the_sources_and_its_wheel_the_same_prebuilt_modules(built: tuple[Path, Path],
                                                                                tmp_path: Path) -> None:
    wheel, cache = built
    project = cache.parent / "project"
    if HAS_CARGO:
        _write(project / "mypkg" / "crate" / "target" / "debug" / "junk.txt", "cargo's build output\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATIVEIMPORT_")}
    env["NATIVEIMPORT_CACHE_DIR"] = str(cache)
    hook = f"import nativeimport.build_meta as backend; print(backend.build_sdist({str(tmp_path)!r}))"
    done = subprocess.run([sys.executable, "-c", hook], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    sdist = tmp_path / done.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as archive:
        names = {n.partition("/")[2] for n in archive.getnames()}
    assert {"mypkg/fast.c", "mypkg/kernels.rs", "mypkg/vec.zig"} <= names
    if HAS_CARGO:
        assert {"mypkg/crate/Cargo.toml", "mypkg/crate/src/lib.rs"} <= names
        assert not [n for n in names if "/target/" in n], "not Cargo's build output"
    done = _pip_wheel(sdist, tmp_path / "dist", cache)
    assert done.returncode == 0, done.stdout + done.stderr
    (from_sdist,) = (tmp_path / "dist").glob("mypkg-*.whl")
    assert from_sdist.name == wheel.name
    assert _wheel_names(from_sdist) == _wheel_names(wheel), "the same modules, and still no source in the wheel"


def test_stubs_are_written_beside_sources_only_when_asked(runner: Runner) -> None:
    source = runner.write("shapes.c", FAST_C)
    runner.write("rmod.rs", KERNELS_RS)
    runner.run("import nativeimport\nnativeimport.install()\nimport shapes, rmod\n")
    assert not list(runner.project.glob("*.pyi")), "an import writes nothing beside the sources"
    done = runner.cli("stubs", "shapes.c", "rmod.rs")
    assert sorted(p.name for p in runner.project.glob("*.pyi")) == ["rmod.pyi", "shapes.pyi"]
    assert "wrote" in done.stdout
    stub = source.with_suffix(".pyi").read_text()
    assert "def total(xs: Buffer | None, n: int) -> float:" in stub
    assert "x: float" in stub and "MODE_UP = 3" in stub
    assert "def halve(x: float) -> float:" in (runner.project / "rmod.pyi").read_text()
    assert runner.cli("stubs", "missing.c", check=False).returncode == 1
