"""The build cache's contents: the content index, per-key locks, staging and atomic publishing,
toolchain fingerprints, pruning and removal.

Where each of these lives on disk is :mod:`nativeimport._entry`'s to say;
this module asks it. Only a miss and the CLI import it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import _locks
from ._build_settings import config_of, table_digest
from ._entry import (
    MANIFEST_FILE,
    RECORD_DIRECTORIES,
    REMOVED_PREFIX,
    STAGING_PREFIX,
    EntryInfo,
    entry_dir,
    index_record,
    list_entries,
    lock_file,
    scratch_dir,
    staging_parent,
    toolchain_record,
)
from ._frozen import frozen
from ._log import QuietLogger
from ._records import (
    ABSENT,
    make_private_dirs,
    new_private_directory,
    read_record,
    sha256,
    snapshot,
    stats_match,
    write_record,
)
from .errors import LockTimeout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from ._records import Snapshot
    from ._registry import DriverInfo
    from .settings import Settings

__all__ = ["Cache", "Dependency", "digest_file"]

log = QuietLogger("nativeimport")


def digest_file(path: Path) -> str:
    with open(path, "rb") as stream:
        return str(sha256(stream.read()).hexdigest())


@frozen
class Dependency:
    """A file a build read: its path (relative to the source's folder when inside it) and content digest."""

    path: str
    digest: str

    def locate(self, base: Path) -> Path:
        return Path(self.path) if os.path.isabs(self.path) else base / self.path


class Cache:
    """One cache root. Cheap to create; touches the disk only when asked."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- paths ------------------------------------------------------------
    def entry(self, key: str) -> Path:
        return Path(entry_dir(str(self.root), key))

    def scratch(self, name: str) -> Path:
        return Path(scratch_dir(str(self.root), name))

    # -- toolchain fingerprints -------------------------------------------
    def fingerprint(self, token: str, info: DriverInfo) -> tuple[str, Snapshot]:
        """The driver's fingerprint and its compiler's stat, remembered across processes while that stat holds.

        Finding and identifying the toolchain runs the compiler (``--version``);
        remembering both keeps any process off the path of a touched but
        unchanged source, and of every later build.
        """
        path = toolchain_record(str(self.root), _hash(token))
        remembered = _remembered_fingerprint(path, token)
        if remembered is not None:
            return remembered
        # Processes starting together (a node's workers) ask the compiler once: the others wait for its record.
        with self._lock_quietly(lock_file(str(self.root), f"toolchain-{_hash(token)}")):
            remembered = _remembered_fingerprint(path, token)
            if remembered is not None:
                return remembered
            driver = info.load()
            fingerprint = driver.fingerprint()
            stats = snapshot([driver.toolchain().path])
            write_record(path, {"token": token, "fingerprint": fingerprint, "stats": stats})
        return fingerprint, stats

    @contextlib.contextmanager
    def _lock_quietly(self, path: str) -> Iterator[None]:
        """A lock held for a moment (a ``--version``); after a minute's wait, go on without it."""
        make_private_dirs(os.path.dirname(path))
        descriptor = _locks.acquire(path, timeout=60)
        try:
            yield
        finally:
            if descriptor is not None:
                _locks.release(descriptor)

    # -- content index: builds of one source content ------------------------
    def match(self, source_key: str, base: Path) -> tuple[Optional[str], Snapshot]:
        """The entry whose dependencies all still have their recorded content, and their stats
        (each row followed by the content's digest).

        The stats are taken before the contents are hashed, so an edit racing
        with this check makes the next import look again rather than trust it.
        """
        record = read_record(index_record(str(self.root), source_key))
        for candidate in (record or {}).get("builds", []):
            deps = [Dependency(path, digest) for path, digest in candidate["dependencies"]]
            files = [dep.locate(base) for dep in deps]
            stats = snapshot([config_of(f) for f in files])
            unchanged = all((table_digest(f) or _digest_or_none(f) or ABSENT) == dep.digest
                            for f, dep in zip(files, deps))
            if unchanged and self.entry(candidate["key"]).is_dir():
                return str(candidate["key"]), [[*row, dep.digest] for row, dep in zip(stats, deps)]
        return None, []

    def add_build(self, source_key: str, dependencies: Sequence[Dependency], key: str) -> None:
        """Record a build of ``source_key`` (call while holding its lock)."""
        path = index_record(str(self.root), source_key)
        builds = [b for b in (read_record(path) or {}).get("builds", []) if b["key"] != key]
        builds.insert(0, {"key": key, "dependencies": [[d.path, d.digest] for d in dependencies]})
        write_record(path, {"builds": builds[:16]})

    # -- building -----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, source_key: str, settings: Settings, what: str) -> Iterator[None]:
        """Hold the build lock of one source content; log when waiting on another process."""
        path = lock_file(str(self.root), source_key)
        make_private_dirs(os.path.dirname(path))
        descriptor = _locks.acquire(path, timeout=0)
        if descriptor is None:
            log.info("waiting for another process building %s (lock %s)", what, path)
            descriptor = _locks.acquire(path, timeout=settings.lock_timeout)
            if descriptor is None:
                raise LockTimeout(
                    f"gave up after {settings.lock_timeout:g} s waiting for another process building {what} "
                    f"(lock file {path}); if no build is running, delete that file, or raise "
                    "NATIVEIMPORT_LOCK_TIMEOUT"
                )
        try:
            yield
        finally:
            _locks.release(descriptor)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private directory to build in; removed unless :meth:`publish` moved it."""
        parent = Path(staging_parent(str(self.root)))
        make_private_dirs(str(parent))
        self._remove_abandoned(parent)
        path = Path(new_private_directory(str(parent), f"{STAGING_PREFIX}{os.getpid()}-"))
        try:
            yield path
        finally:
            if os.path.lexists(path):  # not published
                _remove_tree(path)

    def publish(self, staging: Path, key: str) -> Path:
        """Move a complete build into place in one rename; readers never see half an entry."""
        target = self.entry(key)
        make_private_dirs(str(target.parent))
        _make_private(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            # An entry with this key already exists: it has the same content, keep it.
        return target

    def _remove_abandoned(self, parent: Path) -> None:
        # Builds whose process died (killed, crashed) leave a directory named after its pid, and a
        # removal interrupted leaves its renamed entry. Only names with our prefixes: the root may
        # be an older nativeimport's, adopted, whose tmp/ could hold anything.
        for child in parent.iterdir():
            for prefix in (STAGING_PREFIX, REMOVED_PREFIX):
                pid_text = child.name[len(prefix):].partition("-")[0] if child.name.startswith(prefix) else ""
                if pid_text.isdigit() and not _alive(int(pid_text)):
                    _remove_tree(child)

    # -- listing and clearing -------------------------------------------------
    def entries(self) -> list[EntryInfo]:
        return list_entries(str(self.root))

    def prune(self, older_than: Optional[float] = None, max_size: Optional[int] = None) -> list[EntryInfo]:
        """Remove damaged entries, those unused for ``older_than`` seconds, then the least recently
        used until the cache holds at most ``max_size`` bytes. Returns what was removed.

        Safe while other processes import: an entry is renamed away in one step, and an import
        that loses its entry that way builds it again.
        """
        now = time.time()
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        doomed = [e for e in entries if e.manifest is None
                  or (older_than is not None and now - e.last_used > older_than)]
        kept = [e for e in entries if e not in doomed]
        if max_size is not None:
            total = sum(e.size for e in kept)
            while kept and total > max_size:
                oldest = kept.pop(0)
                doomed.append(oldest)
                total -= oldest.size
        for entry in doomed:
            self.remove(entry.key)
        return doomed

    def remove(self, key: str) -> None:
        """Delete one entry (renamed aside first, so no reader sees it half gone)."""
        target = self.entry(key)
        doomed = Path(staging_parent(str(self.root)), f"{REMOVED_PREFIX}{os.getpid()}-{key}-{time.monotonic_ns()}")
        make_private_dirs(str(doomed.parent))
        try:
            os.replace(target, doomed)
        except FileNotFoundError:
            return
        _remove_tree(doomed)

    def clear_records(self) -> None:
        """Forget every index, freshness and toolchain record (after removing every entry)."""
        for name in RECORD_DIRECTORIES:
            _remove_tree(self.root / name)

    def write_manifest(self, staging: Path, manifest: dict[str, Any]) -> None:
        write_record(staging / MANIFEST_FILE, manifest)


def _remembered_fingerprint(path: str, token: str) -> Optional[tuple[str, Snapshot]]:
    record = read_record(path)
    if record is not None and record.get("token") == token and stats_match(record["stats"]):
        return str(record["fingerprint"]), [list(row) for row in record["stats"]]
    return None


def _hash(text: str) -> str:
    return str(sha256(text.encode("utf-8", "surrogateescape")).hexdigest())[:40]


def _digest_or_none(path: Path) -> Optional[str]:
    try:
        return digest_file(path)
    except OSError:
        return None


def _remove_tree(path: Path) -> None:
    import shutil  # not on a new module's import, which removes nothing (bz2, lzma, fnmatch: ~1.5 ms)

    shutil.rmtree(path, ignore_errors=True)


def _make_private(tree: Path) -> None:
    """Take every permission from group and others in ``tree``, whatever the umask made.

    The compiler and Python's writers create files ``0666 & ~umask``; under
    ``umask 0`` another user could rewrite a library before it is loaded.
    """
    for directory, _, files in os.walk(tree):
        os.chmod(directory, 0o700)
        for name in files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if mode & 0o077 and not os.path.islink(path):
                os.chmod(path, mode & 0o700)


def _alive(pid: int) -> bool:
    if pid == 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
