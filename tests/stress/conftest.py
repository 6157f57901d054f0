"""The stress suite: real subprocesses, real compilers, failures on purpose. Prints what it counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from stress_helpers import COUNTS, StressRunner


@pytest.fixture
def stress(tmp_path: Path) -> StressRunner:
    project = tmp_path / "project"
    project.mkdir()
    return StressRunner(project, tmp_path / "cache", tmp_path / "tools")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.section("nativeimport stress counts")
        for name, value in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name}: {value}")
