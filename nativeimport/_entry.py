"""The owner of the cache's layout: the root, every path inside it, the freshness lookup, the listing.

Layout under the root::

    entries/<key>/            one finished build: manifest.json, library.so, bindings (see ENTRY FILES)
    index/<source-key>.json   builds of one source content: their dependencies' digests
    fresh/<path-checksum>     per source path: stats of the source, dependencies and compiler -> key
    drivers                   the installed drivers, valid while no sys.path directory changes
    toolchains/<hash>.json    a driver's fingerprint and compiler, valid while the compiler's stat holds
    locks/<source-key>.lock   one build per source content, across processes
    tmp/<pid>-<random>/       builds in progress; renamed into entries/ when complete
    scratch/<name>/           toolchains' own caches (Zig's, Cargo's), the fast binder's prebuilt parts
    cells/<xx>/cell_<digest>  the sources of IPython ``%%native`` cells

No other module spells a file name or walks these directories: they ask here.
An entry's key hashes everything that went into it (see ``_build``), never
its path, so a copied project reuses it and any interpreter can use it.

A freshness record says: this source path, with these stats of itself, its
dependencies and its compiler, under this driver configuration (``token``),
gave this key. When every stat still matches, no byte is hashed.

Every native import reads a freshness record, so this module imports only
what Python has loaded at start-up.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from _frozen_importlib_external import EXTENSION_SUFFIXES  # importlib.machinery's, without importing importlib

from ._records import first_changed, read_lines, read_record, text_checksum, write_lines
from .errors import CacheError, NativeImportWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Optional

    from ._records import Snapshot

__all__ = [
    "BINDING_FILE",
    "BUILD_LOG",
    "FAST_FILE",
    "INTERFACE_FILE",
    "LIBRARY_FILE",
    "LIGHT_FILE",
    "MANIFEST_FILE",
    "RECORD_DIRECTORIES",
    "EntryInfo",
    "cache_root",
    "cell_source",
    "drivers_table",
    "entry_dir",
    "entry_file",
    "fast_unavailable_marker",
    "forget_fresh",
    "fresh_identity",
    "fresh_key",
    "index_record",
    "interpreters_served",
    "list_entries",
    "lock_file",
    "mark_used",
    "remember_fresh",
    "root_of",
    "scratch_dir",
    "staging_parent",
    "stored_code",
    "toolchain_record",
    "why_not_fresh",
]


# -- the files of one entry ---------------------------------------------------------------
LIBRARY_FILE = "library.so"
BINDING_FILE = "binding_cffi.py"
LIGHT_FILE = "binding_light.py"  # what a module needs when the fast wrapper serves every function
FAST_FILE = f"fast{EXTENSION_SUFFIXES[0]}"  # this interpreter's wrapper, its ABI tag in the name
INTERFACE_FILE = "interface.json"
MANIFEST_FILE = "manifest.json"
BUILD_LOG = "build.log"
LAST_USED = "last-used"


def entry_dir(root: str, key: str) -> str:
    """The directory of the entry ``key``."""
    return os.path.join(root, "entries", key)


def root_of(entry: str) -> str:
    """The cache root an entry directory belongs to."""
    return os.path.dirname(os.path.dirname(entry))


def entry_file(entry: str, name: str) -> str:
    """One of an entry's files (``LIBRARY_FILE``, ...)."""
    return os.path.join(entry, name)


def fast_unavailable_marker(entry: str) -> str:
    """Where this interpreter notes that it cannot build its fast wrapper for ``entry``.

    Per interpreter, not per ABI tag: two installations share a tag, and one may
    have the headers the other lacks; the wrapper either builds serves both.
    """
    return os.path.join(entry, f"{FAST_FILE}.unavailable-{text_checksum(sys.executable)}")


def stored_code(entry: str, filename: str) -> str:
    """Where the code object of one of an entry's generated Python files is kept, per interpreter."""
    return os.path.join(entry, f"{filename[:-3]}.{sys.implementation.cache_tag}.code")


# -- the other records under the root --------------------------------------------------------


def index_record(root: str, source_key: str) -> str:
    return os.path.join(root, "index", f"{source_key}.json")


def toolchain_record(root: str, token_hash: str) -> str:
    return os.path.join(root, "toolchains", f"{token_hash}.json")


def lock_file(root: str, source_key: str) -> str:
    return os.path.join(root, "locks", f"{source_key}.lock")


def staging_parent(root: str) -> str:
    """Where builds in progress live (``<pid>-<random>``) until they are renamed into ``entries/``."""
    return os.path.join(root, "tmp")


def scratch_dir(root: str, name: str) -> str:
    """A directory kept between builds for a toolchain's own caches; created on demand."""
    path = os.path.join(root, "scratch", name)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def drivers_table(root: str) -> str:
    return os.path.join(root, "drivers")


def cell_source(root: str, digest: str, suffix: str) -> str:
    """Where an IPython cell's text is kept as a source file, named by its content."""
    return os.path.join(root, "cells", digest[:2], f"cell_{digest[:16]}{suffix}")


def _fresh_record(root: str, source: str) -> str:
    # The record holds the full path and is checked against it: a clash only costs a rebuild.
    return os.path.join(root, "fresh", text_checksum(source))

RECORD_DIRECTORIES = ("index", "fresh", "toolchains")  # what `cache clear` forgets with the entries


# -- the root ---------------------------------------------------------------------------------


def cache_root(cache_dir: Optional[str]) -> str:
    """The cache root (``cache_dir``, else the per-user one), created private.

    An unsafe root is replaced by a private temporary one, with a warning.
    """
    root = cache_dir if cache_dir is not None else _default_root()
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
        info = os.stat(root)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    try:
        if info is None:
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


# -- freshness: a source path's stats -> key, with no hashing ------------------------------------


def fresh_key(root: str, source: str, token: str) -> Optional[str]:
    """The key recorded for ``source`` if it, its dependencies and its compiler still have the recorded stats."""
    rows = read_lines(_fresh_record(root, source), "fresh")
    if rows is None or len(rows) < 3 or rows[0] != ["source", source] or rows[1] != ["token", text_checksum(token)]:
        return None
    key = rows[2][1] if rows[2][0] == "key" else ""
    if any(len(row) != 4 or row[0] != "stat" for row in rows[3:]):
        return None
    if first_changed([(path, mtime_ns, size) for _, mtime_ns, size, path in rows[3:]]) is not None:
        return None
    return key if key and mark_used(entry_dir(root, key)) else None


def fresh_identity(source: str, definition: Optional[str]) -> str:
    """What a freshness record is kept for: the source path, or for a module ``nativeimport.toml``
    defines from several files, its primary source and its name."""
    return source if definition is None else f"{source}#module:{definition}"


def why_not_fresh(root: str, source: str, token: str) -> str:
    """Why :func:`fresh_key` found nothing, in words for the log (a miss only)."""
    rows = read_lines(_fresh_record(root, source), "fresh")
    if rows is None or len(rows) < 3 or rows[0] != ["source", source]:
        return "first build of this source here"
    if rows[1] != ["token", text_checksum(token)]:
        return "the driver's configuration changed (its environment variables, PATH or nativeimport's version)"
    changed = first_changed([(row[3], row[1], row[2]) for row in rows[3:] if len(row) == 4])
    if changed is not None:
        return f"{changed} changed" if os.path.exists(changed) else f"{changed} is gone"
    return "its cache entry is gone"


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
    rows = [["source", source], ["token", text_checksum(token)], ["key", key]]
    rows += [["stat", str(mtime), str(size), path] for path, mtime, size in stats]
    write_lines(_fresh_record(root, source), "fresh", rows)


def forget_fresh(root: str, source: str) -> None:
    try:
        os.unlink(_fresh_record(root, source))
    except OSError:
        pass


# -- listing ----------------------------------------------------------------------------------------


class EntryInfo:
    """One cache entry as the CLI shows it. ``manifest`` is None when it does not parse (a damaged entry)."""

    __slots__ = ("key", "last_used", "manifest", "path", "size")

    def __init__(self, key: str, path: Path, manifest: Optional[dict[str, Any]], size: int, last_used: float) -> None:
        self.key = key
        self.path = path
        self.manifest = manifest
        self.size = size
        self.last_used = last_used

    def __repr__(self) -> str:
        return f"EntryInfo({self.key!r}, {str(self.path)!r})"


def list_entries(root: str) -> list[EntryInfo]:
    """Every entry under ``root``, with its manifest, size and last use."""
    from pathlib import Path

    directory = Path(root, "entries")
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        manifest = read_record(path / MANIFEST_FILE)
        try:
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        except OSError:  # removed while we looked
            size = 0
        try:
            last_used = (path / LAST_USED).stat().st_mtime
        except OSError:  # never used since it was built
            last_used = (manifest or {}).get("created", 0.0)
        found.append(EntryInfo(path.name, path, manifest, size, last_used))
    return found


def interpreters_served(entry: Path) -> list[str]:
    """The interpreters that have used an entry: each leaves its compiled binding (and fast wrapper) there."""
    served = []
    tags = sorted({path.name.split(".")[1] for path in entry.glob("binding_*.*.code")})
    for tag in tags:
        fast = [p for p in entry.glob("fast.*.so") if tag.replace("-", "") in p.name.replace("-", "")]
        served.append(f"{tag} (fast binder)" if fast else tag)
    return served
