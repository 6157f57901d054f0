"""Shared fixtures: every import runs in a fresh interpreter with its own cache directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Runner


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    project = tmp_path / "project"
    project.mkdir()
    return Runner(project, tmp_path / "cache")
