"""Bad input gets a clear NativeImportError and leaves the cache consistent."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from stress_helpers import StressRunner, count

LOAD = """
    import json, nativeimport
    try:
        module = nativeimport.load({path!r})
        print(json.dumps(["ok", sorted(module.__all__)]))
    except nativeimport.NativeImportError as exc:
        print(json.dumps([type(exc).__name__, str(exc)]))
"""


def load(stress: StressRunner, path: str, **env: str) -> list[object]:
    return stress.json(LOAD.format(path=path), env=env)  # type: ignore[no-any-return]


def test_random_bytes(stress: StressRunner) -> None:
    generator = random.Random(1234)
    for round_ in range(5):
        (stress.project / f"noise{round_}.c").write_bytes(bytes(generator.randrange(256) for _ in range(4000)))
        kind, _ = load(stress, f"noise{round_}.c")
        assert kind == "CompileError"
        count("random-byte sources rejected")
    assert stress.entries() == []


def test_an_empty_file(stress: StressRunner) -> None:
    stress.write("empty.c", "")
    (stress.project / "blank.c").write_text("\n   \n")
    assert load(stress, "empty.c")[0] == "SourceError"
    assert load(stress, "blank.c")[0] == "SourceError"
    assert stress.entries() == []


def test_a_ten_megabyte_source(stress: StressRunner) -> None:
    values = ",".join(str(i % 251) for i in range(2_900_000))
    stress.write("huge.c", f"static const unsigned char table[] = {{{values}}};\n"
                           "unsigned char pick(unsigned long i) { return table[i % sizeof table]; }\n")
    assert (stress.project / "huge.c").stat().st_size > 10_000_000
    assert load(stress, "huge.c") == ["ok", ["pick"]]
    count("10 MB sources built")


def test_a_directory_and_a_symlink_loop(stress: StressRunner) -> None:
    (stress.project / "folder.c").mkdir()
    os.symlink("loop.c", stress.project / "loop.c")
    assert load(stress, "folder.c")[0] == "SourceError"
    assert load(stress, "loop.c")[0] == "SourceError"
    result = stress.json("""
        import json, nativeimport
        nativeimport.install()
        out = []
        for name in ("folder", "loop"):
            try:
                __import__(name)
            except ImportError as exc:
                out.append(type(exc).__name__)
        print(json.dumps(out))
    """)
    assert result == ["ModuleNotFoundError", "ModuleNotFoundError"]


def test_a_source_deleted_between_find_and_load(stress: StressRunner) -> None:
    stress.write("fleeting.c", "int f(void) { return 1; }\n")
    result = stress.json("""
        import importlib.util, json, os, nativeimport
        nativeimport.install()
        spec = importlib.util.find_spec("fleeting")
        os.remove(spec.origin)
        try:
            importlib.util.module_from_spec(spec).__spec__.loader.exec_module(importlib.util.module_from_spec(spec))
        except nativeimport.NativeImportError as exc:
            print(json.dumps([type(exc).__name__, str(exc)]))
    """)
    assert result[0] == "SourceError" and "no longer exists" in result[1]


def test_hostile_paths(stress: StressRunner) -> None:
    names = ["with space", "quo'te\"s", "ünïcødé", "$(touch pwned); rm -rf x | cat &"]
    for name in names:
        folder = stress.project / name
        folder.mkdir()
        (folder / "odd.c").write_text("#include \"odd.h\"\nint odd(void) { return ODD; }\n")
        (folder / "odd.h").write_text("#define ODD 3\n")
        assert load(stress, str(folder / "odd.c")) == ["ok", ["ODD", "odd"]]  # the header's constant too
        count("hostile paths built")
    assert not (stress.project / "pwned").exists(), "no shell ever ran"


@pytest.mark.skipif(shutil.which("chattr") is None or os.getuid() != 0, reason="needs root and chattr")
def test_a_read_only_cache_during_publish(stress: StressRunner) -> None:
    stress.write("frozen.c", "int f(void) { return 1; }\n")
    stress.cache.mkdir(mode=0o700)
    if subprocess.run(["chattr", "+i", str(stress.cache)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem does not support immutable directories")
    try:
        kind, message = load(stress, "frozen.c")
    finally:
        subprocess.run(["chattr", "-i", str(stress.cache)], check=True)
    assert kind == "CacheError" and "cannot write the build cache" in str(message)
    assert list(stress.cache.iterdir()) == []
    assert load(stress, "frozen.c") == ["ok", ["f"]]
    count("read-only caches reported")


def test_a_full_disk_during_the_build(stress: StressRunner, tmp_path: Path) -> None:
    stress.write("big.c", "int f(void) { return 1; }\n")
    result = stress.json("""
        import json, resource, signal, nativeimport
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a full disk: writes fail with an error
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        try:
            nativeimport.load("big.c")
            print(json.dumps("ok"))
        except nativeimport.NativeImportError as exc:
            print(json.dumps(type(exc).__name__))
    """)
    assert result in ("CompileError", "CacheError")
    assert stress.entries() == []
    assert load(stress, "big.c") == ["ok", ["f"]]
    count("full-disk builds reported")


