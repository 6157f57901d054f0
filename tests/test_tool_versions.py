"""A tool's ``--version``, remembered in the cache during a build, is asked again when the tool changes."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from nativeimport import _tool_versions
from nativeimport.driver import tool_version


def _tool(path: Path, version: str, log: Path) -> None:
    """A program printing ``version`` and adding a line to ``log`` each time it runs."""
    path.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo run >> {log}
        echo "faketool {version}"
        """), encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def remembered(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "versions"
    _tool_versions.use_directory(str(folder))
    yield folder
    _tool_versions.use_directory(None)  # other tests in this process ask their tools afresh


def _runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_probe_runs_once_until_the_tool_changes(tmp_path: Path, remembered: Path) -> None:
    tool, log = tmp_path / "faketool", tmp_path / "runs.log"
    _tool(tool, "1.0", log)
    assert tool_version([str(tool)]) == "faketool 1.0"
    assert tool_version([str(tool)]) == "faketool 1.0"
    assert _runs(log) == 1  # the second answer came from the record
    assert tool_version([str(tool)], "-vV") == "faketool 1.0"  # another flag is another probe
    assert _runs(log) == 2
    _tool(tool, "2.0.1", log)  # upgraded in place: the same path and inode, another size and ctime
    assert tool_version([str(tool)]) == "faketool 2.0.1"
    assert _runs(log) == 3
    replacement = tmp_path / "faketool.new"
    _tool(replacement, "3.0", log)
    os.replace(replacement, tool)  # replaced by a rename, as package managers do: another inode
    assert tool_version([str(tool)]) == "faketool 3.0"
    assert tool_version([str(tool)]) == "faketool 3.0"
    assert _runs(log) == 4


def test_a_symlink_pointed_elsewhere_is_asked_again(tmp_path: Path, remembered: Path) -> None:
    log = tmp_path / "runs.log"
    first, second, link = tmp_path / "tool-a", tmp_path / "tool-b", tmp_path / "cc"
    _tool(first, "a", log)
    _tool(second, "b", log)
    link.symlink_to(first)
    assert tool_version([str(link)]) == "faketool a"
    link.unlink()
    link.symlink_to(second)  # `update-alternatives`: the same name, another compiler
    assert tool_version([str(link)]) == "faketool b"
    assert _runs(log) == 2


def test_without_a_cache_every_probe_runs(tmp_path: Path) -> None:
    tool, log = tmp_path / "faketool", tmp_path / "runs.log"
    _tool(tool, "1.0", log)
    assert tool_version([str(tool)]) == tool_version([str(tool)]) == "faketool 1.0"
    assert _runs(log) == 2


def test_a_failing_tool_is_not_remembered(tmp_path: Path, remembered: Path) -> None:
    assert tool_version([str(tmp_path / "missing")]) == ""
    assert not remembered.exists() or not any(remembered.iterdir())
