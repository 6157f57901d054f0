"""Jupyter: real notebooks executed by a real kernel (nbclient + ipykernel)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="the jupyter test dependencies are not installed")
nbclient = pytest.importorskip("nbclient", reason="the jupyter test dependencies are not installed")

NOTEBOOKS = Path(__file__).parent / "notebooks"


def execute(name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a notebook from tests/notebooks in ``folder`` with a private cache; return it executed."""
    monkeypatch.setenv("NATIVEIMPORT_CACHE_DIR", str(folder / "cache"))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook


def outputs(cell: Any) -> str:
    return "".join(o.get("text", "") + o.get("evalue", "") for o in cell.get("outputs", []))


def test_cells_define_redefine_and_name_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute("cells.ipynb", tmp_path, monkeypatch)
    warning_cell = next(c for c in notebook.cells if "#warning" in c.source)
    assert "a warning from the cell" in outputs(warning_cell)
    assert list((tmp_path).iterdir()) == [tmp_path / "cache"], "nothing is written beside the notebook"


def test_cells_rerun_are_cache_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    execute("cells.ipynb", tmp_path, monkeypatch)
    entries = sorted((tmp_path / "cache" / "entries").iterdir())
    notebook = execute("cells.ipynb", tmp_path, monkeypatch)
    assert sorted((tmp_path / "cache" / "entries").iterdir()) == entries
    assert not any("built" in outputs(c) for c in notebook.cells)


def test_file_modules_reload_and_are_picked_up_before_the_next_cell(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute("files.ipynb", tmp_path, monkeypatch)
    notes = [outputs(c) for c in notebook.cells]
    assert any("reloaded counter (counter.c changed)" in text for text in notes)
    broken = next(i for i, c in enumerate(notebook.cells) if "oops" in c.source)
    assert "counter changed but did not rebuild" in notes[broken + 1]
    assert "counter.c:1:" in notes[broken + 1]


def test_a_compile_error_stops_run_all_with_cell_line_numbers(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(nbclient.exceptions.CellExecutionError) as failure:
        execute("compile_error.ipynb", tmp_path, monkeypatch)
    message = str(failure.value)
    assert "cell:3:12: error:" in message  # line 3 of the cell's code, not of some file in the cache
    assert "nope" in message
    assert "Traceback" not in message
    assert "Run All must stop" not in message


@pytest.mark.skipif(shutil.which("rustc") is None, reason="rustc is not installed (https://rustup.rs)")
def test_rust_and_zig_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ziglang", reason="the ziglang wheel is not installed (pip install nativeimport[zig])")
    execute("rust_zig.ipynb", tmp_path, monkeypatch)
