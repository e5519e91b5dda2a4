"""Every file path the documentation names exists: a `backticked/path.py` (or folder) under
one of the repository's top-level folders, and every relative [link](target), resolved
from the page that holds it. Files move; a page that still points at the old place
sends its reader nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_FOLDERS = (
    "bench",
    "commands",
    "docs",
    "domain",
    "infra",
    "projections",
    "read_api",
    "schemas",
    "scripts",
    "tests",
    "write_api",
)
ROOT_FILES = ("README.md", "pyproject.toml")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"[<>{}*…|]")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def named_paths(text: str) -> set[str]:
    """Repository paths in code spans: `infra/worker.py`, `infra/cli/`,
    `write_api/app.py:create_app()` (the part before the colon). Commands, URLs and
    templates (`<data dir>/events.sqlite`) are not paths."""
    found = set()
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        candidate = span.split(":", 1)[0].strip()
        if " " in candidate or PLACEHOLDER.search(candidate):
            continue
        in_a_folder = "/" in candidate and candidate.split("/", 1)[0] in TOP_FOLDERS
        if in_a_folder or candidate in ROOT_FILES:
            found.add(candidate)
    return found


def linked_paths(page: Path, text: str) -> set[Path]:
    found = set()
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor on the same page
        found.add((page.parent / target.split("#", 1)[0]).resolve())
    return found


def missing_in(page: Path) -> list[str]:
    text = page.read_text()
    missing = [f"`{p}`" for p in sorted(named_paths(text)) if not (ROOT / p).exists()]
    missing += [
        f"link {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}"
        for p in sorted(linked_paths(page, text))
        if not p.exists()
    ]
    return missing


def test_the_scanner_finds_paths_and_skips_what_is_not_one(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    text = (
        "See `infra/worker.py`, `write_api/app.py:create_app()`, `infra/cli/` and "
        "`README.md`; not `orderflow audit verify`, `<data dir>/events.sqlite`, "
        "`application/problem+json` or `bench/write_path.py --quick`. "
        "[ADR](adr/0001-x.md#context), [site](https://example.org/a.md), [here](#top).\n"
        "```\ncat infra/in_a_fence.py\n```\n"
    )
    assert named_paths(text) == {"infra/worker.py", "write_api/app.py", "infra/cli/", "README.md"}
    assert linked_paths(page, text) == {(page.parent / "adr" / "0001-x.md").resolve()}


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_page_names_exists(page: Path) -> None:
    missing = missing_in(page)
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"
