"""Doc comments: the comment written directly above a declaration in a source file.

A leaf module: :mod:`nativeimport.driver` publishes :func:`doc_comment_above`
for driver authors and :mod:`nativeimport.dwarf` uses it, neither importing
the other.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["doc_comment_above"]


def doc_comment_above(path: Path, line: int) -> str:
    """The comment written directly above line ``line`` (1-based) of ``path``.

    Recognises a ``/* ... */`` block starting its line and runs of ``//`` or
    ``///`` lines, which covers C, Rust, Zig and most C-like languages. Attributes
    between the comment and the declaration (``#[no_mangle]``) are skipped.
    """
    try:
        info = os.stat(path)
        lines = _lines(str(path), info.st_mtime_ns, info.st_size)
    except OSError:
        return ""
    index = line - 2
    while 0 <= index < len(lines) and lines[index].strip().startswith("#["):
        index -= 1
    if not 0 <= index < len(lines):
        return ""
    text = lines[index].strip()
    if text.endswith("*/"):
        block: list[str] = []
        while index >= 0:
            block.insert(0, lines[index].strip())
            if "/*" in lines[index]:
                break
            index -= 1
        if not block[0].startswith("/*"):
            return ""  # a comment trailing code on its line documents that code, not this declaration
        joined = "\n".join(block)
        joined = joined[joined.find("/*") + 2 : joined.rfind("*/")]
        cleaned = [part.strip().lstrip("*!").strip() for part in joined.strip("*!").splitlines()]
        return "\n".join(cleaned).strip()
    comment: list[str] = []
    while index >= 0 and lines[index].strip().startswith("//"):
        comment.insert(0, lines[index].strip().lstrip("/!").strip())
        index -= 1
    return "\n".join(comment).strip()


@functools.lru_cache(maxsize=8)
def _lines(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    # One read per source and version, however many exports ask: a source with thousands of exports
    # was read once per export. The stat is in the key, so an edited file is read again.
    return tuple(Path(path).read_text(encoding="utf-8", errors="replace").splitlines())
