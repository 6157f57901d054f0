"""What a cache hit needs, and nothing more: settings, the cache root, freshness records, an entry's files.

Every import goes through here, so it imports only modules Python has loaded
at start-up anyway; hashing, locking and building live in
``_cache`` and ``_build``, which only a miss imports. :class:`Settings` is
defined here and published as :mod:`nativeimport.settings`, as
``importlib.machinery`` publishes classes its private bootstrap module
defines: each module on the hit path costs about 0.1 ms to import.

A freshness record says: this source path, with these stats of itself, its
dependencies and its compiler, under this driver configuration (``token``),
gave this key. When every stat still matches, no byte is hashed.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from _frozen_importlib_external import EXTENSION_SUFFIXES  # importlib.machinery's, without importing importlib

from .errors import CacheError, NativeImportWarning

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at run time; only the type checker needs it
    from collections.abc import Mapping, Sequence
    from typing import Any, Optional, Union

    Snapshot = list[list[Any]]
    StrPath = Union[str, os.PathLike[str]]

__all__ = [
    "BINDING_FILE",
    "FAST_FILE",
    "LAST_USED",
    "LIBRARY_FILE",
    "LIGHT_FILE",
    "SCHEMA",
    "Settings",
    "cache_root",
    "check_elf",
    "checksum",
    "entry_dir",
    "escape",
    "exec_stored",
    "forget_fresh",
    "fresh_key",
    "mark_used",
    "read_bytes",
    "read_lines",
    "read_record",
    "remember_fresh",
    "snapshot",
    "stats_match",
    "unescape",
    "write_atomically",
    "write_lines",
    "write_record",
]

SCHEMA = 1
LAST_USED = "last-used"
BINDING_FILE = "binding_cffi.py"
LIGHT_FILE = "binding_light.py"  # what a module needs when the fast wrapper serves every function
LIBRARY_FILE = "library.so"
FAST_FILE = f"fast{EXTENSION_SUFFIXES[0]}"  # this interpreter's wrapper, its ABI tag in the name


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _seconds(name: str, value: str | None, default: float) -> float:
    if value is None or not value.strip():
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None


class Settings:
    """How nativeimport builds and caches (immutable).

    A small frozen class rather than a dataclass: every import reads it, and
    importing :mod:`dataclasses` alone costs several ms.

    Attributes:
        cache_dir: root of the build cache; ``None`` means the per-user cache
            directory (``NATIVEIMPORT_CACHE_DIR``).
        verbose: log the compiler commands and why each rebuild happened
            (``NATIVEIMPORT_VERBOSE=1``).
        build_timeout: seconds a single compiler run may take
            (``NATIVEIMPORT_BUILD_TIMEOUT``, default 600).
        lock_timeout: seconds to wait for another process building the same
            source (``NATIVEIMPORT_LOCK_TIMEOUT``, default 900).
        binder: ``"auto"`` (the fast CPython wrapper where it can serve a
            function, cffi for the rest) or ``"cffi"`` (cffi only)
            (``NATIVEIMPORT_BINDER``).
    """

    __slots__ = ("binder", "build_timeout", "cache_dir", "lock_timeout", "verbose")
    cache_dir: str | None
    verbose: bool
    build_timeout: float
    lock_timeout: float
    binder: str

    def __init__(self, cache_dir: os.PathLike[str] | str | None = None, verbose: bool = False,
                 build_timeout: float = 600.0, lock_timeout: float = 900.0, binder: str = "auto") -> None:
        if binder not in ("auto", "cffi"):
            raise ValueError(f"binder must be 'auto' or 'cffi', not {binder!r}")
        set_ = object.__setattr__
        set_(self, "binder", binder)
        set_(self, "cache_dir", os.path.expanduser(os.fspath(cache_dir)) if cache_dir is not None else None)
        set_(self, "verbose", bool(verbose))
        set_(self, "build_timeout", float(build_timeout))
        set_(self, "lock_timeout", float(lock_timeout))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read the environment, then apply the ``overrides`` that are not ``None``."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "cache_dir": env.get("NATIVEIMPORT_CACHE_DIR") or None,
            "verbose": _flag(env.get("NATIVEIMPORT_VERBOSE")),
            "build_timeout": _seconds("NATIVEIMPORT_BUILD_TIMEOUT", env.get("NATIVEIMPORT_BUILD_TIMEOUT"), 600.0),
            "lock_timeout": _seconds("NATIVEIMPORT_LOCK_TIMEOUT", env.get("NATIVEIMPORT_LOCK_TIMEOUT"), 900.0),
            "binder": (env.get("NATIVEIMPORT_BINDER") or "auto").strip().lower(),
        }
        for name, value in overrides.items():
            if name not in cls.__slots__:
                raise TypeError(f"unknown setting {name!r}; settings are {', '.join(cls.__slots__)}")
            if value is not None:
                values[name] = value
        return cls(**values)  # type: ignore[arg-type]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings are immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)


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

    write_atomically(path, json.dumps({"schema": SCHEMA, **data}, indent=1))


def read_lines(path: StrPath, kind: str) -> Optional[list[list[str]]]:
    """The fields of each line of a record written by :func:`write_lines`, or None.

    The records every import reads (freshness, the driver table) are lines of
    space-separated, escaped fields: parsing them needs no module at all.
    """
    try:
        lines = read_bytes(path).decode().split("\n")  # bytes and UTF-8: no codec module to import
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
    write_atomically(path, f"nativeimport-{kind} {SCHEMA}\n{body}\n")


def escape(text: str) -> str:
    """ASCII with no spaces or newlines, reversible by :func:`unescape` (surrogates included)."""
    return text.encode("unicode_escape").decode("ascii").replace(" ", "\\x20") or "\\x00"


def unescape(field: str) -> str:
    if "\\" not in field:  # the common case, without the unicode_escape codec's import
        return field
    return "" if field == "\\x00" else field.encode("latin-1").decode("unicode_escape")


def read_bytes(path: StrPath) -> bytes:
    """A small file's bytes, read through its file descriptor.

    A hit reads several small files, and making a buffered file object costs
    more than reading a few hundred bytes does.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomically(path: StrPath, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it: readers never see half of it."""
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


def checksum(data: bytes) -> str:
    """A cheap checksum of ``data``, the same in every process: for names and damage, not for security.

    The bytes as one integer, reduced modulo two Mersenne primes: unlike hash() it
    is not salted per process, and unlike zlib or hashlib it loads no shared
    library into every process that imports.
    """
    number = int.from_bytes(data, "little")
    return f"{number % _PRIME_61:016x}{number % _PRIME_31:08x}{len(data):x}"


def _checksum(text: str) -> str:
    return checksum(text.encode("utf-8", "surrogateescape"))


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


def check_elf(path: str) -> None:
    """Raise ValueError unless ``path`` holds every byte its ELF headers promise.

    dlopen maps a library's segments from the file; a truncated file makes the
    process die of SIGBUS when a page past its end is touched. Checking the
    headers first turns that into an error the loader recovers from.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        header = os.pread(fd, 64, 0)
        size = os.fstat(fd).st_size
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise ValueError(f"{path} is not a 64-bit little-endian ELF library")
        phoff, shoff = _number(header, 32, 8), _number(header, 40, 8)
        phentsize, phnum = _number(header, 54, 2), _number(header, 56, 2)
        shentsize, shnum = _number(header, 58, 2), _number(header, 60, 2)
        if phoff + phentsize * phnum > size or shoff + shentsize * shnum > size:
            raise ValueError(f"{path} is truncated ({size} bytes)")
        table = os.pread(fd, phentsize * phnum, phoff)
    finally:
        os.close(fd)
    for at in range(0, len(table), phentsize):
        loaded = _number(table, at, 4) == 1  # PT_LOAD
        if loaded and _number(table, at + 8, 8) + _number(table, at + 32, 8) > size:
            raise ValueError(f"{path} is truncated ({size} bytes)")


def _number(data: bytes, at: int, width: int) -> int:
    return int.from_bytes(data[at : at + width], "little")


def exec_stored(entry: str, filename: str) -> Any:
    """Run one of an entry's generated Python files as a fresh module object."""
    module = type(sys)(f"_nativeimport_{filename[:-3]}_{os.path.basename(entry)[:16]}")
    module.__file__ = os.path.join(entry, filename)
    exec(_binding_code(entry, filename), module.__dict__)
    return module


def _binding_code(entry: str, filename: str) -> Any:
    """A generated file's code object, compiled once per interpreter and kept beside it in the entry.

    Kept by nativeimport rather than importlib's __pycache__ so PYTHONDONTWRITEBYTECODE does
    not make every hit recompile; a checksum guards against a damaged file.
    """
    import marshal

    compiled = os.path.join(entry, f"{filename[:-3]}.{sys.implementation.cache_tag}.code")
    try:
        stamp, _, payload = read_bytes(compiled).partition(b"\n")
        if stamp == checksum(payload).encode():
            return marshal.loads(payload)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    source = os.path.join(entry, filename)
    with open(source, "rb") as stream:
        code = compile(stream.read(), source, "exec", dont_inherit=True)
    payload = marshal.dumps(code)
    temporary = f"{compiled}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as stream:
            stream.write(checksum(payload).encode() + b"\n" + payload)
        os.replace(temporary, compiled)
    except OSError:  # a read-only cache: compile again next time
        try:
            os.unlink(temporary)
        except OSError:
            pass
    return code
