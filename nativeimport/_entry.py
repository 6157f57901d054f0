"""The owner of the cache's layout: the root, every path inside it, the freshness lookup, the listing.

Layout under the root::

    CACHEDIR.TAG              the mark that nativeimport made (so may write and delete in) this folder
    entries/<key>/            one finished build: manifest.json, library.so, bindings (see ENTRY FILES)
    index/<source-key>.json   builds of one source content: their dependencies' digests ("absent" for a
                              header whose appearance would change the build)
    fresh/<path-checksum>     per source path: stats (and digests) of the source, dependencies and compiler -> key
    drivers                   the installed drivers, valid while no sys.path directory changes
    toolchains/<hash>.json    a driver's fingerprint and compiler, valid while the compiler's stat holds
    locks/<source-key>.lock   one build per source content, across processes
    tmp/nativeimport-build-<pid>-<random>/   builds in progress; renamed into entries/ when complete
    scratch/<name>/           toolchains' own caches (Zig's, Cargo's), the fast binder's prebuilt parts
    cells/<xx>/cell_<digest>  the sources of IPython ``%%native`` cells

A wheel built by ``nativeimport.build_meta`` ships entries too, outside any
root, as ``<package>/<module>.nativeimport/`` (see :func:`shipped_entry`):
the same files, read and never written.

No other module spells a file name or walks these directories: they ask here.
An entry's key hashes everything that went into it (see ``_build``), never
its path, so a copied project reuses it and any interpreter can use it.

A freshness record says: this source path, with these stats of itself, its
dependencies and its compiler, under this driver configuration (``token``),
gave this key. When every stat still matches, no byte is hashed. The stats
are (mtime, size, inode, ctime); a row written in the same clock tick as its
file changed is "racily clean" and makes the next import hash (as git does).

The root itself (where it is, its mark, whether it is safe) is
:mod:`nativeimport._root`'s; :func:`cache_root` is published here.

Every native import reads a freshness record, so this module imports only
what Python has loaded at start-up.
"""

from __future__ import annotations

import os
import sys
import time
from _frozen_importlib_external import EXTENSION_SUFFIXES  # importlib.machinery's, without importing importlib

from ._records import (
    content_digest,
    first_changed,
    make_private_dirs,
    read_lines,
    read_record,
    snapshot,
    text_checksum,
    write_lines,
)
from ._root import cache_root  # published here: everyone asks this module for the cache's places

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Optional

    from ._records import Snapshot

__all__ = [
    "BINDING_FILE",
    "BUILD_LOG",
    "FAST_FILE",
    "FRESH_KIND",
    "INTERFACE_FILE",
    "LIBRARY_FILE",
    "LIGHT_FILE",
    "MANIFEST_FILE",
    "RECORD_DIRECTORIES",
    "REMOVED_PREFIX",
    "SHIPPED_SUFFIX",
    "STAGING_PREFIX",
    "EntryInfo",
    "cache_root",
    "cell_source",
    "claim_fast_build",
    "drivers_table",
    "entry_dir",
    "entry_file",
    "fast_build_claim",
    "fast_build_running",
    "fast_retry_due",
    "fast_unavailable_marker",
    "forget_fresh",
    "fresh_identity",
    "fresh_key",
    "index_record",
    "interpreters_served",
    "is_key",
    "is_shipped",
    "list_entries",
    "lock_file",
    "mark_used",
    "note_fast_unavailable",
    "remember_fresh",
    "remove_later",
    "root_of",
    "scratch_dir",
    "shipped_entry",
    "shipped_files",
    "staging_parent",
    "stored_code",
    "tool_versions_dir",
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


# A wrapper that failed to build (the compiler killed for memory, headers missing) is tried again, not
# forever: when what it needs changed, or after a delay doubling from an hour; FAST_ATTEMPTS in all.
FAST_ATTEMPTS = 3
FAST_RETRY_DELAY = 3600.0
_NOTE_KIND = "fast-unavailable"


def note_fast_unavailable(entry: str, reason: str, permanent: bool, prerequisites: list[str]) -> None:
    """Note in ``entry`` that this interpreter's wrapper could not be built, and why.

    ``prerequisites`` are the files whose change makes trying again worth it
    (the Python headers, the compiler, or the PATH folders where one would
    appear); ``permanent`` means no retry helps (no function it can serve).
    """
    marker = fast_unavailable_marker(entry)
    previous = read_lines(marker, _NOTE_KIND) or []
    attempts = next((int(row[1]) for row in previous if row[0] == "attempts" and row[1].isdigit()), 0) + 1
    rows = [["reason", reason], ["time", repr(time.time())], ["attempts", str(attempts)],
            ["permanent", "1" if permanent else "0"], ["CC", os.environ.get("CC", "")]]
    rows += [["stat", *(str(field) for field in row)] for row in snapshot(prerequisites)]
    write_lines(marker, _NOTE_KIND, rows)


def fast_retry_due(entry: str) -> bool:
    """Whether this interpreter should (again) try to build its wrapper for ``entry``.

    Called only when the wrapper is missing, so a hit with a wrapper never reads the note.
    """
    rows = read_lines(fast_unavailable_marker(entry), _NOTE_KIND)
    if rows is None:
        return True  # never tried here (or an older nativeimport's note: one more try)
    fields = {row[0]: row[1] for row in rows if len(row) == 2}
    attempts = int(fields["attempts"]) if fields.get("attempts", "").isdigit() else FAST_ATTEMPTS
    if fields.get("permanent") != "0" or attempts >= FAST_ATTEMPTS:
        return False
    if fields.get("CC") != os.environ.get("CC", "") or first_changed([row[1:] for row in rows if row[0] == "stat"]):
        return True  # what failed may work now
    try:
        noted = float(fields.get("time", "inf"))
    except ValueError:
        return False
    return bool(time.time() > noted + FAST_RETRY_DELAY * 2 ** (attempts - 1))


def fast_build_claim(entry: str) -> str:
    """The file a background build of this interpreter's wrapper for ``entry`` holds locked while it runs.

    Locked, not merely present: the lock goes with the process, so a build that
    was killed leaves no claim behind. Per interpreter, as the note above.
    """
    return os.path.join(entry, f"{FAST_FILE}.building-{text_checksum(sys.executable)}")


def claim_fast_build(entry: str) -> int | None:
    """A descriptor holding the claim's lock, for the background build to inherit; None when one runs."""
    import fcntl

    descriptor = os.open(fast_build_claim(entry), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def fast_build_running(entry: str, wait: float = 0.0) -> bool:
    """Whether a background build of this interpreter's wrapper for ``entry`` is running, after waiting
    up to ``wait`` seconds for it to end. Only stats when none was ever started."""
    try:
        descriptor = os.open(fast_build_claim(entry), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    import fcntl

    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return False
            except OSError:
                if time.monotonic() >= deadline:
                    return True
            time.sleep(0.01)  # flock has no timeout of its own
    finally:
        os.close(descriptor)


def stored_code(entry: str, filename: str) -> str:
    """Where the code object of one of an entry's generated Python files is kept, per interpreter."""
    return os.path.join(entry, f"{filename[:-3]}.{sys.implementation.cache_tag}.code")


# -- an entry shipped inside a package (a wheel built by nativeimport.build_meta) --------------
SHIPPED_SUFFIX = ".nativeimport"  # a dot: never importable as a package, never mistaken for a module


def shipped_entry(package_dir: str, name: str) -> str:
    """Where a wheel puts the prebuilt entry of module ``name`` of the package in ``package_dir``."""
    return os.path.join(package_dir, name + SHIPPED_SUFFIX)


def is_shipped(entry: str) -> bool:
    """Whether ``entry`` was shipped in a package: read only, never written (it is not ours to change)."""
    return entry.endswith(SHIPPED_SUFFIX)


def shipped_files(entry: str) -> list[str]:
    """The files of ``entry`` a wheel ships: the library, the bindings, this interpreter's wrapper, the records.

    Not what an entry accumulates in use (last-used, other interpreters' wrappers and
    code, notes that a wrapper cannot be built): the wheel's tags name one CPython ABI.
    """
    names = (LIBRARY_FILE, BINDING_FILE, LIGHT_FILE, FAST_FILE, INTERFACE_FILE, MANIFEST_FILE)
    return [name for name in names if os.path.isfile(os.path.join(entry, name))]


# -- the other records under the root --------------------------------------------------------


def index_record(root: str, source_key: str) -> str:
    return os.path.join(root, "index", f"{source_key}.json")


def toolchain_record(root: str, token_hash: str) -> str:
    return os.path.join(root, "toolchains", f"{token_hash}.json")


def tool_versions_dir(root: str) -> str:
    """Where what tools print for ``--version`` is remembered (nativeimport._tool_versions)."""
    return os.path.join(root, "toolchains", "versions")


def lock_file(root: str, source_key: str) -> str:
    return os.path.join(root, "locks", f"{source_key}.lock")


# Builds in progress are tmp/nativeimport-build-<pid>-<random>; entries being removed are
# tmp/nativeimport-removed-<key>-<n>. Only names with these prefixes are ever swept from tmp/.
STAGING_PREFIX = "nativeimport-build-"
REMOVED_PREFIX = "nativeimport-removed-"


def staging_parent(root: str) -> str:
    """Where builds in progress live (``STAGING_PREFIX<pid>-<random>``) until they are renamed into ``entries/``."""
    return os.path.join(root, "tmp")


def remove_later(directory: str, root: str) -> None:
    """Remove ``directory``, a build's leftover in the cache ``root`` (a folder only we can enter), off the
    caller's path: moved into ``tmp/`` under :data:`REMOVED_PREFIX` with this process's pid (one rename)
    if it is elsewhere, then deleted by a thread of its own, which the interpreter's exit waits for.

    Deleting a directory is the slow metadata operation here (``rmdir`` on ext4: ~0.3 ms, against ~5 us
    for a rename), twice on a new module's import after the compiler ended. A process killed first leaves
    the directory to the next build's sweep of ``tmp/`` (its pid is dead by then).
    """
    import _thread

    parent = staging_parent(root)
    if os.path.dirname(os.path.abspath(directory)) != os.path.abspath(parent):
        moved = os.path.join(parent, f"{REMOVED_PREFIX}{os.getpid()}-leftover-{os.urandom(6).hex()}")
        try:
            os.rename(directory, moved)
        except FileNotFoundError:
            return
        except OSError:  # removed here: its path may be made again at once, a thread must not remove that
            _remove_private_tree(directory)
            return
        directory = moved
    done = _thread.allocate_lock()
    done.acquire()

    def remove() -> None:
        try:
            _remove_private_tree(directory)
        finally:
            done.release()

    if not _removals:
        import atexit

        atexit.register(_wait_for_removals)
    _removals[:] = [(pid, lock) for pid, lock in _removals if lock.locked()] + [(os.getpid(), done)]
    _thread.start_new_thread(remove, ())


# (pid, a lock released when the removal ended) per removal in progress: a forked child's exit does not
# wait for its parent's threads, which it does not have
_removals: list[tuple[int, Any]] = []


def _remove_private_tree(directory: str) -> None:
    """``shutil.rmtree(directory, ignore_errors=True)`` for a folder of ours only we can enter (nobody can
    swap a symlink in), without importing shutil in a thread beside a new module's binding."""
    for folder, folders, files in os.walk(directory, topdown=False):
        for name in files:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
        for name in folders:  # a symlink to a folder is listed here, and unlinked
            path = os.path.join(folder, name)
            try:
                if os.path.islink(path):
                    os.unlink(path)
                else:
                    os.rmdir(path)
            except OSError:
                pass
    try:
        os.rmdir(directory)
    except OSError:
        pass


def _wait_for_removals() -> None:
    for pid, done in _removals:
        if pid == os.getpid():
            done.acquire(timeout=10)  # a removal stuck on a dead file server does not hold the exit forever


def scratch_dir(root: str, name: str) -> str:
    """A directory kept between builds for a toolchain's own caches; created on demand."""
    path = os.path.join(root, "scratch", name)
    make_private_dirs(path)
    return path


def drivers_table(root: str) -> str:
    return os.path.join(root, "drivers")


def cell_source(root: str, digest: str, suffix: str) -> str:
    """Where an IPython cell's text is kept as a source file, named by its content."""
    return os.path.join(root, "cells", digest[:2], f"cell_{digest[:16]}{suffix}")


def _fresh_record(root: str, source: str) -> str:
    # The record holds the full path and is checked against it: a clash only costs a rebuild.
    return os.path.join(root, "fresh", text_checksum(source))

# What `cache clear` forgets with the entries; scratch/early (the early compile's recipes and the contents built,
# _early.RECIPES) too: a content marked built whose entry is gone would never be compiled early again.
RECORD_DIRECTORIES = ("index", "fresh", "toolchains", "scratch/early")


# -- freshness: a source path's stats -> key, with no hashing ------------------------------------


FRESH_KIND = "fresh-2"  # rows: stat|racy mtime_ns size inode ctime_ns digest path (kind "fresh" held two numbers)


def fresh_key(root: str, source: str, token: str, verify: bool = False) -> Optional[str]:
    """The key recorded for ``source`` if it, its dependencies and its compiler still have the recorded stats.

    With ``verify``, the content of every file recorded with a digest is
    checked instead of its stats (the compiler's stats still are), as a
    checked hash-based ``.pyc`` does: a hash of each file on every import.
    """
    rows = read_lines(_fresh_record(root, source), FRESH_KIND)
    if rows is None or len(rows) < 3 or rows[0] != ["source", source] or rows[1] != ["token", text_checksum(token)]:
        return None
    key = rows[2][1] if rows[2][0] == "key" else ""
    if any(len(row) != 7 for row in rows[3:]):
        return None
    if verify:
        if any(content_digest(row[6]) != row[5] for row in rows[3:] if row[5] != "-"):
            return None
        stats = [row for row in rows[3:] if row[5] == "-"]
    else:
        if any(row[0] != "stat" for row in rows[3:]):  # "racy": its content is checked by a miss
            return None
        stats = rows[3:]
    if first_changed([(path, mtime, size, inode, ctime) for _, mtime, size, inode, ctime, _, path in stats]):
        return None
    return key if key and mark_used(entry_dir(root, key)) else None


def fresh_identity(source: str, definition: Optional[str]) -> str:
    """What a freshness record is kept for: the source path, or for a module ``nativeimport.toml``
    defines from several files, its primary source and its name."""
    return source if definition is None else f"{source}#module:{definition}"


def why_not_fresh(root: str, source: str, token: str, verify: bool = False) -> str:
    """Why :func:`fresh_key` found nothing, in words for the log (a miss only)."""
    rows = read_lines(_fresh_record(root, source), FRESH_KIND)
    if rows is None or len(rows) < 3 or rows[0] != ["source", source]:
        return "first build of this source here"
    if rows[1] != ["token", text_checksum(token)]:
        return ("the driver's configuration changed (its environment variables, the compiler's search path "
                "variables, PATH or nativeimport's version)")
    stats = [row for row in rows[3:] if len(row) == 7]
    changed = first_changed([(row[6], *row[1:5]) for row in stats])
    if changed is not None:
        return f"{changed} changed" if os.path.exists(changed) else f"{changed} is gone or appeared"
    if verify:
        return "a file's content changed though its stats did not (NATIVEIMPORT_VERIFY)"
    racy = [row[6] for row in stats if row[0] == "racy"]
    if racy:
        return f"{racy[0]} changed in the same clock tick as the record was written (racily clean): checking content"
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
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))  # created when missing
        os.utime(marker)
    except OSError:
        pass  # a read-only cache still serves hits
    return True


def remember_fresh(root: str, source: str, token: str, stats: Snapshot, key: str) -> None:
    """Record that ``source`` with these stats (taken before hashing) gave ``key``. A row of ``stats``
    may end with the file's content digest (:func:`~nativeimport._records.content_digest`).

    A file whose ctime is not older than the record itself (the same tick of
    the file system's clock) could change again with identical stats: as git
    does, such a "racily clean" row makes the next import check its content,
    after which the record is written again, older than the file. ctime, not
    mtime: every change moves it, and no one can set it to the future.
    """

    def rows(now: int) -> list[list[str]]:
        head = [["source", source], ["token", text_checksum(token)], ["key", key]]
        return head + [["racy" if row[4] is not None and _racy(int(row[4]), now) else "stat",
                        *(str(field) for field in row[1:5]), str(row[5]) if len(row) > 5 else "-", str(row[0])]
                       for row in stats]

    write_lines(_fresh_record(root, source), FRESH_KIND, rows)


def _racy(ctime: int, now: int) -> bool:
    """Whether a file with this ctime could still change unseen by a record written at ``now``.

    A ctime of a whole second comes from a file system with coarse timestamps
    (FAT's are 2 s): any change in the 2 s it stands for keeps the same stats,
    whatever the cache's own file system says the time is.
    """
    tick = 2 * 10**9 if ctime % 10**9 == 0 else 0
    return ctime + tick >= now


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


def is_key(name: str) -> bool:
    """Whether ``name`` is one nativeimport gives an entry (a sha256 in lowercase hex)."""
    return len(name) == 64 and not name.strip("0123456789abcdef")


def list_entries(root: str) -> list[EntryInfo]:
    """Every entry under ``root``, with its manifest, size and last use."""
    from pathlib import Path

    directory = Path(root, "entries")
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        if not is_key(path.name):  # not ours: never listed, so never pruned or cleared
            continue
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
