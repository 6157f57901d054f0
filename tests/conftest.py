"""Shared fixtures: every import runs in a fresh interpreter with its own cache directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Runner, make_environment

ROOT = Path(__file__).parents[1]


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    project = tmp_path / "project"
    project.mkdir()
    return Runner(project, tmp_path / "cache")


# Session-wide, shared by every module that runs code under PyPy: one wheel, one PyPy environment.
@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT)],
                   check=True, capture_output=True)
    (built,) = folder.glob("nativeimport-*.whl")
    return built


@pytest.fixture(scope="session")
def pypy(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    if shutil.which("pypy3") is None:
        pytest.skip("PyPy is not installed (Debian: apt-get install pypy3 pypy3-venv)")
    return make_environment("pypy3", tmp_path_factory.mktemp("pypy") / "venv", wheel, extras="[zig]")
