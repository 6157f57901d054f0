"""What nativeimport writes to disk and reads back: record formats, atomic writes, stats, a checksum.

Every native import reads a record or two, so this module imports only what
Python has loaded at start-up; ``json`` (which imports ``re``) loads only
where a build or the CLI needs it, ``tempfile`` not even there. Every record
carries :data:`SCHEMA`: a record of another schema reads as missing.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at run time; only the type checker needs it
    from collections.abc import Callable, Sequence
    from typing import Any, Optional, Union

    Snapshot = list[list[Any]]
    StrPath = Union[str, os.PathLike[str]]

__all__ = [
    "ABSENT",
    "SCHEMA",
    "checksum",
    "content_digest",
    "escape",
    "first_changed",
    "make_private_dirs",
    "read_bytes",
    "read_lines",
    "read_record",
    "sha256",
    "snapshot",
    "stats_match",
    "text_checksum",
    "unescape",
    "write_atomically",
    "write_lines",
    "write_record",
]

SCHEMA = 1
ABSENT = "absent"  # the content digest of a file that does not exist (a header whose absence a build relies on)


def content_digest(path: StrPath) -> str:
    """sha256 of a file's bytes (hex), :data:`ABSENT` when there is no such file: what keys are made of."""
    try:
        return str(_sha256()(read_bytes(path)).hexdigest())
    except (FileNotFoundError, NotADirectoryError):
        return ABSENT
    except OSError:  # a directory now, unreadable: matches no digest
        return "unreadable"


def sha256(data: bytes = b"") -> Any:
    """A sha256 hash object of ``data`` (hashlib's interface), without importing hashlib (see :func:`_sha256`)."""
    return _sha256()(data)


def _sha256() -> Any:
    """The sha256 constructor of the interpreter's own module: hashlib loads OpenSSL first (~10x the time),
    which every import under NATIVEIMPORT_VERIFY would pay for a few small files."""
    for module in ("_sha256", "_sha2"):  # CPython up to 3.11 and PyPy; CPython 3.12+
        try:
            return __import__(module).sha256
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256


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
        # Most lines hold no escape at all: split as they are, without a call per field.
        return [line.split(" ") if "\\" not in line else [unescape(field) for field in line.split(" ")]
                for line in lines[1:] if line]
    except (UnicodeError, ValueError):
        return None


def write_lines(path: StrPath, kind: str, rows: Union[list[list[str]], Callable[[int], list[list[str]]]]) -> None:
    """Write a record of escaped fields atomically; ``rows`` may depend on the time of writing (see
    :func:`write_atomically`)."""

    def text(now: int) -> str:
        body = "\n".join(" ".join(escape(field) for field in row) for row in (rows if isinstance(rows, list)
                                                                               else rows(now)))
        return f"nativeimport-{kind} {SCHEMA}\n{body}\n"

    write_atomically(path, text)


def escape(text: str) -> str:
    """ASCII with no spaces or newlines, reversible by :func:`unescape` (surrogates included)."""
    return text.encode("unicode_escape").decode("ascii").replace(" ", "\\x20") or "\\x00"


def unescape(field: str) -> str:
    """The text :func:`escape` was given."""
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


def write_atomically(path: StrPath, text: Union[str, bytes, Callable[[int], str]]) -> None:
    """Write ``text`` (or bytes) to ``path`` through a temporary file renamed over it: readers never see half.

    ``text`` may be a function of the time the file is written, as the file
    system's clock gives it (the new file's ctime in ns): what a record
    compares its files' timestamps with. The file is private (0600).
    """
    directory = os.path.dirname(os.fspath(path))
    make_private_dirs(directory)
    fd, temporary = _new_private_file(directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            content = text(os.fstat(fd).st_ctime_ns) if callable(text) else text
            stream.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _new_private_file(directory: str) -> tuple[int, str]:
    """(descriptor, path) of a new file only we can read, ``<directory>/.tmp-<random>``: ``tempfile.mkstemp``'s
    work, without importing tempfile (with random, shutil, bz2, lzma: ~3 ms of a new module's import)."""
    while True:
        path = os.path.join(directory, f".tmp-{os.urandom(6).hex()}")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0),
                           0o600), path
        except FileExistsError:
            continue


def new_private_directory(parent: str, prefix: str) -> str:
    """A new directory only we can enter, ``<parent>/<prefix><random>``: ``tempfile.mkdtemp``'s work, without
    importing tempfile (with random, shutil, bz2, lzma) on a new module's import."""
    while True:
        path = os.path.join(parent, f"{prefix}{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def make_private_dirs(path: str) -> None:
    """``os.makedirs`` with every directory it creates 0700 whatever the umask.

    ``os.makedirs(mode=...)`` gives the mode to the last directory only; the
    ones above it get ``0777 & ~umask``, which under ``umask 0`` lets anyone
    swap what they hold.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        make_private_dirs(parent)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass


def snapshot(files: Sequence[StrPath]) -> Snapshot:
    """[path, mtime_ns, size, inode, ctime_ns] of each file (four Nones when missing).

    Not only (mtime, size): an edit that keeps the size and restores the mtime
    (``touch -r``, ``tar``), or a symbolic link switched to a same-size twin,
    changes the inode or the ctime, which no one can set back.
    """
    result: Snapshot = []
    for name in files:
        try:
            info = os.stat(name)
            result.append([os.fspath(name), info.st_mtime_ns, info.st_size, info.st_ino, info.st_ctime_ns])
        except OSError:
            result.append([os.fspath(name), None, None, None, None])
    return result


def stats_match(recorded: Sequence[Sequence[Any]]) -> bool:
    """Whether every row of a :func:`snapshot` still holds; numbers may be ints or their text."""
    return first_changed(recorded) is None


def first_changed(recorded: Sequence[Sequence[Any]]) -> Optional[str]:
    """The first path of ``recorded`` (rows of :func:`snapshot`) whose stat no longer matches, else None.

    A file recorded as missing matches while it is still missing. A row of
    another shape (an older record) never matches.
    """
    for row in recorded:
        name = row[0]
        if len(row) != 5:
            return str(name)
        try:
            info = os.stat(name)
        except OSError:
            if str(row[1]) == "None":
                continue
            return str(name)
        # one comparison of texts per file (numbers have no spaces): a hit checks dozens of headers
        now = f"{info.st_ctime_ns} {info.st_mtime_ns} {info.st_size} {info.st_ino}"
        if now != f"{row[4]} {row[1]} {row[2]} {row[3]}":
            return str(name)
    return None


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


def text_checksum(text: str) -> str:
    """:func:`checksum` of a text (paths included, whatever their encoding)."""
    return checksum(text.encode("utf-8", "surrogateescape"))
