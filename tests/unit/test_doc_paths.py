"""Every file path the documentation names exists: a `backticked/path.py` (or folder) under
one of the repository's top-level folders, and every relative [link](target), resolved
from the page that holds it, with its #anchor when the target is a page. Files move and
headings change; a page that still points at the old place sends its reader nowhere."""

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
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


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


def links(page: Path, text: str) -> set[tuple[Path, str]]:
    """(target file, anchor or "") of every link that is not a URL."""
    found = set()
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue
        path, _, anchor = target.partition("#")
        found.add(((page.parent / path).resolve() if path else page, anchor))
    return found


def linked_paths(page: Path, text: str) -> set[Path]:
    return {target for target, _ in links(page, text) if target != page}


def anchors(page: Path) -> set[str]:
    """The anchors a renderer gives the page's headings, as GitHub makes them: lower
    case, punctuation dropped but for hyphens and underscores, spaces to hyphens."""
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
        found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def missing_in(page: Path) -> list[str]:
    text = page.read_text()
    missing = [f"`{p}`" for p in sorted(named_paths(text)) if not (ROOT / p).exists()]
    for target, anchor in sorted(links(page, text)):
        shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
        if not target.exists():
            missing.append(f"link {shown}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            missing.append(f"link {shown}#{anchor}")
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
    assert links(page, text) == {
        ((page.parent / "adr" / "0001-x.md").resolve(), "context"),
        (page, "top"),
    }


def test_anchors_are_made_as_the_renderer_makes_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# 7.9 Webhook failures\n## `idempotency_keys`\n### 3. Reports (ClickHouse)\n")
    assert anchors(page) == {"79-webhook-failures", "idempotency_keys", "3-reports-clickhouse"}


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_page_names_exists(page: Path) -> None:
    missing = missing_in(page)
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"
