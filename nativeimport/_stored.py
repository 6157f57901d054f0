"""Reading an entry's stored artefacts safely: libraries checked whole before ``dlopen``, generated
Python code compiled once per interpreter and checksummed.

Both run on every cache hit, so this module imports only what Python has
loaded at start-up (``marshal`` is built in).
"""

from __future__ import annotations

import os
import sys

from ._entry import is_shipped, stored_code
from ._records import checksum, read_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["check_elf", "code_record", "exec_stored"]


def check_elf(path: str) -> None:
    """Raise ValueError unless ``path`` holds every byte its ELF headers promise.

    dlopen maps a library's segments from the file; a truncated file makes the
    process die of SIGBUS when a page past its end is touched. Checking the
    headers first turns that into an error the loader recovers from.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        header = os.pread(fd, 4096, 0)  # the program headers follow the ELF header: one read usually holds both
        size = os.fstat(fd).st_size
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise ValueError(f"{path} is not a 64-bit little-endian ELF library")
        phoff, shoff = _number(header, 32, 8), _number(header, 40, 8)
        phentsize, phnum = _number(header, 54, 2), _number(header, 56, 2)
        shentsize, shnum = _number(header, 58, 2), _number(header, 60, 2)
        if phoff + phentsize * phnum > size or shoff + shentsize * shnum > size:
            raise ValueError(f"{path} is truncated ({size} bytes)")
        end = phoff + phentsize * phnum
        table = header[phoff:end] if end <= len(header) else os.pread(fd, phentsize * phnum, phoff)
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
    exec(_code(entry, filename), module.__dict__)
    return module


def _code(entry: str, filename: str) -> Any:
    """A generated file's code object, compiled once per interpreter and kept beside it in the entry.

    Kept by nativeimport rather than importlib's __pycache__ so PYTHONDONTWRITEBYTECODE does
    not make every hit recompile; a checksum guards against a damaged file. An entry shipped
    in a package is never written (the wheel brings the building interpreter's code).
    """
    import marshal

    compiled = stored_code(entry, filename)
    try:
        stamp, _, payload = read_bytes(compiled).partition(b"\n")
        if stamp == checksum(payload).encode():
            return marshal.loads(payload)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    source = os.path.join(entry, filename)
    with open(source, "rb") as stream:
        code = compile(stream.read(), source, "exec", dont_inherit=True)
    if is_shipped(entry):
        return code  # not ours to write: an installed package, maybe read-only, its files listed by the installer
    temporary = f"{compiled}.{os.getpid()}.tmp"
    try:
        # private whatever the umask: code another user could rewrite would run as us
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as stream:
            stream.write(code_record(code))
        os.replace(temporary, compiled)
    except OSError:  # a read-only cache: compile again next time
        try:
            os.unlink(temporary)
        except OSError:
            pass
    return code


def code_record(code: Any) -> bytes:
    """What :func:`exec_stored` keeps of a code object: a checksum line, then the marshalled code."""
    import marshal

    payload = marshal.dumps(code)
    return checksum(payload).encode() + b"\n" + payload
