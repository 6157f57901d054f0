"""The cache root: where it is, nativeimport's mark on it, and whether it is safe to use.

The root is nativeimport's only when marked (or new, or holding only our
names), owned by us, private, and reached through folders no other user can
change. A root found unsafe is replaced by a private temporary one, with a
warning. :mod:`nativeimport._entry`, the owner of the layout, publishes
:func:`cache_root`; every native import calls it, so this module imports only
what Python has loaded at start-up (a root is checked once per process).
"""

from __future__ import annotations

import os
import stat
import sys

from ._records import make_private_dirs
from .errors import CacheError, NativeImportWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["OWN_NAMES", "TAG_FILE", "cache_root"]


# The cache directory tag (https://bford.info/cachedir/): backup tools skip the root, and its
# second line is the mark that nativeimport made this directory, so may write and delete in it.
TAG_FILE = "CACHEDIR.TAG"
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by nativeimport.\n"
            "# For information about cache directory tags, see https://bford.info/cachedir/\n")
_TAG_MARK = b"created by nativeimport"
# What an unmarked root made by an earlier nativeimport holds: such a root is adopted (marked).
# ".tmp-" starts the name of a record being written (see _records.write_atomically).
OWN_NAMES = frozenset({"entries", "index", "fresh", "drivers", "toolchains", "locks", "tmp", "scratch", "cells",
                       TAG_FILE})
_fallbacks: dict[str, str] = {}  # per process: the unpredictable fallback made when the usual one was not ours
# Per process: roots found safe. Checked once, the answer cannot be changed by another user (every folder
# on the way, and the root, can only be changed by us or root), so each import does not pay ~8 system calls.
_verified: set[str] = set()


def cache_root(cache_dir: Optional[str]) -> str:
    """The cache root (``cache_dir``, else the per-user one), created private and marked as ours.

    A root that is unsafe (see :func:`_refusal`) is replaced by a private
    temporary one, with a warning.
    """
    root = os.path.abspath(cache_dir if cache_dir is not None else _default_root())
    if root in _verified:
        return root
    problem = _refusal(root)
    if problem is None:
        _verified.add(root)
        return root
    import tempfile
    import warnings

    fallback = os.path.join(tempfile.gettempdir(), f"nativeimport-{os.getuid()}")
    fallback_problem = _refusal(fallback)
    if fallback_problem is not None:
        # Someone else made the predictable name first: a directory with an unpredictable one,
        # kept for this process (a cache that lasts one process is slow, never unsafe).
        if fallback not in _fallbacks:
            _fallbacks[fallback] = tempfile.mkdtemp(prefix=f"nativeimport-{os.getuid()}-")
        fallback_problem = f"{fallback_problem}; using {_fallbacks[fallback]} for this process"
        fallback = _fallbacks[fallback]
        if _refusal(fallback) is not None:
            raise CacheError(f"no safe cache directory: {root} {problem}, and {fallback_problem}; "
                             "set NATIVEIMPORT_CACHE_DIR to a directory only you can write")
        warnings.warn(f"nativeimport: not using cache {root}: it {problem}; the usual fallback {fallback_problem}",
                      NativeImportWarning, stacklevel=2)
        return fallback
    warnings.warn(f"nativeimport: not using cache {root}: it {problem}; using {fallback} instead",
                  NativeImportWarning, stacklevel=2)
    return fallback


def _default_root() -> str:
    if sys.platform.startswith("linux"):  # platformdirs' answer on Linux, without its import cost
        base = os.environ.get("XDG_CACHE_HOME", "").strip()
        return os.path.join(base if os.path.isabs(base) else os.path.expanduser("~/.cache"), "nativeimport")
    import platformdirs

    return str(platformdirs.user_cache_dir("nativeimport", appauthor=False))


def _made_by_us_before(fd: int) -> bool:
    """Whether an unmarked root holds a record only nativeimport writes: its driver table, or a
    freshness record (the root was deleted and remade by a running process). The cache of a
    nativeimport from before the mark, then. Names alone (``tmp``, ``index``) could be anyone's."""
    if _is_our_record("drivers", fd):
        return True
    try:
        fresh = os.open("fresh", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return False
    try:
        return any(_is_our_record(name, fresh) for name in sorted(os.listdir(fresh))[:1])
    finally:
        os.close(fresh)


def _is_our_record(name: str, directory_fd: int) -> bool:
    try:
        record = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory_fd)
    except OSError:
        return False
    try:
        return os.read(record, 64).startswith(b"nativeimport-")
    finally:
        os.close(record)


def _refusal(root: str) -> Optional[str]:
    """Why ``root`` (absolute) must not be used, after creating it if missing; None when it is safe.

    Safe means: no folder above it can be replaced by another user (each is
    owned by root or us and, if others may write in it, sticky), the root
    itself is a directory, not a symbolic link, owned by us and writable by
    nobody else (checked through one descriptor, so what is checked is what
    is marked), and it is nativeimport's (marked, or new, or holding only
    what nativeimport makes). While that holds, no one else can change what
    the path names, so it is used by name afterwards.
    """
    problem = _unsafe_ancestor(root)
    if problem is not None:
        return problem
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(root, flags)
    except FileNotFoundError:
        try:
            make_private_dirs(root)
            fd = os.open(root, flags)
        except OSError as exc:
            return f"cannot be created ({exc.strerror})"
    except OSError as exc:
        if os.path.islink(root):
            return "is a symbolic link"
        return "is not a directory" if os.path.exists(root) else f"cannot be opened ({exc.strerror})"
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid():
            return f"is owned by another user (uid {info.st_uid})"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return "is writable by group or others"
        return _unmarked(fd)
    finally:
        os.close(fd)


def _unsafe_ancestor(root: str) -> Optional[str]:
    """The first folder above ``root`` that another user could replace or rename, in words; else None.

    As ssh's StrictModes: each must be owned by root or us, and not writable by
    group or others unless sticky (as /tmp is, where only a name's owner may
    rename it). A symbolic link is followed and its target checked the same way.
    """
    uid = os.getuid()
    path = "/"
    parts = root.split("/")[1:]
    for index, part in enumerate(parts[:-1]):
        path = os.path.join(path, part)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None  # created by us, private, from here down
        except OSError as exc:
            return f"cannot be checked ({path}: {exc.strerror})"
        if info.st_uid not in (0, uid):
            return f"is inside {path}, owned by another user (uid {info.st_uid}), who could replace it"
        if stat.S_ISLNK(info.st_mode):
            return _unsafe_ancestor(os.path.join(os.path.realpath(path), *parts[index + 1:]))
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            return f"is inside {path}, which others can write (and so replace what it holds)"
    return None


def _unmarked(fd: int) -> Optional[str]:
    """Why the directory open as ``fd`` is not nativeimport's; marks it when it is new or only holds our names."""
    try:
        tag = os.open(TAG_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except FileNotFoundError:
        tag = -1
    except OSError as exc:
        return f"has a {TAG_FILE} that cannot be read ({exc.strerror})"
    if tag >= 0:
        try:
            text = os.read(tag, 4096)
        finally:
            os.close(tag)
        if _TAG_MARK in text:
            return None
        return f"is another program's cache (its {TAG_FILE} does not name nativeimport)"
    names = [name for name in os.listdir(fd) if not name.startswith(".tmp-")]  # ".tmp-": a record being written
    foreign = sorted(name for name in names if name not in OWN_NAMES)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        return (f"holds files nativeimport did not make ({shown}) and no {TAG_FILE} of nativeimport's; "
                "nativeimport never writes or deletes there")
    if names and not _made_by_us_before(fd):
        return (f"is not empty ({', '.join(sorted(names)[:3])}) and has no {TAG_FILE} of nativeimport's; "
                "nativeimport never writes or deletes there")
    # New, or an earlier nativeimport's: mark it. Written whole under a temporary name, then linked into
    # place (which fails if another process marked it first), so no one reads half a tag.
    temporary = f".tmp-tag-{os.getpid()}"
    try:
        tag = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=fd)
        try:
            os.write(tag, TAG_TEXT.encode())
        finally:
            os.close(tag)
        try:
            os.link(temporary, TAG_FILE, src_dir_fd=fd, dst_dir_fd=fd)
        except FileExistsError:
            return None if _unmarked(fd) is None else f"was marked by someone else meanwhile ({TAG_FILE})"
        finally:
            os.unlink(temporary, dir_fd=fd)
    except OSError:
        # Read-only: it holds nothing of anyone else's, so it still serves hits (a shared, prebuilt cache),
        # and a build says it cannot write there.
        return None
    return None
