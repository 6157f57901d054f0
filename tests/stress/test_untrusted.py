"""A cache others could write to is never used; entries are private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from stress_helpers import StressRunner, count

IMPORT = """
    import json, warnings, nativeimport
    nativeimport.install()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import safe
    print(json.dumps([safe.one(), [str(w.message) for w in caught]]))
"""


def test_a_world_writable_cache_is_refused(stress: StressRunner, tmp_path: Path) -> None:
    stress.write("safe.c", "int one(void) { return 1; }\n")
    stress.cache.mkdir(mode=0o700)
    os.chmod(stress.cache, 0o777)
    value, messages = stress.json(IMPORT, env={"TMPDIR": str(tmp_path)})
    assert value == 1
    assert any("writable by group or others" in m for m in messages)
    assert not (stress.cache / "entries").exists(), "nothing was written into the shared cache"
    fallback = tmp_path / f"nativeimport-{os.getuid()}"
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
    count("unsafe caches refused")


@pytest.mark.skipif(os.getuid() != 0, reason="changing a directory's owner needs root")
def test_a_cache_owned_by_someone_else_is_refused(stress: StressRunner, tmp_path: Path) -> None:
    stress.write("safe.c", "int one(void) { return 1; }\n")
    stress.cache.mkdir(mode=0o700)
    os.chown(stress.cache, 65534, 65534)
    value, messages = stress.json(IMPORT, env={"TMPDIR": str(tmp_path)})
    assert value == 1
    assert any("owned by another user" in m for m in messages)
    count("unsafe caches refused")


def test_entries_are_private(stress: StressRunner) -> None:
    stress.write("safe.c", "int one(void) { return 1; }\n")
    value, messages = stress.json(IMPORT)
    assert (value, messages) == (1, [])
    assert stat.S_IMODE(stress.cache.stat().st_mode) == 0o700
    (entry,) = stress.entries()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o700
