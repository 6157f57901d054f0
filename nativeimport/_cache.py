"""The build cache: where entries live, how they are found, locked, published and listed.

Layout under the root::

    entries/<key>/        one finished build: manifest.json, library.so, bindings
    index/<source-key>.json   builds of one source content: their dependencies' digests
    fresh/<path-hash>.json    per source path: stats of the source and dependencies -> key
    toolchains/<hash>.json    a driver's fingerprint, valid while its compiler's stat holds
    locks/<source-key>.lock   one build per source content, across processes
    tmp/<pid>-<random>/       builds in progress; renamed into entries/ when complete
    scratch/<driver>/         toolchains' own caches (Zig's, Cargo's)

An entry's key hashes everything that went into it (see ``_loader``), never
its path, so a copied project reuses it and any interpreter can use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from .errors import CacheError, LockTimeout
from .settings import Settings

__all__ = ["CACHE_SCHEMA", "Cache", "Dependency", "EntryInfo", "Snapshot", "cache_root", "digest_file", "snapshot"]

CACHE_SCHEMA = 1
MANIFEST = "manifest.json"
log = logging.getLogger("nativeimport")


def cache_root(settings: Settings) -> Path:
    """The cache root, created private; an unsafe root is replaced by a private temporary one."""
    if settings.cache_dir is not None:
        root = settings.cache_dir
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("nativeimport", appauthor=False))
    problem = _unsafe(root)
    if problem is None:
        return root
    fallback = Path(tempfile.gettempdir(), f"nativeimport-{os.getuid()}")
    warnings.warn(f"nativeimport: not using cache {root}: {problem}; using {fallback} instead", RuntimeWarning,
                  stacklevel=3)
    fallback_problem = _unsafe(fallback)
    if fallback_problem is not None:
        raise CacheError(f"no safe cache directory: {root} {problem}, and {fallback} {fallback_problem}; "
                         "set NATIVEIMPORT_CACHE_DIR to a directory only you can write")
    return fallback


def _unsafe(root: Path) -> Optional[str]:
    """Why ``root`` must not be used (shared, foreign, not a directory), after creating it if missing."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = root.stat()
    except OSError as exc:
        return f"cannot be created ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "is writable by group or others"
    return None


def digest_file(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Dependency:
    """A file a build read: its path (relative to the source's folder when inside it) and content digest."""

    path: str
    digest: str

    def locate(self, base: Path) -> Path:
        return Path(self.path) if os.path.isabs(self.path) else base / self.path


@dataclasses.dataclass(frozen=True)
class EntryInfo:
    """One cache entry as the CLI shows it."""

    key: str
    path: Path
    manifest: dict[str, Any]
    size: int
    last_used: float


class Cache:
    """One cache root. Cheap to create; touches the disk only when asked."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- paths ------------------------------------------------------------
    def entry(self, key: str) -> Path:
        return self.root / "entries" / key

    def scratch(self, driver: str) -> Path:
        path = self.root / "scratch" / driver
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- small JSON records, written atomically ---------------------------
    def _read(self, path: Path) -> Optional[dict[str, Any]]:
        try:
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("schema") == CACHE_SCHEMA else None

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump({"schema": CACHE_SCHEMA, **data}, stream, indent=1)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    # -- toolchain fingerprints -------------------------------------------
    def remembered_fingerprint(self, token: str) -> Optional[str]:
        """A fingerprint stored under ``token``, if the files it depends on are unchanged."""
        record = self._read(self.root / "toolchains" / f"{_hash(token)}.json")
        if record is None or record.get("token") != token or not _stats_match(record["stats"]):
            return None
        return str(record["fingerprint"])

    def remember_fingerprint(self, token: str, fingerprint: str, files: Sequence[str]) -> None:
        self._write(self.root / "toolchains" / f"{_hash(token)}.json",
                    {"token": token, "fingerprint": fingerprint, "stats": snapshot(files)})

    # -- freshness: per source path, skip hashing when nothing changed -------
    def fresh_key(self, source: Path, fingerprint: str) -> Optional[str]:
        """The key recorded for ``source`` if it and every dependency still have the recorded stat."""
        record = self._read(self._fresh_path(source))
        if record is None or record.get("fingerprint") != _hash(fingerprint) or record.get("source") != str(source):
            return None
        if not _stats_match(record["stats"]):
            return None
        key = str(record["key"])
        return key if self.entry(key).is_dir() else None

    def remember_fresh(self, source: Path, fingerprint: str, stats: Snapshot, key: str) -> None:
        """Record that ``source`` with these stats (taken before hashing) gave ``key``."""
        self._write(self._fresh_path(source), {
            "source": str(source),
            "fingerprint": _hash(fingerprint),
            "stats": stats,
            "key": key,
        })

    def forget_fresh(self, source: Path) -> None:
        with contextlib.suppress(OSError):
            self._fresh_path(source).unlink()

    def _fresh_path(self, source: Path) -> Path:
        return self.root / "fresh" / f"{_hash(str(source))}.json"

    # -- content index: builds of one source content ------------------------
    def match(self, source_key: str, base: Path) -> tuple[Optional[str], Snapshot]:
        """The entry whose dependencies all still have their recorded content, and their stats.

        The stats are taken before the contents are hashed, so an edit racing
        with this check makes the next import look again rather than trust it.
        """
        record = self._read(self.root / "index" / f"{source_key}.json")
        for candidate in (record or {}).get("builds", []):
            deps = [Dependency(path, digest) for path, digest in candidate["dependencies"]]
            files = [dep.locate(base) for dep in deps]
            stats = snapshot(files)
            if all(_digest_or_none(f) == dep.digest for f, dep in zip(files, deps)):
                if self.entry(candidate["key"]).is_dir():
                    return str(candidate["key"]), stats
        return None, []

    def add_build(self, source_key: str, dependencies: Sequence[Dependency], key: str) -> None:
        """Record a build of ``source_key`` (call while holding its lock)."""
        path = self.root / "index" / f"{source_key}.json"
        builds = [b for b in (self._read(path) or {}).get("builds", []) if b["key"] != key]
        builds.insert(0, {"key": key, "dependencies": [[d.path, d.digest] for d in dependencies]})
        self._write(path, {"builds": builds[:16]})

    # -- building -----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, source_key: str, settings: Settings, what: str) -> Iterator[None]:
        """Hold the build lock of one source content; log when waiting on another process."""
        from filelock import FileLock, Timeout

        path = self.root / "locks" / f"{source_key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), mode=0o600)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another process building %s (lock %s)", what, path)
            try:
                lock.acquire(timeout=settings.lock_timeout)
            except Timeout:
                raise LockTimeout(
                    f"gave up after {settings.lock_timeout:g} s waiting for another process building {what} "
                    f"(lock file {path}); if no build is running, delete that file, or raise "
                    "NATIVEIMPORT_LOCK_TIMEOUT"
                ) from None
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private directory to build in; removed unless :meth:`publish` moved it."""
        parent = self.root / "tmp"
        parent.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned(parent)
        path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{os.getpid()}-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def publish(self, staging: Path, key: str) -> Path:
        """Move a complete build into place in one rename; readers never see half an entry."""
        target = self.entry(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            # An entry with this key already exists: it has the same content, keep it.
        return target

    def _remove_abandoned(self, parent: Path) -> None:
        # Builds whose process died (killed, crashed) leave a directory named after its pid.
        for child in parent.iterdir():
            pid_text = child.name.partition("-")[0]
            if pid_text.isdigit() and not _alive(int(pid_text)):
                shutil.rmtree(child, ignore_errors=True)

    # -- listing and clearing -------------------------------------------------
    def entries(self) -> list[EntryInfo]:
        found = []
        directory = self.root / "entries"
        if not directory.is_dir():
            return []
        for path in sorted(directory.iterdir()):
            manifest = self._read(path / MANIFEST)
            if manifest is None:
                continue
            files = [p for p in path.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files)
            last_used = max((p.stat().st_atime for p in files), default=0.0)
            found.append(EntryInfo(path.name, path, manifest, size, max(last_used, manifest.get("created", 0.0))))
        return found

    def remove(self, key: str) -> None:
        """Delete one entry (renamed aside first, so no reader sees it half gone)."""
        target = self.entry(key)
        doomed = self.root / "tmp" / f"0-removed-{key}-{time.monotonic_ns()}"
        doomed.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(target, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def read_manifest(self, key: str) -> Optional[dict[str, Any]]:
        return self._read(self.entry(key) / MANIFEST)

    def write_manifest(self, staging: Path, manifest: dict[str, Any]) -> None:
        self._write(staging / MANIFEST, manifest)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


Snapshot = list[list[Any]]


def snapshot(files: Sequence[Union[str, Path]]) -> Snapshot:
    """[path, mtime_ns, size] of each file (None, None when missing)."""
    result: Snapshot = []
    for name in files:
        try:
            info = os.stat(name)
            result.append([str(name), info.st_mtime_ns, info.st_size])
        except OSError:
            result.append([str(name), None, None])
    return result


def _stats_match(recorded: Sequence[Sequence[Any]]) -> bool:
    for name, mtime_ns, size in recorded:
        try:
            info = os.stat(name)
        except OSError:
            return False
        if info.st_mtime_ns != mtime_ns or info.st_size != size:
            return False
    return True


def _digest_or_none(path: Path) -> Optional[str]:
    try:
        return digest_file(path)
    except OSError:
        return None


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
