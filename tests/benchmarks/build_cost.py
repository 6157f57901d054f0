"""Build cost against bare gcc: a source with thousands of exports, and a new small module.

    python tests/benchmarks/build_cost.py [--exports 2000 20000] [--profile] [--json out.json]

Many exports: generates a C file with N exported functions (scalar, pointer and
struct signatures, each with a doc comment), times ``gcc -g -O2 -shared -fPIC``
on it alone, then ``nativeimport.build`` with an empty cache, split into its
steps (the compile, the DWARF interface read, the cffi binding's generation,
the fast wrapper's compile) by timing those functions in place.

Cold edit: a small module (a few scalar functions), a fresh source each time in
a cache already in use: built, bound and first call, in a fresh interpreter,
against gcc alone on the same file. Edit in one interpreter: the same, the
module saved and loaded again by the interpreter that loaded it before (a
notebook's kernel). Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

STEPS = {  # step name -> (module, function) timed in place
    "compile": ("nativeimport._build", "_compile_unraced"),
    "interface": ("nativeimport.dwarf", "read_interface"),
    "cffi generate": ("nativeimport._bind_cffi", "generate"),
    "fast wrapper": ("nativeimport._bind_fast", "FastBuild.finish"),
}


def many_exports_source(count: int) -> str:
    """C with ``count`` exports: a third scalar, a third buffer/string, a third struct by value/pointer."""
    lines = ["#include <stddef.h>", "#include <stdint.h>", "",
             "/* A point. */", "typedef struct { double x, y; } Pt;", ""]
    for i in range(count):
        kind = i % 6
        lines.append(f"/** Export number {i}. */")
        if kind == 0:
            lines.append(f"double f{i}(double a, double b) {{ return a * b + {i}; }}")
        elif kind == 1:
            lines.append(f"int64_t f{i}(int32_t a, uint8_t b) {{ return (int64_t)a + b + {i}; }}")
        elif kind == 2:
            lines.append(f"double f{i}(const double *xs, size_t n) {{ double s = {i}; "
                         "for (size_t k = 0; k < n; k++) s += xs[k]; return s; }")
        elif kind == 3:
            lines.append(f"size_t f{i}(const char *s) {{ size_t n = {i}; while (*s++) n++; return n; }}")
        elif kind == 4:
            lines.append(f"double f{i}(Pt p) {{ return p.x + p.y + {i}; }}")
        else:
            lines.append(f"void f{i}(Pt *p, double k) {{ p->x *= k; p->y += {i}; }}")
    return "\n".join(lines) + "\n"


SMALL_SOURCE = """\
#include <stdint.h>
/* Revision {rev}. */
double scale(double x, double k) {{ return x * k + {rev}; }}
int64_t add(int64_t a, int64_t b) {{ return a + b; }}
int32_t clamp(int32_t v, int32_t lo, int32_t hi) {{ return v < lo ? lo : v > hi ? hi : v; }}
"""


def children_cpu() -> float:
    """CPU seconds of the waited-for child processes so far (theirs and their waited-for children's).

    On a shared machine wall time moves with the other users' load (the same gcc run took 6 s and
    16 s within minutes); CPU time much less. A detached background compile is not counted.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# Idle before every timed run, gcc's and nativeimport's alike. A CPU left idle runs the next ~30 ms slower
# (here gcc took 27.5 ms after 0.2 s of idle against 22 ms right after another run): a measurement taken
# right after busy work (gcc after waiting for the wrapper) would be compared with one taken after a pause.
IDLE = 0.3


def gcc_seconds(source: Path, out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``gcc -g -O2 -shared -fPIC`` on ``source``."""
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run(["gcc", "-g", "-O2", "-shared", "-fPIC", "-o", str(out), str(source)], check=True)
    return time.perf_counter() - started, children_cpu() - cpu


def _timed(table: dict[str, float], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            table[name] = table.get(name, 0.0) + time.perf_counter() - started
    return wrapper


def instrument() -> dict[str, float]:
    """Wrap the steps of a build with timers; returns the table they add their seconds to."""
    import importlib

    table: dict[str, float] = {}
    for name, (module_name, attribute) in STEPS.items():
        module = importlib.import_module(module_name)
        owner: Any = module
        *path, last = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, last, _timed(table, name, getattr(owner, last)))
    return table


def build_in_process(source: Path, cache: Path, profile: Path | None, wrapper: str = "wait") -> dict[str, float]:
    """``nativeimport.build`` of ``source`` into the empty ``cache``; total and per-step seconds.

    ``wrapper="background"``: ``total`` is the time until the entry can be imported (bound through
    cffi), ``wrapper ready`` the time until the fast wrapper compiled in the background is in place.
    """
    os.environ["NATIVEIMPORT_CACHE_DIR"] = str(cache)
    import nativeimport
    from nativeimport._entry import FAST_FILE, fast_build_running

    if os.environ.get("BUILD_COST_O1_WRAPPERS"):  # --before: every wrapper at -O1, as before issue 18
        from nativeimport import _bind_fast

        _bind_fast.LARGE_WRAPPER = 1 << 62
    table = instrument()
    profiler = cProfile.Profile() if profile is not None else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    entry = nativeimport.build(source, wrapper=wrapper)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    table["total"] = time.perf_counter() - started
    if wrapper == "background":
        fast_build_running(str(entry), wait=3600)
        if (entry / FAST_FILE).exists():
            table["wrapper ready"] = time.perf_counter() - started
    return table


def many_exports(count: int, work: Path, profile: bool, wrapper: str) -> dict[str, float]:
    source = work / f"many{count}.c"
    source.write_text(many_exports_source(count), encoding="utf-8")
    gcc, gcc_cpu = gcc_seconds(source, work / f"libmany{count}.so")
    cpu = children_cpu()
    profile_path = work / f"many{count}.prof" if profile else None
    cache = work / f"cache{count}-{wrapper}"
    # A child process: the build's own memory and imports are not this one's
    script = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import build_cost; "
              "print(json.dumps(build_cost.build_in_process(Path(sys.argv[2]), Path(sys.argv[3]), "
              "None if sys.argv[4] == '-' else Path(sys.argv[4]), sys.argv[5])))")
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), str(source),
                           str(cache), str(profile_path or "-"), wrapper],
                          capture_output=True, text=True, cwd=tempfile.gettempdir(), env=_with_bytecode())
    cpu = children_cpu() - cpu
    shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"build of {count} exports failed:\n{done.stderr[-4000:]}")
    steps: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if profile_path is not None:
        stats = pstats.Stats(str(profile_path))
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(20)
    return {"gcc": gcc, "gcc cpu": gcc_cpu, "cpu": cpu, **steps}


def _with_bytecode() -> dict[str, str]:
    """The environment, without PYTHONDONTWRITEBYTECODE: a user's modules import from their .pyc."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def python_seconds(code: str, env: dict[str, str], after: str = "") -> tuple[float, float]:
    """(wall time of ``code`` in a fresh interpreter, CPU of the whole process); ``after`` runs untimed
    (so a background compile does not overlap the next measurement)."""
    script = f"import time\n_t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)\n{after}\n"
    cpu = children_cpu()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**_with_bytecode(), **env}, cwd=tempfile.gettempdir())
    return float(done.stdout.strip().splitlines()[-1]), children_cpu() - cpu


def cold_edit(work: Path, rounds: int, env: dict[str, str] | None = None) -> dict[str, float]:
    """A new small module in a cache in use: import + first call, against gcc on the same file (medians)."""
    cache = work / f"edit-cache-{len(os.listdir(work))}"
    base = {"NATIVEIMPORT_CACHE_DIR": str(cache), **(env or {})}
    warmup = work / "edit_warm.c"
    warmup.write_text(SMALL_SOURCE.format(rev=0), encoding="utf-8")
    python_seconds(f"import nativeimport; m = nativeimport.load({str(warmup)!r})", base,
                   "nativeimport.wait_for_wrapper(m)")
    time.sleep(1.0)  # the prebuilt header and helpers the first build leaves compiling
    imports, gccs, import_cpus, gcc_cpus = [], [], [], []
    startup = statistics.median(python_seconds("pass", base)[1] for _ in range(3))  # the interpreter's own
    for rev in range(1, rounds + 1):
        source = work / f"edit_{rev}.c"
        source.write_text(SMALL_SOURCE.format(rev=rev), encoding="utf-8")
        time.sleep(IDLE)
        wall, cpu = gcc_seconds(source, work / f"libedit_{rev}.so")
        gccs.append(wall)
        gcc_cpus.append(cpu)
        # the CPU is the whole process's, wait_for_wrapper's polling included (not the detached compile's)
        time.sleep(IDLE)
        wall, cpu = python_seconds(f"import nativeimport; m = nativeimport.load({str(source)!r}); "
                                   "m.scale(2.0, 3.0)", base, "nativeimport.wait_for_wrapper(m)")
        imports.append(wall)
        import_cpus.append(cpu - startup)
    return {"gcc": statistics.median(gccs), "import": statistics.median(imports),
            "gcc cpu": statistics.median(gcc_cpus), "import cpu": statistics.median(import_cpus)}


# One interpreter (a Jupyter kernel, a long-lived script) editing one module: each round saves a new revision
# and loads it at once, then gcc alone compiles the same file; the wrapper is waited for between rounds, untimed;
# each timed run after the same idle (IDLE).
IN_PROCESS_EDITS = """
import json, statistics, subprocess, sys, time
import nativeimport
source, rounds, template, idle = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
nativeimport.wait_for_wrapper(nativeimport.load(source))  # revision 0: the folder's recipe, the prebuilt parts
time.sleep(1.0)
loads, gccs = [], []
for rev in range(1, rounds + 1):
    with open(source, "w") as stream:
        stream.write(template.format(rev=1000 + rev))
    started = time.perf_counter()
    module = nativeimport.load(source)
    module.scale(2.0, 3.0)
    loads.append(time.perf_counter() - started)
    nativeimport.wait_for_wrapper(module)
    time.sleep(idle)
    started = time.perf_counter()
    subprocess.run(["gcc", "-g", "-O2", "-shared", "-fPIC", "-o", source + ".so", source], check=True)
    gccs.append(time.perf_counter() - started)
    time.sleep(idle)
print(json.dumps({"import": statistics.median(loads), "gcc": statistics.median(gccs)}))
"""


def edits_in_process(work: Path, rounds: int, env: dict[str, str]) -> dict[str, float]:
    """An edited module reloaded in the interpreter that imported it before (medians)."""
    cache = work / f"edit-cache-{len(os.listdir(work))}"
    source = work / "kernel_edit.c"
    source.write_text(SMALL_SOURCE.format(rev=0), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", IN_PROCESS_EDITS, str(source), str(rounds), SMALL_SOURCE, str(IDLE)],
                          capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
                          env={**_with_bytecode(), "NATIVEIMPORT_CACHE_DIR": str(cache), **env})
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(exports: list[int], edit_rounds: int, wrappers: list[str], profile: bool = False) -> dict[str, Any]:
    """Both measurements, for bench.py and for this script."""
    results: dict[str, Any] = {"cold_edit": {}, "edit_in_process": {}, "many_exports": {}}
    with tempfile.TemporaryDirectory(prefix="ni-build-cost-") as scratch:
        work = Path(scratch)
        for wrapper in wrappers if edit_rounds else ():
            results["cold_edit"][wrapper] = edit = cold_edit(work, edit_rounds, {"NATIVEIMPORT_WRAPPER": wrapper})
            print(f"cold edit, wrapper={wrapper}: gcc {edit['gcc'] * 1000:.0f} ms, nativeimport import+call "
                  f"{edit['import'] * 1000:.0f} ms ({edit['import'] / edit['gcc']:.2f}x); CPU: gcc "
                  f"{edit['gcc cpu'] * 1000:.0f} ms, nativeimport {edit['import cpu'] * 1000:.0f} ms", flush=True)
            results["edit_in_process"][wrapper] = edit = edits_in_process(work, edit_rounds,
                                                                          {"NATIVEIMPORT_WRAPPER": wrapper})
            print(f"edit in one interpreter, wrapper={wrapper}: gcc {edit['gcc'] * 1000:.0f} ms, nativeimport "
                  f"load+call {edit['import'] * 1000:.0f} ms ({edit['import'] / edit['gcc']:.2f}x)", flush=True)
        for count in exports:
            for wrapper in wrappers:
                row = many_exports(count, work, profile, wrapper)
                results["many_exports"][f"{count} {wrapper}"] = row
                steps = ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k not in ("gcc", "total"))  # CPU too
                print(f"{count} exports, wrapper={wrapper}: gcc {row['gcc']:.2f} s, nativeimport.build "
                      f"{row['total']:.2f} s ({row['total'] / row['gcc']:.2f}x); {steps}", flush=True)
    return results


def render(results: dict[str, Any]) -> str:
    """The markdown tables of :func:`measure`'s results."""
    lines = ["### A new small module: built, bound and first call, ms in a fresh interpreter (median)", "",
             "| NATIVEIMPORT_WRAPPER | gcc -g -O2 -shared alone | nativeimport | ratio | CPU: gcc | CPU: nativeimport |",
             "| --- | --- | --- | --- | --- | --- |"]
    for wrapper, edit in results["cold_edit"].items():
        lines.append(f"| {wrapper} | {edit['gcc'] * 1000:.0f} | {edit['import'] * 1000:.0f} | "
                     f"{edit['import'] / edit['gcc']:.2f}x | {edit['gcc cpu'] * 1000:.0f} | "
                     f"{edit['import cpu'] * 1000:.0f} ({edit['import cpu'] / edit['gcc cpu']:.2f}x) |")
    lines += ["", "### An edited module loaded again in the interpreter that loaded it (a notebook's kernel), ms "
              "(median)", "", "| NATIVEIMPORT_WRAPPER | gcc -g -O2 -shared alone | nativeimport | ratio |",
              "| --- | --- | --- | --- |"]
    for wrapper, edit in results.get("edit_in_process", {}).items():
        lines.append(f"| {wrapper} | {edit['gcc'] * 1000:.0f} | {edit['import'] * 1000:.0f} | "
                     f"{edit['import'] / edit['gcc']:.2f}x |")
    lines += ["", "### Many exports: `nativeimport.build`, s (steps: the compile, the interface read, the cffi "
              "binding, waiting for the fast wrapper)", "",
              "| exports | NATIVEIMPORT_WRAPPER | gcc -g -O2 -shared alone | nativeimport.build | ratio | compile | "
              "interface | cffi | wrapper wait | wrapper ready | CPU: gcc | CPU: build |", "| --- |" + " --- |" * 11]
    for name, row in results["many_exports"].items():
        count, wrapper = name.split()
        cells = [f"{row[k]:.2f}" if k in row else "-"
                 for k in ("compile", "interface", "cffi generate", "fast wrapper", "wrapper ready")]
        lines.append(f"| {count} | {wrapper} | {row['gcc']:.2f} | {row['total']:.2f} | {row['total'] / row['gcc']:.2f}x | "
                     + " | ".join(cells) + f" | {row['gcc cpu']:.2f} | {row['cpu']:.2f} "
                     f"({row['cpu'] / row['gcc cpu']:.2f}x) |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exports", type=int, nargs="*", default=[2000, 20000])
    parser.add_argument("--edit-rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--wrapper", nargs="*", default=["wait", "background"], choices=["wait", "background"],
                        help="build with the fast wrapper compiled before build() returns, or in the background")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--before", action="store_true",
                        help="the behaviour before issue 18: the import waits, every wrapper compiles at -O1")
    args = parser.parse_args()
    if args.before:
        os.environ["BUILD_COST_O1_WRAPPERS"] = "1"
        args.wrapper = ["wait"]
    results = measure(args.exports, args.edit_rounds, args.wrapper, args.profile)
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
