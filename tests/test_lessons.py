"""The lessons: each committed notebook was saved from a clean top-to-bottom run, and each
executes afresh in a real Jupyter kernel without an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 600   # seconds; a lesson is meant to finish in under a minute


def _code_cells(path: Path) -> list[dict]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [cell for cell in notebook["cells"]
            if cell["cell_type"] == "code" and "".join(cell["source"]).strip()]


def test_there_are_lessons():
    assert LESSONS, f"no lessons found in {LESSONS_DIR}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_was_saved_executed(path):
    cells = _code_cells(path)
    counts = [cell.get("execution_count") for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: execution counts {counts}"
    errors = [o for cell in cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} holds error outputs: {[e.get('ename') for e in errors]}"
    if int(path.name[:2]) >= 2:
        images = [o for cell in cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{path.name} has no image output (lessons from 02 on show plots)"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_executes(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(LESSONS_DIR)}})
    client.execute()   # raises CellExecutionError, naming the cell, on any error
