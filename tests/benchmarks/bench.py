"""Every way of calling C from Python, side by side, and what nativeimport's builds cost.

Run by run.py inside an environment that has the peers. Measures four scalar and
buffer functions (sources/kernels.c) through every tool; structs, a handle, a
callback and a string (sources/records.c, records.py) against a hand-written
extension, pybind11 and cffi; imports; and the build cost against bare gcc
(build_cost.py). Prints the tables and writes results.md, results.json and
results.png beside this file. Timings are medians over interleaved rounds (every
tool measured once per round, in a shuffled order), with the timing loop's own
cost subtracted.
"""

from __future__ import annotations

import argparse
import array
import ctypes
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import build_cost  # beside this file, as are the two below (a script's folder comes first on sys.path)
import records
from records import load_extension
from timing import interleaved

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
N_DOUBLES = 1000


def sh(*command: str, cwd: Path | None = None) -> None:
    subprocess.run(command, check=True, cwd=cwd)


def python_seconds(code: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Wall time of ``code`` in a fresh interpreter, measured inside it (start-up excluded)."""
    script = f"import time\n_t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)\n"
    # Never run from the checkout: its nativeimport/ folder would shadow the installed package.
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or tempfile.gettempdir())
    return float(done.stdout.strip().splitlines()[-1])


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.src = root / "src"
        shutil.copytree(SOURCES, self.src)
        self.cache = root / "nativeimport-cache"
        include = sysconfig.get_paths()["include"]
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        self.plain_lib = root / "libkernels.so"
        sh("gcc", "-O2", "-fPIC", "-shared", "-o", str(self.plain_lib), str(self.src / "kernels.c"))
        self.handmade = root / f"handmade{suffix}"
        sh("gcc", "-O2", "-fPIC", "-shared", f"-I{include}", "-o", str(self.handmade), str(self.src / "handmade.c"),
           str(self.src / "kernels.c"))


CDEF = ("double add(double, double); int64_t add3(int64_t, int64_t, int64_t); void nothing(void);"
        "double sum(const double *, size_t);")


def cffi_tool(ffi: Any, lib: Any) -> Any:
    """The functions as a user of cffi calls them: buffers through ffi.from_buffer."""

    class Tool:
        add, add3, nothing = lib.add, lib.add3, lib.nothing

        @staticmethod
        def sum(xs: Any, n: int) -> float:
            return lib.sum(ffi.from_buffer("double[]", xs), n)  # type: ignore[no-any-return]

    return Tool


def cffi_api_module(work: Workspace) -> Any:
    from cffi import FFI

    builder = FFI()
    builder.cdef(CDEF)
    builder.set_source("_kernels_api", (work.src / "kernels.c").read_text())
    built = builder.compile(tmpdir=str(work.root / "cffi-api"), verbose=False)
    module = load_extension("_kernels_api", Path(built))
    return cffi_tool(module.ffi, module.lib)


def cffi_abi_module(work: Workspace) -> Any:
    from cffi import FFI

    ffi = FFI()
    ffi.cdef(CDEF)
    return cffi_tool(ffi, ffi.dlopen(str(work.plain_lib)))


def ctypes_module(work: Workspace) -> Any:
    lib = ctypes.CDLL(str(work.plain_lib))
    lib.add.argtypes, lib.add.restype = [ctypes.c_double, ctypes.c_double], ctypes.c_double
    lib.add3.argtypes, lib.add3.restype = [ctypes.c_int64] * 3, ctypes.c_int64
    lib.nothing.argtypes, lib.nothing.restype = [], None
    lib.sum.argtypes, lib.sum.restype = [ctypes.POINTER(ctypes.c_double), ctypes.c_size_t], ctypes.c_double
    array_type = ctypes.c_double * N_DOUBLES

    class Ctypes:
        add, add3, nothing = lib.add, lib.add3, lib.nothing

        @staticmethod
        def sum(xs: Any, n: int) -> float:
            return lib.sum(array_type.from_buffer(xs), n)  # type: ignore[no-any-return]

    return Ctypes


def tools(work: Workspace) -> dict[str, Any]:
    import nativeimport

    found: dict[str, Any] = {"hand-written METH_FASTCALL": load_extension("handmade", work.handmade)}
    # A new module binds through cffi while its wrapper compiles in the background: wait for it, then
    # load again as the next import would, or this row would time cffi.
    nativeimport.wait_for_wrapper(nativeimport.load(work.src / "kernels.c", cache_dir=work.cache))
    found["nativeimport (fast binder)"] = nativeimport.load(work.src / "kernels.c", cache_dir=work.cache)
    found["nativeimport (cffi binder)"] = nativeimport.load(work.src / "kernels.c", name="kernels_cffi",
                                                            cache_dir=work.cache, binder="cffi")
    sys.path.insert(0, str(work.src))
    import pyximport

    pyximport.install(build_dir=str(work.root / "pyxbld"), language_level=3)
    found["Cython (pyximport)"] = importlib.import_module("kernels_cy")
    import cppimport

    found["pybind11 (cppimport)"] = cppimport.imp("kernels_pb")
    found["cffi API mode"] = cffi_api_module(work)
    found["cffi ABI mode"] = cffi_abi_module(work)
    found["ctypes"] = ctypes_module(work)
    return found


CASES: dict[str, tuple[str, int]] = {
    "double add(double, double)": ("f.add(1.0, 2.0)", 200_000),
    "int64_t add3(int64_t, int64_t, int64_t)": ("f.add3(1, 2, 3)", 200_000),
    "void nothing(void)": ("f.nothing()", 200_000),
    f"double sum(const double *, size_t), {N_DOUBLES} doubles": ("f.sum(xs, 1000)", 50_000),
}


def measure_calls(found: dict[str, Any], rounds: int) -> dict[str, dict[str, float]]:
    xs = array.array("d", range(N_DOUBLES))
    results: dict[str, dict[str, float]] = {}
    for case, (statement, number) in CASES.items():
        for tool in found.values():  # every tool must give the handmade answer first
            expected = eval(statement, {"f": found["hand-written METH_FASTCALL"], "xs": xs})
            assert eval(statement, {"f": tool, "xs": xs}) == expected, (tool, case)
        results[case] = interleaved({name: {"f": tool, "xs": xs} for name, tool in found.items()}, statement,
                                    number, rounds)
    return results


PYPY = "nativeimport on PyPy (cffi binder)"

PYPY_CALLS = """
import array, json, sys
from pathlib import Path
sys.path.insert(0, {here!r})
import nativeimport, bench, records
from timing import interleaved

cache, src, rounds = Path({cache!r}), Path({src!r}), {rounds}
kernels = nativeimport.load(src / "kernels.c", cache_dir=cache)
geometry = nativeimport.load(src / "records.c", cache_dir=cache)
xs = array.array("d", range(bench.N_DOUBLES))
out = {{"calls": {{}}, "records": {{}}, "checks": {{}}}}
for case, (statement, number) in bench.CASES.items():
    out["checks"][case] = eval(statement, {{"f": kernels, "xs": xs}})
    out["calls"][case] = interleaved({{"pypy": {{"f": kernels, "xs": xs}}}}, statement, number, rounds)["pypy"]
for case, (statement, number, per, check) in records.CASES.items():
    out["checks"][case] = eval(check, records.record_scope(geometry))
    out["records"][case] = interleaved({{"pypy": records.record_scope(geometry)}}, statement, number, rounds,
                                       per)["pypy"]
print(json.dumps(out))
"""


def measure_pypy(pypy: str, work: Workspace, found: dict[str, Any], record_tools: dict[str, Any],
                 rounds: int) -> tuple[dict[str, float], dict[str, float]] | None:
    """The same cases through nativeimport on PyPy (cffi, which PyPy's JIT compiles), in a child process;
    None, said on stderr, if it failed (the rest of the run is worth keeping).

    Each answer must be the hand-written extension's (compared through JSON, as the child sends them).
    """
    code = PYPY_CALLS.format(here=str(HERE), cache=str(work.root / "pypy-cache"), src=str(work.src), rounds=rounds)
    done = subprocess.run([pypy, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        print(f"no PyPy rows: the PyPy measurement failed:\n{done.stderr[-4000:]}", file=sys.stderr)
        return None
    out = json.loads(done.stdout.strip().splitlines()[-1])
    xs = array.array("d", range(N_DOUBLES))
    for case, (statement, _) in CASES.items():
        expected = eval(statement, {"f": found["hand-written METH_FASTCALL"], "xs": xs})
        assert out["checks"][case] == json.loads(json.dumps(expected)), (case, out["checks"][case], expected)
    for case, (_, _, _, check) in records.CASES.items():
        expected = eval(check, records.record_scope(record_tools[records.HANDMADE]))
        assert out["checks"][case] == json.loads(json.dumps(expected)), (case, out["checks"][case], expected)
    return out["calls"], out["records"]


def measure_imports(work: Workspace) -> dict[str, dict[str, float]]:
    env = {"NATIVEIMPORT_CACHE_DIR": str(work.root / "import-cache")}
    kernels = work.root / "import-src" / "kernels.c"
    kernels.parent.mkdir()
    shutil.copy(work.src / "kernels.c", kernels)
    load = f"import nativeimport\nm = nativeimport.load({str(kernels)!r})"
    results: dict[str, dict[str, float]] = {}
    cold = python_seconds(load, env)
    # The first build leaves Python.h and the wrappers' helpers compiling in the background: a cache in
    # use has them, and timing anything while they compile would time the machine's contention.
    prebuilt = work.root / "import-cache" / "scratch" / "fast-pch"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (list(prebuilt.glob("*/ni_helpers.o")) and
                                               list(prebuilt.glob("*/ni_python.h.gch"))):
        time.sleep(0.1)
    results["nativeimport: load(kernels.c), empty cache"] = {"cold": cold, "warm": statistics.median(
        python_seconds(load, env) for _ in range(7))}
    fresh = []
    for index in range(5):  # a module the cache has never seen, as after an edit
        source = kernels.with_name(f"edited{index}.c")
        source.write_text(kernels.read_text().replace("add(", f"add_{index}("))
        fresh.append(python_seconds(f"import nativeimport\nm = nativeimport.load({str(source)!r})", env))
    results["nativeimport: load(a new module), cache in use"] = {"cold": statistics.median(fresh)}
    other = kernels.with_name("other.c")  # a second cached module, for the cost of each import after the first
    other.write_text(kernels.read_text().replace("add(", "add_other("))
    python_seconds(f"import nativeimport\nm = nativeimport.load({str(other)!r})", env)
    geometry = kernels.with_name("records.c")  # structs and a handle: on a hit, cffi should not be needed
    shutil.copy(work.src / "records.c", geometry)
    python_seconds(f"import nativeimport\nm = nativeimport.load({str(geometry)!r})\nnativeimport.wait_for_wrapper(m)",
                   env)
    shapes = kernels.with_name("shapes.c")  # structs and an enum, no handle: served without cffi
    shutil.copy(work.src / "shapes.c", shapes)
    python_seconds(f"import nativeimport\nm = nativeimport.load({str(shapes)!r})\nnativeimport.wait_for_wrapper(m)",
                   env)
    time.sleep(2.5)  # the folder is quiet again, as a project folder is between edits
    # The hit alone: in the same process, after `import nativeimport; nativeimport.install()`.
    hit = ("import nativeimport\nnativeimport.install()\n_t = time.perf_counter()\nimport kernels")
    results["nativeimport: import kernels, after install()"] = {"warm": statistics.median(
        python_seconds(hit, env, cwd=kernels.parent) for _ in range(9))}
    then = ("import nativeimport\nnativeimport.install()\nimport kernels\n_t = time.perf_counter()\nimport other")
    results["nativeimport: import another, after the first"] = {"warm": statistics.median(
        python_seconds(then, env, cwd=kernels.parent) for _ in range(9))}
    # cffi's own modules the hit loads (its C backend alone costs about 1 ms): none once the fast binder
    # serves structs and handles
    for name, holding in (("shapes", "structs and an enum"), ("records", "structs, a handle")):
        # once through the import system first: its freshness record is not load()'s
        python_seconds(hit.replace("import kernels", f"import {name}"), env, cwd=kernels.parent)
        loaded = subprocess.run(
            [sys.executable, "-c", f"import sys, nativeimport\nnativeimport.install()\nimport {name}\n"
             "print('+'.join(m for m in ('_cffi_backend', 'cffi') if m in sys.modules) or 'none')"],
            capture_output=True, text=True, check=True, env={**os.environ, **env},
            cwd=kernels.parent).stdout.split()[-1]
        results[f"nativeimport: import {name} ({holding}; cffi modules loaded: {loaded}), "
                "after install()"] = {"warm": statistics.median(python_seconds(
                    hit.replace("import kernels", f"import {name}"), env, cwd=kernels.parent) for _ in range(9))}
    # An enum is an enum.IntEnum, and a bare interpreter has not imported enum (~3 ms): most programs have
    # (re, logging, argparse, signal import it), so the same import once it is loaded.
    with_enum = hit.replace("import kernels", "import shapes").replace("_t = ", "import enum\n_t = ")
    results["nativeimport: import shapes, enum already imported"] = {"warm": statistics.median(
        python_seconds(with_enum, env, cwd=kernels.parent) for _ in range(9))}
    results["import nativeimport + install()"] = {"warm": statistics.median(
        python_seconds("import nativeimport\nnativeimport.install()", env) for _ in range(9))}
    results["built extension (hand-written)"] = {"warm": statistics.median(
        python_seconds("import handmade", cwd=work.root) for _ in range(9))}
    pyx_dir = work.root / "import-pyx"
    pyx_dir.mkdir()
    shutil.copy(work.src / "kernels_cy.pyx", pyx_dir)
    pyx = f"import pyximport\npyximport.install(build_dir={str(pyx_dir / 'build')!r}, language_level=3)\nimport kernels_cy"
    results["Cython (pyximport)"] = {"cold": python_seconds(pyx, cwd=pyx_dir), "warm": statistics.median(
        python_seconds(pyx, cwd=pyx_dir) for _ in range(5))}
    cpp_dir = work.root / "import-cpp"
    cpp_dir.mkdir()
    shutil.copy(work.src / "kernels_pb.cpp", cpp_dir)
    cpp = "import cppimport\nm = cppimport.imp('kernels_pb')"
    results["pybind11 (cppimport)"] = {"cold": python_seconds(cpp, cwd=cpp_dir), "warm": statistics.median(
        python_seconds(cpp, cwd=cpp_dir) for _ in range(5))}
    inline = ("from cffi import FFI\nffi = FFI()\nffi.cdef('double add(double, double);')\n"
              f"lib = ffi.dlopen({str(work.plain_lib)!r})")
    results["cffi ABI mode, in-line cdef"] = {"warm": statistics.median(python_seconds(inline) for _ in range(5))}
    results["ctypes"] = {"warm": statistics.median(python_seconds(
        f"import ctypes\nlib = ctypes.CDLL({str(work.plain_lib)!r})") for _ in range(5))}
    return results


def measure_unrelated_imports() -> dict[str, float]:
    """Microseconds an import spends finding a module, without and with nativeimport installed.

    One process, interleaved rounds (installed, uninstalled, ...) and medians, so the machine's
    drift does not land on one side. Run from a directory nobody writes to, as a project folder
    is between edits: a directory changed in the last two seconds costs the finder a few more stats.
    """
    code = textwrap.dedent("""
        import statistics, sys, time
        import nativeimport
        names = ["colorsys", "this_module_does_not_exist", "wave", "no_such_thing_either"]
        laps = {(name, on): [] for name in names for on in (False, True)}
        for round_ in range(20):
            for on in (round_ % 2 == 0, round_ % 2 == 1):
                nativeimport.install() if on else nativeimport.uninstall()
                for name in names:
                    for _ in range(300):
                        t = time.perf_counter()
                        for finder in sys.meta_path:
                            if finder.find_spec(name, None) is not None:
                                break
                        laps[name, on].append(time.perf_counter() - t)
        print({name: [statistics.median(laps[name, on]) * 1e6 for on in (False, True)] for name in names})
    """)
    with tempfile.TemporaryDirectory(prefix="nativeimport-quiet-") as quiet:
        time.sleep(2.5)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=quiet)
    measured: dict[str, list[float]] = eval(done.stdout)
    return {f"{name} ({'found by Python' if name in ('colorsys', 'wave') else 'not found'}; "
            f"Python's finders alone: {without:.1f} µs)": round(with_ - without, 2)
            for name, (without, with_) in measured.items()}


def render(calls: dict[str, dict[str, float]], record_calls: dict[str, dict[str, float]],
           imports: dict[str, dict[str, float]], unrelated: dict[str, float], machine: str) -> str:
    lines = [f"Measured {machine}.", "", "### Calls: ns per call (ratio to the hand-written extension)", ""]
    tools_ = list(next(iter(calls.values())))
    lines.append("| tool | " + " | ".join(calls) + " |")
    lines.append("| --- |" + " --- |" * len(calls))
    for tool in tools_:
        cells = []
        for case in calls:
            base = calls[case]["hand-written METH_FASTCALL"]
            cells.append(f"{calls[case][tool]:.0f} ({calls[case][tool] / base:.2f}x)")
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    lines += ["", records.render(record_calls).rstrip("\n")]
    lines += ["", "### Imports: ms in a fresh interpreter (cold: nothing built yet; warm: built before)", "",
              "| what | cold | warm |", "| --- | --- | --- |"]
    for name, times in imports.items():
        cold = f"{times['cold'] * 1000:.1f}" if "cold" in times else "-"
        warm = f"{times['warm'] * 1000:.2f}" if "warm" in times else "-"
        lines.append(f"| {name} | {cold} | {warm} |")
    lines += ["", "### An import nativeimport does not serve: extra µs spent finding it", "",
              "| import | extra µs |", "| --- | --- |"]
    lines += [f"| {name} | {value:.2f} |" for name, value in unrelated.items()]
    return "\n".join(lines) + "\n"


def chart(calls: dict[str, dict[str, float]], record_calls: dict[str, dict[str, float]], builds: dict[str, Any],
          path: Path, machine: str) -> None:
    """One panel per case: the scalar and buffer calls, the records' calls, then the build times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 5
    record_rows = -(-len(record_calls) // columns)
    build_panels: list[tuple[str, dict[str, float], str]] = []
    if builds["cold_edit"]:
        edit = {"gcc -g -O2 -shared alone": next(iter(builds["cold_edit"].values()))["gcc"] * 1000}
        edit.update({f"nativeimport, {wrapper}": row["import"] * 1000 for wrapper, row in builds["cold_edit"].items()})
        build_panels.append(("a new small module: built, bound, first call", edit, "ms"))
    for count in dict.fromkeys(name.split()[0] for name in builds["many_exports"]):
        rows = {name.split()[1]: row for name, row in builds["many_exports"].items() if name.split()[0] == count}
        many = {"gcc -g -O2 -shared alone": statistics.median(row["gcc"] for row in rows.values())}
        many.update({f"nativeimport.build, {wrapper}": row["total"] for wrapper, row in rows.items()})
        build_panels.append((f"{int(count):,} exports: build", many, "s"))
    heights = [1, record_rows] + ([1] if build_panels else [])
    figure = plt.figure(figsize=(4.0 * columns, 3.4 * sum(heights) + 0.8), layout="constrained")
    figures: Any = figure.subfigures(len(heights), 1, height_ratios=heights)  # an array: two rows at least
    panels = [(axis, case, calls[case], "ns per call") for axis, case in
              zip(figures[0].subplots(1, len(calls), sharey=True), calls)]
    grid = figures[1].subplots(record_rows, columns, sharey=True, squeeze=False).flatten()
    panels += [(axis, case, record_calls[case], "ns per call") for axis, case in zip(grid, record_calls)]
    for axis in grid[len(record_calls):]:
        axis.set_visible(False)
    if build_panels:
        axes = figures[2].subplots(1, columns, squeeze=False).flatten()
        panels += [(axis, title, row, unit) for axis, (title, row, unit) in zip(axes, build_panels)]
        for axis in axes[len(build_panels):]:
            axis.set_visible(False)
        figures[2].suptitle("Build cost against bare gcc on the same file", fontsize=10)
    for axis, title, row, unit in panels:
        labels = list(row)
        values = [row[label] for label in labels]
        colors = ["#2b6cb0" if label.startswith(("nativeimport (fast", "nativeimport,", "nativeimport.build"))
                  else "#38a169" if label.startswith(("hand", "gcc")) else "#999999" for label in labels]
        axis.barh(labels, values, color=colors)
        axis.set_title(title if len(title) < 48 else title.replace(": ", ":\n", 1), fontsize=8)
        axis.set_xlabel(f"{unit} (lower is better)", fontsize=8)
        axis.tick_params(labelsize=7)
        if not axis.yaxis_inverted():  # the first tool on top; axes sharing y invert together
            axis.invert_yaxis()
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:.0f}" if value >= 10 else f" {value:.2f}", va="center", fontsize=7)
    figures[0].suptitle(f"Calling C from Python: {machine}", fontsize=10)
    figures[1].suptitle("Structs, a handle, a callback (ns per call of the Python function), a string", fontsize=10)
    figure.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--exports", type=int, nargs="*", default=[2000],
                        help="sources with this many exports for the build rows (`--exports 2000 20000` adds "
                             "20,000, which takes several minutes)")
    parser.add_argument("--pypy", help="a PyPy with nativeimport installed, for PyPy rows (run.py passes one)")
    args = parser.parse_args()
    machine = (f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
               f"{platform.python_implementation()} {platform.python_version()}, "
               f"{subprocess.run(['gcc', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
    with tempfile.TemporaryDirectory(prefix="nativeimport-bench-") as scratch:
        work = Workspace(Path(scratch))
        found = tools(work)
        calls = measure_calls(found, args.rounds)
        record_tools = records.tools(work.src, work.root, work.cache)
        record_calls = records.measure(record_tools, args.rounds)
        pypy = measure_pypy(args.pypy, work, found, record_tools, args.rounds) if args.pypy else None
        if pypy is not None:
            pypy_calls, pypy_records = pypy
            for case, ns in pypy_calls.items():
                calls[case][PYPY] = ns
            for case, ns in pypy_records.items():
                record_calls[case][PYPY] = ns
        imports = measure_imports(work)
    unrelated = measure_unrelated_imports()
    builds = build_cost.measure(args.exports, edit_rounds=7, wrappers=["wait", "background"])
    text = render(calls, record_calls, imports, unrelated, machine) + "\n" + build_cost.render(builds)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps({"machine": machine, "calls_ns": calls,
                                                       "record_calls_ns": record_calls, "imports_s": imports,
                                                       "unrelated_import_extra_us": unrelated,
                                                       "build_cost_s": builds}, indent=1))
    chart(calls, record_calls, builds, args.out / "results.png", machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
