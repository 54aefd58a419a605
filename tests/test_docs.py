"""The README and docs/*.md hold together: every page is reachable from the README, and
every relative link (and heading anchor) in them points at something that exists."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
PAGES = sorted((REPO_ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed
    (letters, digits, `_`, `-` and spaces kept), each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for _, title in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_the_slugs_are_githubs():
    assert slug("Score a clip: `POST /v1/liveness`") == "score-a-clip-post-v1liveness"
    assert slug("VGG-16, the paper's encoder") == "vgg-16-the-papers-encoder"
    assert slug("0. The face detectors side by side (BlazeFace beside Haar)") == (
        "0-the-face-detectors-side-by-side-blazeface-beside-haar"
    )


def test_every_docs_page_is_linked_from_the_readme():
    assert PAGES, "docs/ has no pages"
    linked = {
        (README.parent / unquote(target.split("#", 1)[0])).resolve()
        for target in links(README)
        if not re.match(r"[a-z]+:", target)
    }
    missing = [p.relative_to(REPO_ROOT).as_posix() for p in PAGES if p.resolve() not in linked]
    assert not missing, f"README.md links none of: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_relative_links_point_at_files_and_anchors_that_exist(document):
    broken = []
    for target in links(document):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        path = (document.parent / unquote(file_part)).resolve() if file_part else document
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{document.relative_to(REPO_ROOT)}: {broken}"
