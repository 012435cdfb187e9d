"""PyTorch is optional: the NumPy core never imports it, minimoe.torch without it says what to
install, and lesson 13 without it says so and skips its cells. Each runs in a fresh interpreter
(or kernel), whether or not torch is installed here."""

import subprocess
import sys
from pathlib import Path

import pytest

LESSON_13 = Path(__file__).resolve().parent.parent / "lessons" / "13_from_numpy_to_pytorch.ipynb"

CORE_WITHOUT_TORCH = """
import sys
import minimoe, minimoe.analysis, minimoe.cli, minimoe.exercises, minimoe.gradcheck, minimoe.studies.funnel
assert "torch" not in sys.modules, "importing minimoe imported torch"
"""

TORCH_MISSING = """
import sys
sys.modules["torch"] = None                       # what a Python without PyTorch does on `import torch`
try:
    import minimoe.torch
except ImportError as error:
    print(error)
else:
    raise SystemExit("minimoe.torch imported without torch")
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_minimoe_never_imports_torch():
    result = _run(CORE_WITHOUT_TORCH)
    assert result.returncode == 0, result.stderr


def test_minimoe_torch_without_torch_says_what_to_install():
    result = _run(TORCH_MISSING)
    assert result.returncode == 0, result.stderr
    assert 'pip install -e ".[torch]"' in result.stdout


def test_lesson_13_without_torch_says_so_and_skips_every_cell():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(LESSON_13, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell('import sys\nsys.modules["torch"] = None   # no PyTorch'))
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(LESSON_13.parent)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    printed = ["".join(output.get("text", "")) for cell in code for output in cell.outputs]
    assert 'pip install -e ".[torch]"' in printed[0] and "skipped" in printed[0]
    assert all(not cell.outputs for cell in code[2:]), "a cell after the first ran without PyTorch"
