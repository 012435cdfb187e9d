"""The lessons, run as a learner would run them, three ways:

1. as committed: every exercise stub empty, every check says "not done yet", the lesson goes on
   with the library's version, and no cell fails;
2. with the answers of lessons/solutions/ in: every check passes, and none says "not done yet".
   In the same run, before its answer goes in, every plausible wrong answer of
   tests/lesson_mistakes/ is put into its exercise cell and the exercise's check cells run: one of
   them must reject it with an ExerciseError;
3. with every exercise wrong (its first wrong answer): each exercise's checks reject it with an
   ExerciseError naming it, and every other cell of the lesson, before and after, still runs. A
   wrong answer never breaks a later cell.

Conventions (docs/design.md, "Lessons"): an exercise cell is tagged ``exercise`` and starts with
``# EXERCISE <id>``; the cells that check it are tagged ``check`` and follow it, before the next
exercise cell. lessons/solutions/<lesson>.py holds one answer block per exercise, starting with the
same line; tests/lesson_mistakes/<lesson>.py holds the wrong answers, each block starting with
``# MISTAKE <id>: <what is wrong>`` followed by the cell's source.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from minimoe.exercises import NOT_DONE_MESSAGE

from .helpers import real_test_file

ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "lessons"
SOLUTIONS_DIR = LESSONS_DIR / "solutions"
MISTAKES_DIR = Path(__file__).resolve().parent / "lesson_mistakes"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 600   # seconds; a lesson is meant to finish in under a minute
EXERCISE_LINE = re.compile(r"^# EXERCISE (\S+)", re.M)
MISTAKE_LINE = re.compile(r"^# MISTAKE (\S+): (.+)$", re.M)


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"]
            if cell["cell_type"] == "code" and "".join(cell["source"]).strip()]


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def exercise_cells(notebook: dict) -> dict[str, dict]:
    """{exercise id: cell} for the cells tagged ``exercise`` (their first line: ``# EXERCISE <id>``)."""
    cells = {}
    for cell in notebook["cells"]:
        if "exercise" in _tags(cell):
            match = EXERCISE_LINE.match("".join(cell["source"]))
            assert match, f"an exercise cell must start with '# EXERCISE <id>': {''.join(cell['source'])[:80]!r}"
            cells[match.group(1)] = cell
    return cells


def check_cells(notebook: dict) -> dict[str, list[int]]:
    """{exercise id: indices of its check cells}: the cells tagged ``check`` after its exercise
    cell and before the next one."""
    checks, current = {}, None
    for index, cell in enumerate(notebook["cells"]):
        if "exercise" in _tags(cell):
            current = EXERCISE_LINE.match("".join(cell["source"])).group(1)
            checks[current] = []
        elif "check" in _tags(cell):
            assert current is not None, f"a check cell before any exercise: {''.join(cell['source'])[:80]!r}"
            checks[current].append(index)
    return checks


def _blocks(path: Path, start: re.Pattern) -> list[tuple[re.Match, str]]:
    source = path.read_text(encoding="utf-8")
    starts = list(start.finditer(source))
    ends = [m.start() for m in starts[1:]] + [len(source)]
    return [(m, source[m.end():end].strip("\n") + "\n") for m, end in zip(starts, ends)]


def solutions(path: Path) -> dict[str, str]:
    """{exercise id: answer source} from lessons/solutions/<lesson>.py, whose blocks each start with
    the line ``# EXERCISE <id>`` of the cell they replace."""
    blocks = _blocks(SOLUTIONS_DIR / f"{path.stem}.py", EXERCISE_LINE)
    return {m.group(1): m.group(0) + "\n" + body for m, body in blocks}


def mistakes(path: Path) -> dict[str, list[tuple[str, str]]]:
    """{exercise id: [(what is wrong, cell source)]} from tests/lesson_mistakes/<lesson>.py."""
    found = {}
    file = MISTAKES_DIR / f"{path.stem}.py"
    for match, body in (_blocks(file, MISTAKE_LINE) if file.is_file() else []):
        found.setdefault(match.group(1), []).append((match.group(2), body))
    return found


@pytest.fixture(autouse=True)
def census_data(monkeypatch):
    """Lesson 06 reads the Census-Income file the way a user's code does (``$MINIMOE_DATA``); the
    kernels inherit this process's environment."""
    found = real_test_file()
    if found is not None:
        monkeypatch.setenv("MINIMOE_DATA", str(found.parent))


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
def test_exercises_are_stubs_with_checks_answers_and_wrong_answers_aside(path):
    notebook = _notebook(path)
    exercises = exercise_cells(notebook)
    if int(path.name[:2]) >= 1:
        assert exercises, f"{path.name} has no exercise for the learner"
    for name, cell in exercises.items():
        assert "raise NotImplementedError" in "".join(cell["source"]), f"{path.name}: exercise {name} ships code"
    if not exercises:
        return
    checks = check_cells(notebook)
    assert all(checks[name] for name in exercises), f"{path.name}: exercises without a check cell: " \
        f"{[name for name in exercises if not checks[name]]}"
    answers = solutions(path)
    assert set(answers) == set(exercises), f"{path.name}: exercises {sorted(exercises)}, answers {sorted(answers)}"
    for name, answer in answers.items():
        assert "raise NotImplementedError" not in answer, f"{path.name}: the answer to {name} is a stub"
    wrong = mistakes(path)
    unknown = set(wrong) - set(exercises)
    assert not unknown, f"{path.name}: wrong answers for unknown exercises {unknown}"
    too_few = {name: len(wrong.get(name, [])) for name in exercises if len(wrong.get(name, [])) < 2}
    assert not too_few, f"{path.name}: every exercise needs at least two wrong answers, have {too_few}"
    for name, entries in wrong.items():
        for what, source in entries:
            assert EXERCISE_LINE.match(source) and EXERCISE_LINE.match(source).group(1) == name, \
                f"{path.name}: the wrong answer '{what}' must start with '# EXERCISE {name}'"
    printed = "".join(text for cell in _code_cells(notebook) for o in cell.get("outputs", [])
                      for text in o.get("text", []))
    assert NOT_DONE_MESSAGE in printed, f"{path.name}: the committed run never says an exercise is not done"


# -- running them ----------------------------------------------------------------------------

def _client(notebook, allow_errors: bool = False):
    nbclient = pytest.importorskip("nbclient")
    return nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=allow_errors,
                                   resources={"metadata": {"path": str(LESSONS_DIR)}})


def _printed(notebook) -> str:
    return "".join("".join(o.get("text", "")) for cell in notebook.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []))


def _errors(cell) -> list[str]:
    return [o.get("ename", "?") for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_executes_with_the_stubs_empty(path):
    nbformat = pytest.importorskip("nbformat")
    _client(nbformat.read(path, as_version=4)).execute()   # raises CellExecutionError, naming the cell


@pytest.mark.parametrize("path", [p for p in LESSONS if (SOLUTIONS_DIR / f"{p.stem}.py").is_file()],
                         ids=lambda p: p.stem)
def test_lesson_executes_with_the_answers_in_and_rejects_every_wrong_answer(path):
    """One kernel: each exercise first gets each of its wrong answers (its check cells must raise
    an ExerciseError), then its answer, and the lesson goes on."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    answers, wrong, checks = solutions(path), mistakes(path), check_cells(notebook)
    client = _client(notebook)
    accepted = []
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if "exercise" in _tags(cell):
                name = EXERCISE_LINE.match(cell.source).group(1)
                for what, source in wrong.get(name, []):
                    client.execute_cell(nbformat.v4.new_code_cell(source), index)
                    raised = []
                    for check in checks[name]:
                        try:
                            client.execute_cell(copy.deepcopy(notebook.cells[check]), check)
                        except CellExecutionError as error:
                            raised.append(error.ename)
                            break
                    if "ExerciseError" not in raised:
                        accepted.append(f"{name}: {what} (raised {raised or 'nothing'})")
                cell.source = answers[name]
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
    assert not accepted, f"{path.name}: wrong answers its checks accepted: {accepted}"
    assert NOT_DONE_MESSAGE not in _printed(notebook), f"{path.name}: with the answers in, a check says not done"


@pytest.mark.parametrize("path", [p for p in LESSONS if exercise_cells(_notebook(p))], ids=lambda p: p.stem)
def test_wrong_answers_break_no_other_cell(path):
    """Every exercise gets its first wrong answer at once. Each exercise's own check cells reject it
    with an ExerciseError that names the exercise; every other cell, before and after, still runs.
    (One run per lesson rather than one per exercise: a cascade shows up either way, as an error in
    a cell that is not a check, or as a check failing with something other than its own
    ExerciseError.)"""
    nbformat = pytest.importorskip("nbformat")
    wrong = mistakes(path)
    notebook = nbformat.read(path, as_version=4)
    names = exercise_cells(_notebook(path))
    missing = [name for name in names if not wrong.get(name)]
    assert not missing, f"{path.name}: exercises with no wrong answer in tests/lesson_mistakes/: {missing}"
    for cell in notebook.cells:
        if "exercise" in _tags(cell):
            cell.source = wrong[EXERCISE_LINE.match(cell.source).group(1)][0][1]
    _client(notebook, allow_errors=True).execute()
    checks = check_cells(notebook)
    owner = {index: name for name, indices in checks.items() for index in indices}
    problems = []
    for name in names:
        said = [o.get("evalue", "") for index in checks[name] for o in notebook.cells[index].get("outputs", [])
                if o.get("output_type") == "error" and o.get("ename") == "ExerciseError"]
        if not any(name in text for text in said):
            problems.append(f"{name}: its checks did not reject '{wrong[name][0][0]}' with an ExerciseError "
                            f"naming the exercise (said: {said})")
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or not _errors(cell):
            continue
        if index not in owner or _errors(cell) != ["ExerciseError"]:
            problems.append(f"cell {index} ({'check of ' + owner[index] if index in owner else 'not a check'}) "
                            f"failed with {_errors(cell)}: {cell.source[:60]!r}")
    assert not problems, f"{path.name}, every exercise wrong:\n" + "\n".join(problems)
