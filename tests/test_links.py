"""Every relative link and image in the README, docs/ and lessons/README.md points at a file or
folder of the repository (web addresses are not followed: CI has no network)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "lessons" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")   # [text](target) and ![alt](target)
EXTERNAL = ("http://", "https://", "mailto:")


def relative_links(text: str) -> list[str]:
    """The link targets of a Markdown text that point into the repository, anchors cut off."""
    targets = [match.group(1) for match in LINK.finditer(text)]
    return [target.split("#")[0] for target in targets if not target.startswith((*EXTERNAL, "#"))]


def test_links_are_found():
    assert relative_links("[a](docs/x.md#part) ![b](y.png) [c](https://e.org) [d](#here)") == ["docs/x.md", "y.png"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    links = relative_links(page.read_text(encoding="utf-8"))
    missing = [target for target in links if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"
