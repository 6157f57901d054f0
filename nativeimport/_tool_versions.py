"""What a tool printed for ``--version``, remembered in the cache while the tool's files are unchanged.

Each probe is a process (5-30 ms: ``gcc --version``, ``rustc -vV``), and a
build asks again in every new process. A build names the cache's folder for
these records (:func:`use_directory`); :func:`nativeimport.driver.tool_version`
then reads a record before running anything. A record holds the stat of every
file the command names (the program and, for ``ccache gcc`` or ``zig cc``,
the words after it that are programs on PATH), taken before the tool ran: a
tool replaced or upgraded since has another inode or ctime, and is asked again.
"""

from __future__ import annotations

import os

from ._child import find_executable
from ._records import make_private_dirs, read_record, snapshot, stats_match, text_checksum, write_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Optional

__all__ = ["probe", "use_directory"]

_directory: list[str] = []  # the folder records go in, once a build named it (a list: no `global`)


def use_directory(directory: Optional[str]) -> None:
    """Remember probes under ``directory`` (created when first written) from now on in this process;
    None: ask the tools every time again."""
    _directory[:] = [directory] if directory is not None else []


def probe(command: Sequence[str], flag: str, run: Callable[[], str]) -> str:
    """``run()``'s answer (what ``command flag`` prints), from the record when the tool is unchanged."""
    if not _directory:
        return run()
    path = os.path.join(_directory[0], f"version-{text_checksum(chr(0).join([flag, *command]))}.json")
    files = _files(command)  # resolved now: `cc` switched to another compiler (alternatives) is another file
    record = read_record(path)
    if (record is not None and files and record.get("command") == [*command] and record.get("flag") == flag
            and [row[0] for row in record.get("stats", ())] == files and stats_match(record["stats"])):
        return str(record["output"])
    stats = snapshot(files)  # before running: a tool replaced meanwhile leaves a record that no longer matches
    output = run()
    if output and stats:  # a tool that failed or printed nothing is asked again next time
        try:
            make_private_dirs(_directory[0])
            write_record(path, {"command": [*command], "flag": flag, "stats": stats, "output": output})
        except OSError:
            pass  # a read-only cache: the next build asks the tool again
    return output


def _files(command: Sequence[str]) -> list[str]:
    """The real path of each file the command runs: its program, and later words naming programs on PATH
    (none if the program is not found)."""
    files = []
    for index, word in enumerate(command):
        if word.startswith("-"):
            continue
        found = word if index == 0 and os.path.isabs(word) else find_executable(word)
        if found is not None:
            files.append(os.path.realpath(found))
        elif index == 0:
            return []
    return files
