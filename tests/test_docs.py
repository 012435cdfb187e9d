"""Every fenced ```python block of README.md and docs/*.md runs here.

Each block is one test, named by its file and the line of its opening fence (``README.md:L76``).
The blocks of a file run once each, in file order, in one namespace shared by that file (a later
block may use what an earlier one defined), with a fresh temporary folder as the working directory
and matplotlib on its Agg backend. A block after a failed one fails too, naming the block that broke.

A docs author marks a block with an HTML comment on the line directly above its opening fence:

    <!-- docs-test: skip (why it cannot run here) -->
        never run; the reason is required and shows in the skip summary of ``pytest -ra``.
    <!-- docs-test: needs census data -->
        run with $MINIMOE_DATA set to the folder holding census-income.test(.gz) (found by
        ``tests/helpers.py: real_test_file``); skipped, saying so, where there is no such file.

Any other marker fails the block's test. The names a skipped block defines are missing for the
blocks after it, so a later block must not rely on them.
"""

import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .helpers import real_test_file

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(\s*)```\s*python\s*$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:(.*?)-->\s*$")
SKIP = re.compile(r"^skip\s*\((.*\S.*)\)$")
NEEDS_CENSUS = "needs census data"


@dataclass(frozen=True)
class Block:
    file: str                   # the doc file, relative to the repository root
    line: int                   # the line of the opening fence, from 1
    code: str
    marker: str | None = None   # the docs-test directive directly above the fence, if any

    def __str__(self) -> str:
        return f"{self.file}:L{self.line}"


def extract_blocks(text: str, file: str) -> list[Block]:
    """The ```python blocks of a Markdown text, in order, each with the marker directly above it."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        start, indent = i, len(opening.group(1))
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        if i == len(lines):
            raise ValueError(f"{file}:L{start + 1}: the ```python block is never closed")
        marker = MARKER.match(lines[start - 1]) if start > 0 else None
        code = "\n".join(line[indent:] for line in lines[start + 1:i])
        blocks.append(Block(file, start + 1, code, marker.group(1).strip() if marker else None))
        i += 1
    return blocks


def skip_reason(block: Block) -> str | None:
    """Why the block is not run here, or None to run it; ValueError for a marker not listed above."""
    if block.marker is None:
        return None
    skip = SKIP.match(block.marker)
    if skip:
        return skip.group(1).strip()
    if block.marker == NEEDS_CENSUS:
        return None if real_test_file() else "needs the Census-Income file (census-income.test.gz)"
    raise ValueError(f"{block}: unknown marker <!-- docs-test: {block.marker} -->; a skip must say why, "
                     f"as in <!-- docs-test: skip (reason) -->, or use <!-- docs-test: {NEEDS_CENSUS} -->")


BLOCKS_OF = {path.relative_to(ROOT).as_posix(): extract_blocks(path.read_text(encoding="utf-8"),
                                                                path.relative_to(ROOT).as_posix())
             for path in DOC_FILES}
BLOCKS = [block for blocks in BLOCKS_OF.values() for block in blocks]


@dataclass
class FileRun:
    """The blocks of one file run so far: their shared namespace and each one's (status, detail)."""

    workdir: Path
    namespace: dict = field(default_factory=lambda: {"__name__": "__main__"})
    outcomes: list = field(default_factory=list)


RUNS: dict[str, FileRun] = {}   # file -> its run, shared by the tests of that file's blocks


def run_block(block: Block, run: FileRun) -> tuple[str, str]:
    """("passed" | "skipped" | "failed", detail) of running ``block`` in its file's namespace."""
    failed = [str(earlier) for earlier, (status, _) in zip(BLOCKS_OF[block.file], run.outcomes)
              if status == "failed"]
    if failed:
        return "failed", f"{block} was not run: an earlier block of this file failed ({failed[0]})"
    try:
        reason = skip_reason(block)
    except ValueError as err:
        return "failed", str(err)
    if reason:
        return "skipped", f"{block}: {reason}"
    path = ROOT / block.file
    code = compile("\n" * block.line + block.code, str(path), "exec")   # tracebacks name the file's own lines
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run.workdir)
        patch.setenv("MPLBACKEND", "Agg")                  # for a block that imports matplotlib first
        if "matplotlib" in sys.modules:                    # another test imported it already
            sys.modules["matplotlib"].use("Agg")
        if block.marker == NEEDS_CENSUS:
            patch.setenv("MINIMOE_DATA", str(real_test_file().parent))
        try:
            exec(code, run.namespace)
        except Exception as err:
            shown = "".join(traceback.format_exception(type(err), err, err.__traceback__.tb_next))
            return "failed", f"the block of {block.file} at line {block.line} failed:\n\n{shown}"
    return "passed", ""


def outcome(block: Block, tmp_path_factory) -> tuple[str, str]:
    """Run the file's blocks up to this one, each once and in file order, whatever order the tests run in."""
    if block.file not in RUNS:
        RUNS[block.file] = FileRun(tmp_path_factory.mktemp(Path(block.file).stem))
    run, blocks = RUNS[block.file], BLOCKS_OF[block.file]
    while len(run.outcomes) <= blocks.index(block):
        run.outcomes.append(run_block(blocks[len(run.outcomes)], run))
    return run.outcomes[blocks.index(block)]


# With pytest-xdist, the blocks of one file go to one worker (--dist loadgroup), which runs them once.
@pytest.mark.parametrize("block", [pytest.param(block, marks=pytest.mark.xdist_group(block.file)) for block in BLOCKS],
                         ids=str)
def test_doc_block(block, tmp_path_factory):
    status, detail = outcome(block, tmp_path_factory)
    if status == "skipped":
        pytest.skip(detail)
    if status == "failed":
        pytest.fail(detail, pytrace=False)


def test_readme_has_python_blocks():
    assert BLOCKS_OF["README.md"]


def test_extraction_reads_blocks_and_markers():
    lines = ["# Title",                                   # 1
             "```bash", "pip install minimoe", "```",     # 2-4: not Python
             "```python", "a = 1", "```",                 # 5-7
             "<!-- docs-test: skip (trains for an hour) -->",
             "```python", "b = a + 1", "", "```",         # 9-12
             "<!-- docs-test: needs census data -->", "", # 13-14: not directly above the fence
             "```python", "c = 3", "```",                 # 15-17
             "- in a list:", "  ```python", "  d = 4", "  ```"]   # 18-21
    blocks = extract_blocks("\n".join(lines), "page.md")
    assert [(b.line, b.code, b.marker) for b in blocks] == [
        (5, "a = 1", None), (9, "b = a + 1\n", "skip (trains for an hour)"), (15, "c = 3", None), (19, "d = 4", None)]
    assert [skip_reason(b) for b in blocks] == [None, "trains for an hour", None, None]
    with pytest.raises(ValueError, match="never closed"):
        extract_blocks("```python\nx = 1\n", "page.md")


@pytest.mark.parametrize("marker", ["skip", "skip ()", "skip (  )", "skipped (slow)", "needs data"])
def test_a_skip_must_say_why(marker):
    with pytest.raises(ValueError, match="a skip must say why"):
        skip_reason(Block("page.md", 3, "x = 1", marker))
