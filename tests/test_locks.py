"""The build lock (nativeimport._locks, flock on a descriptor of its own): exclusion between processes and
between two holders in one process, a timeout, and release by the kernel when the holder dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nativeimport import _locks
from nativeimport._cache import Cache
from nativeimport.errors import LockTimeout
from nativeimport.settings import Settings

HOLD = """
import sys
from nativeimport import _locks
descriptor = _locks.acquire(sys.argv[1], timeout=5)
print("held" if descriptor is not None else "not held", flush=True)
sys.stdin.read()  # until the test closes our stdin or kills us
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"  # a child that failed prints nothing: no hang
    return process


def test_a_lock_another_process_holds_times_out_and_is_free_once_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    holder = _holder(path)
    try:
        assert _locks.acquire(str(path), timeout=0) is None
        assert _locks.acquire(str(path), timeout=0.2) is None  # waited, then gave up
    finally:
        holder.kill()  # no release: the kernel drops the lock with the process
        holder.wait()
    descriptor = _locks.acquire(str(path), timeout=0)
    assert descriptor is not None
    assert (path.stat().st_mode & 0o777) == 0o600
    _locks.release(descriptor)


def test_two_holders_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    path = str(tmp_path / "build.lock")
    first = _locks.acquire(path, timeout=0)
    assert first is not None
    assert _locks.acquire(path, timeout=0.05) is None
    _locks.release(first)
    second = _locks.acquire(path, timeout=0)
    assert second is not None
    _locks.release(second)


def test_the_build_lock_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    settings = Settings(lock_timeout=0.1)
    with cache.lock("somekey", settings, what="m (m.c)"), \
            pytest.raises(LockTimeout, match=r"waiting for another process building m \(m\.c\)"), \
            cache.lock("somekey", settings, what="m (m.c)"):
        pass
    with cache.lock("somekey", settings, what="m (m.c)"):  # released by the first holder
        pass
