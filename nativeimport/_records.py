"""What nativeimport writes to disk and reads back: record formats, atomic writes, stats, a checksum.

Every native import reads a record or two, so this module imports only what
Python has loaded at start-up; ``json`` (which imports ``re``) and
``tempfile`` load only where a build or the CLI needs them. Every record
carries :data:`SCHEMA`: a record of another schema reads as missing.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at run time; only the type checker needs it
    from collections.abc import Sequence
    from typing import Any, Optional, Union

    Snapshot = list[list[Any]]
    StrPath = Union[str, os.PathLike[str]]

__all__ = [
    "SCHEMA",
    "checksum",
    "escape",
    "first_changed",
    "read_bytes",
    "read_lines",
    "read_record",
    "snapshot",
    "stats_match",
    "text_checksum",
    "unescape",
    "write_atomically",
    "write_lines",
    "write_record",
]

SCHEMA = 1


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
    return first_changed(recorded) is None


def first_changed(recorded: Sequence[Sequence[Any]]) -> Optional[str]:
    """The first path of ``recorded`` (path, mtime_ns, size) whose stat no longer matches, else None.

    A file recorded as missing (None) matches while it is still missing.
    """
    for name, mtime_ns, size in recorded:
        try:
            info = os.stat(name)
        except OSError:
            if mtime_ns is None or mtime_ns == "None":
                continue  # absent when recorded, absent now
            return str(name)
        if str(info.st_mtime_ns) != str(mtime_ns) or str(info.st_size) != str(size):
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
