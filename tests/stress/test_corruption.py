"""A damaged cache entry is detected at load, evicted and rebuilt once; the interpreter never crashes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from stress_helpers import StressRunner, count

SOURCE = "/* Doubles. */\nint twice(int v) { return 2 * v; }\n"
IMPORT = "import json, nativeimport; nativeimport.install(); import sturdy; print(json.dumps(sturdy.twice(21)))"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])


def garbage(path: Path) -> None:
    path.write_bytes(b"\x7fELF" + bytes(range(256)) * 8)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated library": lambda entry: truncate(entry / "library.so"),
    "overwritten library": lambda entry: garbage(entry / "library.so"),
    "deleted library": lambda entry: (entry / "library.so").unlink(),
    "truncated cffi binding": lambda entry: truncate(entry / "binding_cffi.py"),
    "overwritten cffi binding": lambda entry: (entry / "binding_cffi.py").write_text("this is not python ("),
    "damaged compiled binding": lambda entry: [garbage(p) for p in entry.glob("binding_*.*.code")],
    "truncated fast wrapper": lambda entry: [truncate(p) for p in entry.glob("fast.*.so")],
    "deleted fast wrapper": lambda entry: [p.unlink() for p in entry.glob("fast.*.so")],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entries_are_rebuilt(stress: StressRunner, damage: str) -> None:
    stress.write("sturdy.c", SOURCE)
    assert stress.json(IMPORT) == 42
    (entry,) = stress.entries()
    DAMAGE[damage](entry)
    done = stress.run(IMPORT)
    assert json.loads(done.stdout) == 42, done.stderr
    assert done.returncode == 0
    assert stress.json(IMPORT) == 42
    count("damaged entries recovered")


def test_a_damaged_manifest_is_listed_and_pruned(stress: StressRunner) -> None:
    stress.write("sturdy.c", SOURCE)
    assert stress.json(IMPORT) == 42
    (entry,) = stress.entries()
    (entry / "manifest.json").write_text("{ not json")
    assert stress.json(IMPORT) == 42, "loading never needs the manifest"
    rows = json.loads(stress.cli("cache", "list", "--json").stdout)
    assert [r["damaged"] for r in rows] == [True]
    assert "removed 1" in stress.cli("cache", "prune", "--yes").stdout
    assert stress.entries() == []
    assert stress.json(IMPORT) == 42
    count("damaged manifests pruned")


def test_pruning_while_another_process_imports(stress: StressRunner) -> None:
    # A fixed number of prunes runs while the other process reloads in a loop until told to stop: the
    # property (every reload works) is checked however fast either side runs.
    stress.write("sturdy.c", SOURCE)
    assert stress.json(IMPORT) == 42
    ready, stop = stress.project / "ready", stress.project / "stop"
    loop = stress.script("loop.py", f"""
        import importlib, json, os, sys, nativeimport
        nativeimport.install()
        import sturdy
        open({str(ready)!r}, "w").close()
        results = []
        while not results or not os.path.exists({str(stop)!r}):
            importlib.reload(sturdy)
            results.append(sturdy.twice(21))
        print(json.dumps(sorted(set(results)) + [len(results)]))
    """)
    import subprocess
    import sys
    import time

    importer = subprocess.Popen([sys.executable, str(loop)], cwd=stress.project, env=stress.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and importer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        prunes = 0
        while prunes < 8 and importer.poll() is None:
            stress.cli("cache", "prune", "--max-size", "0", "--yes")
            prunes += 1
        stop.touch()
        out, err = importer.communicate(timeout=120)
    finally:
        importer.kill()
    assert importer.returncode == 0, err
    distinct, reloads = json.loads(out)[:-1], json.loads(out)[-1]
    assert distinct == [42] and reloads >= 1
    assert prunes == 8
    count("prunes of the whole cache while another process imported", prunes)
