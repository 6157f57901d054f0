"""Native objects cross process boundaries by content: pickle, multiprocessing, joblib, cache export/import.

Each scenario runs in fresh interpreters with private caches; a receiving
process has no ``install()`` and no source on ``sys.path``. Every subprocess
has a timeout, so a hang fails the test.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers import Runner

MYMATH = """
    #include <stdint.h>
    #include <stddef.h>

    typedef enum { RED = 1, GREEN = 2 } colour;
    struct point { double x; double y; };

    int64_t add(int64_t a, int64_t b) { return a + b; }
    void scale(double *xs, size_t n, double k) { for (size_t i = 0; i < n; i++) xs[i] *= k; }
    struct point moved(struct point p, double dx) { p.x += dx; return p; }
    double norm1(const struct point *p) { return p->x + p->y; }
    colour next_colour(colour c) { return c == RED ? GREEN : RED; }
    static struct point the_origin;
    struct point *origin(void) { return &the_origin; }
"""

TIMEOUT = 180


def run(runner: Runner, code: str, *, env: dict[str, str] | None = None, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a script with a timeout (a hang fails) from ``cwd`` (default: a folder without the source)."""
    import textwrap

    folder = cwd or runner.project.parent / "elsewhere"
    folder.mkdir(exist_ok=True)
    script = folder / "_script.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=folder, env={**runner.env, **(env or {})},
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"script failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def last_json(done: subprocess.CompletedProcess[str]) -> object:
    return json.loads(done.stdout.strip().splitlines()[-1])


def no_compiler(tmp_path: Path, cache: Path) -> dict[str, str]:
    """A receiver's environment: its own cache, no compiler on PATH, and CC a compiler that always fails."""
    bare = tmp_path / "bare-bin"
    bare.mkdir(exist_ok=True)
    return {"NATIVEIMPORT_CACHE_DIR": str(cache), "CC": "/bin/false", "PATH": str(bare)}


@pytest.fixture
def sender(runner: Runner) -> Runner:
    runner.write("mymath.c", MYMATH)
    return runner


def pickle_objects(runner: Runner, target: Path) -> str:
    """Build mymath in the sender's cache and pickle its objects into ``target``; the entry's key."""
    done = run(runner, f"""
        import pickle, nativeimport
        nativeimport.install()
        import mymath
        p = mymath.point(1.5, 2.0)
        objects = [mymath.add, mymath.scale, mymath, mymath.point, p, mymath.colour, mymath.GREEN,
                   mymath.colour.RED, mymath.next_colour]
        with open({str(target)!r}, "wb") as stream:
            pickle.dump(objects, stream)
        print(mymath.__native_key__)
    """, cwd=runner.project)
    return done.stdout.strip().splitlines()[-1]


RECEIVE = """
    import json, pickle, sys, array
    with open({target!r}, "rb") as stream:
        add, scale, mod, point, p, colour, green, red, next_colour = pickle.load(stream)
    xs = array.array("d", [1.0, 2.0])
    scale(xs, 2, 3.0)
    print(json.dumps({{"add": add(2, 40), "xs": list(xs), "p": [p.x, p.y], "isinstance": isinstance(p, point),
                      "norm1": mod.norm1(p), "moved": mod.moved(p, 1.0).x, "green": int(green),
                      "red": repr(red), "next": int(next_colour(red)), "colour": colour.__name__,
                      "same": add is mod.add, "in_sys_modules": sys.modules.get("mymath") is mod}}))
"""


def test_pickles_resolve_from_the_local_cache_without_a_toolchain(sender: Runner, tmp_path: Path) -> None:
    target = tmp_path / "objects.pickle"
    key = pickle_objects(sender, target)
    entries = sender.entries()
    environment = no_compiler(tmp_path, sender.cache)
    result = last_json(run(sender, RECEIVE.format(target=str(target)), env=environment))
    assert result == {"add": 42, "xs": [3.0, 6.0], "p": [1.5, 2.0], "isinstance": True, "norm1": 3.5,
                      "moved": 2.5, "green": 2, "red": "<colour.RED: 1>", "next": 2,
                      "colour": "colour", "same": True, "in_sys_modules": True}
    assert sender.entries() == entries and entries[0].name == key  # found by key: nothing built


def test_cffi_served_functions_and_enum_classes_pickle_by_key_with_cloudpickle(sender: Runner,
                                                                              tmp_path: Path) -> None:
    pytest.importorskip("cloudpickle")
    target = tmp_path / "cloud.pickle"
    run(sender, f"""
        import cloudpickle, nativeimport
        nativeimport.install()
        import mymath
        with open({str(target)!r}, "wb") as stream:
            cloudpickle.dump([mymath.moved, mymath.norm1, mymath.colour], stream)
    """, cwd=sender.project)
    result = last_json(run(sender, f"""
        import json, pickle
        with open({str(target)!r}, "rb") as stream:
            moved, norm1, colour = pickle.load(stream)
        print(json.dumps([moved({{"x": 1.0, "y": 2.0}}, 1.0).x, norm1(moved({{"x": 1.0, "y": 2.0}}, 1.0)),
                          repr(colour(2)), moved.__name__]))
    """, env=no_compiler(tmp_path, sender.cache)))
    assert result == [2.0, 4.0, "<colour.GREEN: 2>", "moved"]


def test_pickles_build_from_the_carried_source_where_a_compiler_is(sender: Runner, tmp_path: Path) -> None:
    target = tmp_path / "objects.pickle"
    pickle_objects(sender, target)
    other = tmp_path / "other-cache"
    result = last_json(run(sender, RECEIVE.format(target=str(target)), env={"NATIVEIMPORT_CACHE_DIR": str(other)}))
    assert result["add"] == 42 and result["moved"] == 2.5 and result["red"] == "<colour.RED: 1>"
    assert len(list((other / "entries").iterdir())) == 1


def test_without_cache_entry_or_compiler_unpickling_succeeds_and_the_call_explains(sender: Runner,
                                                                                  tmp_path: Path) -> None:
    target = tmp_path / "objects.pickle"
    key = pickle_objects(sender, target)
    result = last_json(run(sender, f"""
        import json, pickle, nativeimport
        with open({str(target)!r}, "rb") as stream:
            add, scale, mod, point, p, colour, green, red, next_colour = pickle.load(stream)
        try:
            add(1, 2)
        except nativeimport.NativeImportError as exc:
            message = str(exc)
        print(json.dumps({{"message": message, "green": green, "again": len(pickle.dumps(add)) > 0}}))
    """, env=no_compiler(tmp_path, tmp_path / "empty-cache")))
    message = str(result["message"])  # type: ignore[index]
    assert key in message and "mymath.add" in message
    assert "nativeimport.dask.NativeModules(mymath)" in message and "nativeimport cache import" in message
    assert result["green"] == 2 and result["again"] is True  # type: ignore[index]


def test_a_module_from_load_pickles_and_builds_where_its_source_is_not(runner: Runner, tmp_path: Path) -> None:
    source = tmp_path / "private" / "scaled.c"
    source.parent.mkdir()
    source.write_text('#include "factor.h"\ndouble scaled(double x) { return x * FACTOR; }\n')
    (source.parent / "factor.h").write_text("#define FACTOR 3.0\n")
    target = tmp_path / "load.pickle"
    run(runner, f"""
        import pickle, nativeimport
        module = nativeimport.load({str(source)!r}, name="scaled_mod")
        with open({str(target)!r}, "wb") as stream:
            pickle.dump(module.scaled, stream)
    """)
    result = last_json(run(runner, f"""
        import json, pickle
        with open({str(target)!r}, "rb") as stream:
            scaled = pickle.load(stream)
        print(json.dumps(scaled(2.0)))
    """, env={"NATIVEIMPORT_CACHE_DIR": str(tmp_path / "receiver")}))
    assert result == 6.0  # built here from the carried source and its header


def test_an_entry_bound_into_two_modules_pickles_by_content_from_either(sender: Runner, tmp_path: Path) -> None:
    target = tmp_path / "two.pickle"
    run(sender, f"""
        import pickle, nativeimport
        nativeimport.install()
        import mymath
        other = nativeimport.load("mymath.c", name="other")
        assert other.__native_key__ == mymath.__native_key__
        with open({str(target)!r}, "wb") as stream:
            pickle.dump([mymath.add, other.add, other.point(1.0, 2.0)], stream)
    """, cwd=sender.project)
    result = last_json(run(sender, f"""
        import json, pickle, sys
        with open({str(target)!r}, "rb") as stream:
            first, second, point = pickle.load(stream)
        print(json.dumps([first(1, 2), second(3, 4), first.__module__, second.__module__, point.y,
                          sorted(n for n in ("mymath", "other") if n in sys.modules)]))
    """, env=no_compiler(tmp_path, sender.cache)))
    # Both found by content; the receiver binds the entry once and serves both references with it.
    assert result == [3, 7, "mymath", "mymath", 2.0, ["mymath"]]


def test_pointers_are_refused_with_what_to_send_instead(sender: Runner) -> None:
    result = last_json(run(sender, """
        import json, pickle, nativeimport
        nativeimport.install()
        import mymath
        refused = []
        for value in (mymath.__ffi__.NULL, mymath.__ffi__.new("double[4]"), mymath.origin()):
            try:
                pickle.dumps(value)
            except TypeError as exc:
                refused.append(str(exc))
        print(json.dumps(refused))
    """, cwd=sender.project))
    assert len(result) == 3  # type: ignore[arg-type]
    null, array, returned = result  # type: ignore[misc]
    assert all("pointer into this process's memory" in m and "send the data instead" in m for m in (null, array))
    assert "points into this process's memory" in returned and "mymath.point(p.x, p.y)" in returned


def test_a_function_held_across_a_reload_still_pickles(sender: Runner, tmp_path: Path) -> None:
    result = last_json(run(sender, """
        import importlib, json, os, pickle, time, nativeimport
        nativeimport.install()
        import mymath
        old = mymath.add
        time.sleep(0.01)
        with open("mymath.c", "a") as stream:
            stream.write("int64_t sub(int64_t a, int64_t b) { return a - b; }\\n")
        importlib.reload(mymath)
        data = pickle.dumps(old)
        print(json.dumps([pickle.loads(data) is old, mymath.sub(5, 3)]))
    """, cwd=sender.project))
    assert result == [True, 2]


POOL_SCRIPT = """
    import json, multiprocessing, sys
    from concurrent.futures import ProcessPoolExecutor

    if __name__ == "__main__":
        import nativeimport
        nativeimport.install()
        import mymath
        context = multiprocessing.get_context({method!r})
        # Functions the cffi binder serves (struct arguments) first: nothing else has told the workers of mymath.
        with context.Pool(2) as pool:
            points = pool.map(mymath.norm1, [mymath.point(i, 1.0) for i in range(3)])
            pooled = pool.starmap(mymath.add, [(i, 10 * i) for i in range(6)])
        with ProcessPoolExecutor(2, mp_context=context) as executor:
            moved = executor.submit(mymath.moved, mymath.point(1.0, 2.0), 0.5).result()
            executed = list(executor.map(mymath.add, range(4), range(4)))
        print(json.dumps([pooled, points, executed, [moved.x, moved.y]]))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_multiprocessing_with_install_under_the_main_guard(sender: Runner, method: str) -> None:
    result = last_json(run(sender, POOL_SCRIPT.format(method=method), cwd=sender.project))
    assert result == [[0, 11, 22, 33, 44, 55], [1.0, 2.0, 3.0], [0, 2, 4, 6], [1.5, 2.0]]


def test_joblib_with_install_under_the_main_guard(sender: Runner) -> None:
    pytest.importorskip("joblib")
    result = last_json(run(sender, """
        import json
        from joblib import Parallel, delayed

        if __name__ == "__main__":
            import nativeimport
            nativeimport.install()
            import mymath
            p = Parallel(n_jobs=2)(delayed(mymath.moved)(mymath.point(i, 0.0), 1.0) for i in range(2))
            sums = Parallel(n_jobs=2)(delayed(mymath.add)(i, i) for i in range(5))
            print(json.dumps([sums, [q.x for q in p]]))
    """, cwd=sender.project))
    assert result == [[0, 2, 4, 6, 8], [1.0, 2.0]]


def test_cache_export_and_import_serve_a_machine_without_a_compiler(sender: Runner, tmp_path: Path) -> None:
    target = tmp_path / "objects.pickle"
    key = pickle_objects(sender, target)
    archive = tmp_path / "mymath.nativeimport"
    sender.cli("cache", "export", key[:12], "-o", str(archive))
    other = tmp_path / "air-gapped"
    environment = no_compiler(tmp_path, other)
    done = subprocess.run([sys.executable, "-m", "nativeimport", "cache", "import", str(archive)],
                          env={**sender.env, **environment}, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (other / "entries").iterdir()] == [key]
    result = last_json(run(sender, RECEIVE.format(target=str(target)), env=environment))
    assert result["add"] == 42 and result["moved"] == 2.5


def _rewrite(archive: Path, change: object) -> bytes:
    """The archive with its members passed through ``change(name, data) -> [(name, data, type)]``."""
    out = io.BytesIO()
    with tarfile.open(archive) as source, tarfile.open(fileobj=out, mode="w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            for name, content, kind in change(member.name, data):  # type: ignore[operator]
                info = tarfile.TarInfo(name)
                info.type = kind
                info.size = len(content) if kind == tarfile.REGTYPE else 0
                if kind == tarfile.SYMTYPE:
                    info.linkname = "/etc/passwd"
                target.addfile(info, io.BytesIO(content) if kind == tarfile.REGTYPE else None)
    return out.getvalue()


def test_a_tampered_archive_is_refused_and_nothing_is_written(sender: Runner, tmp_path: Path) -> None:
    key = pickle_objects(sender, tmp_path / "objects.pickle")
    archive = tmp_path / "good.nativeimport"
    sender.cli("cache", "export", "mymath", "-o", str(archive))
    regular = tarfile.REGTYPE
    variants = {
        "altered": lambda n, d: [(n, d[:-1] + bytes([d[-1] ^ 1]) if n.endswith("library.so") else d, regular)],
        "escape": lambda n, d: [(n, d, regular), ("entries/../../escaped.txt", b"x", regular)],
        "link": lambda n, d: [(n, d, regular), (f"entries/{key}/evil", b"", tarfile.SYMTYPE)],
        "unlisted": lambda n, d: [(n, d, regular), (f"entries/{key}/extra.so", b"x", regular)],
    }
    other = tmp_path / "receiver"
    for what, change in variants.items():
        bad = tmp_path / f"{what}.nativeimport"
        bad.write_bytes(_rewrite(archive, change))
        done = subprocess.run([sys.executable, "-m", "nativeimport", "cache", "import", str(bad)],
                              env={**sender.env, "NATIVEIMPORT_CACHE_DIR": str(other)}, capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert done.returncode == 1 and "refusing the archive" in done.stderr, (what, done.stderr)
        assert not (other / "entries").exists(), what
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
