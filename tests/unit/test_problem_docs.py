"""Every problem type has its page in docs/errors/, and every page is a problem type."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path

import pytest

from chalicelib.core.problems import PROBLEM_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors"
NOT_PAGES = {"README"}
SECTIONS = ("## What it means", "## When Ampora answers it", "## Example", "## What to do")
SLUGS = sorted(PROBLEM_TYPES)


def pages_in(folder: Path) -> set[str]:
    return {page.stem for page in folder.glob("*.md")} - NOT_PAGES


def mismatch(slugs: set[str], pages: set[str]) -> tuple[set[str], set[str]]:
    """Slugs without a page, and pages without a slug."""
    return slugs - pages, pages - slugs


def example_body(text: str) -> dict[str, object]:
    block = re.search(r"## Example\s+```http\n(.*?)```", text, re.DOTALL)
    assert block, "no ```http example block"
    raw = block.group(1)
    return json.loads(raw[raw.index("{"): raw.rindex("}") + 1])


def test_every_slug_has_a_page_and_every_page_a_slug() -> None:
    # Given the problem table and the docs folder / When compared / Then they match 1:1
    missing, orphans = mismatch(set(PROBLEM_TYPES), pages_in(DOCS))
    assert not missing, f"problem types without a page: {sorted(missing)}"
    assert not orphans, f"pages without a problem type: {sorted(orphans)}"


def test_the_mapping_check_catches_both_directions(tmp_path: Path) -> None:
    # Given a folder with one page too many and one too few
    for name in ("not-found", "stale-type", "README"):
        (tmp_path / f"{name}.md").write_text("# page\n")
    # When compared with a table of two slugs
    missing, orphans = mismatch({"not-found", "conflict"}, pages_in(tmp_path))
    # Then both the missing page and the orphan page are reported (README is no page)
    assert (missing, orphans) == ({"conflict"}, {"stale-type"})


@pytest.mark.parametrize("slug", SLUGS)
def test_page_names_status_and_title(slug: str) -> None:
    kind = PROBLEM_TYPES[slug]
    text = (DOCS / f"{slug}.md").read_text()
    assert text.startswith(f"# {kind.title}\n")
    assert f"{kind.status} {HTTPStatus(kind.status).phrase}" in text
    assert f"/errors/{slug}" in text


@pytest.mark.parametrize("slug", SLUGS)
def test_page_explains_meaning_cause_example_and_remedy(slug: str) -> None:
    text = (DOCS / f"{slug}.md").read_text()
    positions = [text.find(section) for section in SECTIONS]
    assert all(p >= 0 for p in positions), f"{slug}: missing one of {SECTIONS}"
    assert positions == sorted(positions), f"{slug}: sections out of order"


@pytest.mark.parametrize("slug", SLUGS)
def test_example_is_a_problem_of_this_type(slug: str) -> None:
    # Given the page's example response / Then its body is this type's RFC 9457 problem
    kind = PROBLEM_TYPES[slug]
    text = (DOCS / f"{slug}.md").read_text()
    body = example_body(text)
    assert f"HTTP/1.1 {kind.status} " in text
    assert body["type"] == f"https://docs.ampora.io/errors/{slug}"
    assert (body["title"], body["status"]) == (kind.title, kind.status)
    assert {"detail", "instance"} <= set(body)


def test_validation_example_lists_pointer_and_detail() -> None:
    body = example_body((DOCS / "validation-failed.md").read_text())
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    assert all(set(error) == {"pointer", "detail"} for error in errors)


def test_index_links_every_page() -> None:
    index = (DOCS / "README.md").read_text()
    for slug in SLUGS:
        assert f"]({slug}.md)" in index, slug
