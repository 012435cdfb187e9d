"""The lessons: each committed notebook was saved from a clean top-to-bottom run with its exercise
stubs empty, and each executes afresh in a real Jupyter kernel twice: as committed (every check
says "not done yet" and the lesson goes on) and with the answers of lessons/solutions/ put into
the exercise cells (every check passes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minimoe.exercises import NOT_DONE_MESSAGE

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
SOLUTIONS_DIR = LESSONS_DIR / "solutions"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 600   # seconds; a lesson is meant to finish in under a minute
EXERCISE_LINE = re.compile(r"^# EXERCISE (\S+)", re.M)


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"]
            if cell["cell_type"] == "code" and "".join(cell["source"]).strip()]


def exercise_cells(notebook: dict) -> dict[str, dict]:
    """{exercise id: cell} for the cells tagged ``exercise`` (their first line: ``# EXERCISE <id>``)."""
    cells = {}
    for cell in notebook["cells"]:
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            match = EXERCISE_LINE.match("".join(cell["source"]))
            assert match, f"an exercise cell must start with '# EXERCISE <id>': {''.join(cell['source'])[:80]!r}"
            cells[match.group(1)] = cell
    return cells


def solutions(path: Path) -> dict[str, str]:
    """{exercise id: answer source} from lessons/solutions/<lesson>.py, whose blocks each start with
    the line ``# EXERCISE <id>`` of the cell they replace."""
    source = (SOLUTIONS_DIR / f"{path.stem}.py").read_text(encoding="utf-8")
    starts = [m.start() for m in EXERCISE_LINE.finditer(source)]
    blocks = [source[a:b].rstrip() + "\n" for a, b in zip(starts, starts[1:] + [len(source)])]
    return {EXERCISE_LINE.match(block).group(1): block for block in blocks}


def test_there_are_lessons():
    assert LESSONS, f"no lessons found in {LESSONS_DIR}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_was_saved_executed(path):
    notebook = _notebook(path)
    cells = _code_cells(notebook)
    counts = [cell.get("execution_count") for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: execution counts {counts}"
    errors = [o for cell in cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} holds error outputs: {[e.get('ename') for e in errors]}"
    if int(path.name[:2]) >= 2:
        images = [o for cell in cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{path.name} has no image output (lessons from 02 on show plots)"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_exercises_are_committed_as_stubs_with_answers_aside(path):
    notebook = _notebook(path)
    exercises = exercise_cells(notebook)
    if int(path.name[:2]) >= 1:
        assert exercises, f"{path.name} has no exercise for the learner"
    for name, cell in exercises.items():
        assert "raise NotImplementedError" in "".join(cell["source"]), f"{path.name}: exercise {name} ships code"
    if exercises:
        answers = solutions(path)
        assert set(answers) == set(exercises), f"{path.name}: exercises {sorted(exercises)}, answers {sorted(answers)}"
        for name, answer in answers.items():
            assert "raise NotImplementedError" not in answer, f"{path.name}: the answer to {name} is a stub"
        printed = "".join(text for cell in _code_cells(notebook) for o in cell.get("outputs", [])
                          for text in o.get("text", []))
        assert NOT_DONE_MESSAGE in printed, f"{path.name}: the committed run never says an exercise is not done"


def _execute(notebook):
    nbclient = pytest.importorskip("nbclient")
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(LESSONS_DIR)}})
    client.execute()   # raises CellExecutionError, naming the cell, on any error
    return notebook


def _printed(notebook) -> str:
    return "".join("".join(o.get("text", "")) for cell in notebook.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_executes_with_the_stubs_empty(path):
    nbformat = pytest.importorskip("nbformat")
    _execute(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("path", [p for p in LESSONS if (SOLUTIONS_DIR / f"{p.stem}.py").is_file()],
                         ids=lambda p: p.stem)
def test_lesson_executes_with_the_answers_in(path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    answers = solutions(path)
    for name, cell in exercise_cells(notebook).items():
        cell.source = answers[name]
    printed = _printed(_execute(notebook))
    assert NOT_DONE_MESSAGE not in printed, f"{path.name}: with the answers in, a check still says not done"
