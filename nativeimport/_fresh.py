"""What a cache hit needs, and nothing more: the cache root and per-source freshness records.

Every import goes through here, so it imports only modules Python has loaded
at start-up anyway; hashing, locking and building live in
``_cache`` and ``_build``, which only a miss imports.

A freshness record says: this source path, with these stats of itself, its
dependencies and its compiler, under this driver configuration (``token``),
gave this key. When every stat still matches, no byte is hashed.
"""

from __future__ import annotations

import os
import stat
import sys
import time

from .errors import CacheError, NativeImportWarning

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at run time; only the type checker needs it
    from collections.abc import Sequence
    from typing import Any, Optional, Union

    from .settings import Settings

    Snapshot = list[list[Any]]
    StrPath = Union[str, os.PathLike[str]]

__all__ = [
    "LAST_USED",
    "SCHEMA",
    "cache_root",
    "entry_dir",
    "escape",
    "forget_fresh",
    "fresh_key",
    "mark_used",
    "read_lines",
    "read_record",
    "remember_fresh",
    "snapshot",
    "stats_match",
    "unescape",
    "write_lines",
    "write_record",
]

SCHEMA = 1
LAST_USED = "last-used"


def cache_root(settings: Settings) -> str:
    """The cache root, created private; an unsafe root is replaced by a private temporary one."""
    root = settings.cache_dir if settings.cache_dir is not None else _default_root()
    problem = _unsafe(root)
    if problem is None:
        return root
    import tempfile
    import warnings

    fallback = os.path.join(tempfile.gettempdir(), f"nativeimport-{os.getuid()}")
    warnings.warn(f"nativeimport: not using cache {root}: it {problem}; using {fallback} instead",
                  NativeImportWarning, stacklevel=2)
    fallback_problem = _unsafe(fallback)
    if fallback_problem is not None:
        raise CacheError(f"no safe cache directory: {root} {problem}, and {fallback} {fallback_problem}; "
                         "set NATIVEIMPORT_CACHE_DIR to a directory only you can write")
    return fallback


def _default_root() -> str:
    if sys.platform.startswith("linux"):  # platformdirs' answer on Linux, without its import cost
        base = os.environ.get("XDG_CACHE_HOME", "").strip()
        return os.path.join(base if os.path.isabs(base) else os.path.expanduser("~/.cache"), "nativeimport")
    import platformdirs

    return str(platformdirs.user_cache_dir("nativeimport", appauthor=False))


def _unsafe(root: str) -> Optional[str]:
    """Why ``root`` must not be used (shared, foreign, not a directory), after creating it if missing."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        info = os.stat(root)
    except OSError as exc:
        return f"cannot be created ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "is writable by group or others"
    return None


def entry_dir(root: str, key: str) -> str:
    return os.path.join(root, "entries", key)


def read_record(path: StrPath) -> Optional[dict[str, Any]]:
    """A JSON record written by :func:`write_record`, or None if missing, unreadable or of another schema."""
    import json  # json imports re (milliseconds): only the records a build uses are JSON

    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def write_record(path: StrPath, data: dict[str, Any]) -> None:
    """Write a JSON record atomically (a temporary file renamed over the old one)."""
    import json

    _write_atomically(path, json.dumps({"schema": SCHEMA, **data}, indent=1))


def read_lines(path: StrPath, kind: str) -> Optional[list[list[str]]]:
    """The fields of each line of a record written by :func:`write_lines`, or None.

    The records every import reads (freshness, the driver table) are lines of
    space-separated, escaped fields: parsing them needs no module at all.
    """
    try:
        with open(path, "rb") as stream:  # bytes and UTF-8: no codec module to import
            lines = stream.read().decode().split("\n")
    except (OSError, ValueError):
        return None
    if not lines or lines[0] != f"nativeimport-{kind} {SCHEMA}":
        return None
    try:
        return [[unescape(field) for field in line.split(" ")] for line in lines[1:] if line]
    except (UnicodeError, ValueError):
        return None


def write_lines(path: StrPath, kind: str, rows: list[list[str]]) -> None:
    """Write a record of escaped fields atomically."""
    body = "\n".join(" ".join(escape(field) for field in row) for row in rows)
    _write_atomically(path, f"nativeimport-{kind} {SCHEMA}\n{body}\n")


def escape(text: str) -> str:
    """ASCII with no spaces or newlines, reversible by :func:`unescape` (surrogates included)."""
    return text.encode("unicode_escape").decode("ascii").replace(" ", "\\x20") or "\\x00"


def unescape(field: str) -> str:
    if "\\" not in field:  # the common case, without the unicode_escape codec's import
        return field
    return "" if field == "\\x00" else field.encode("latin-1").decode("unicode_escape")


def _write_atomically(path: StrPath, text: str) -> None:
    import tempfile

    directory = os.path.dirname(os.fspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def snapshot(files: Sequence[StrPath]) -> Snapshot:
    """[path, mtime_ns, size] of each file (None, None when missing)."""
    result: Snapshot = []
    for name in files:
        try:
            info = os.stat(name)
            result.append([os.fspath(name), info.st_mtime_ns, info.st_size])
        except OSError:
            result.append([os.fspath(name), None, None])
    return result


def stats_match(recorded: Sequence[Sequence[Any]]) -> bool:
    """Whether every (path, mtime_ns, size) still holds; numbers may be ints or their text."""
    for name, mtime_ns, size in recorded:
        try:
            info = os.stat(name)
        except OSError:
            return False
        if str(info.st_mtime_ns) != str(mtime_ns) or str(info.st_size) != str(size):
            return False
    return True


_PRIME_61 = (1 << 61) - 1
_PRIME_31 = (1 << 31) - 1


def _checksum(text: str) -> str:
    # The text as one integer, reduced modulo two Mersenne primes: deterministic across processes
    # (unlike hash()) and without importing zlib or hashlib, which load shared libraries on every import.
    data = text.encode("utf-8", "surrogateescape")
    number = int.from_bytes(data, "little")
    return f"{number % _PRIME_61:016x}{number % _PRIME_31:08x}{len(data):x}"


def _record_path(root: str, source: str) -> str:
    # The record holds the full path and is checked against it: a clash only costs a rebuild.
    return os.path.join(root, "fresh", _checksum(source))


def fresh_key(root: str, source: str, token: str) -> Optional[str]:
    """The key recorded for ``source`` if it, its dependencies and its compiler still have the recorded stats."""
    rows = read_lines(_record_path(root, source), "fresh")
    if rows is None or len(rows) < 3 or rows[0] != ["source", source] or rows[1] != ["token", _checksum(token)]:
        return None
    key = rows[2][1] if rows[2][0] == "key" else ""
    if any(len(row) != 4 or row[0] != "stat" for row in rows[3:]):
        return None
    if not stats_match([(path, mtime_ns, size) for _, mtime_ns, size, path in rows[3:]]):
        return None
    return key if key and mark_used(entry_dir(root, key)) else None


def mark_used(entry: str) -> bool:
    """Note that ``entry`` was used (at most once an hour: a stat, rarely a write); False if it is gone."""
    marker = os.path.join(entry, LAST_USED)
    try:
        if os.stat(marker).st_mtime > time.time() - 3600:
            return True
    except FileNotFoundError:
        if not os.path.isdir(entry):
            return False
    try:
        with open(marker, "a"):
            pass  # creates it when missing
        os.utime(marker)
    except OSError:
        pass  # a read-only cache still serves hits
    return True


def remember_fresh(root: str, source: str, token: str, stats: Snapshot, key: str) -> None:
    """Record that ``source`` with these stats (taken before hashing) gave ``key``."""
    rows = [["source", source], ["token", _checksum(token)], ["key", key]]
    rows += [["stat", str(mtime), str(size), path] for path, mtime, size in stats]
    write_lines(_record_path(root, source), "fresh", rows)


def forget_fresh(root: str, source: str) -> None:
    try:
        os.unlink(_record_path(root, source))
    except OSError:
        pass
