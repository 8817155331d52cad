"""Comparing versions: the unified diff of the text and the changes by key path."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pytest

from chalicelib.configurations import diff
from chalicelib.configurations.content import JSON, TEXT, YAML
from chalicelib.configurations.diff import Change, Side


def side(text: str, version: int = 1, file_name: str = "otel.yaml") -> Side:
    return Side(version=version, file_name=file_name, text=text)


# --- changes by key path ----------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "expected"), [
    ({}, {}, []),
    ({"a": 1}, {"a": 1}, []),
    ({"a": 1}, {"a": 2}, [Change("/a", "changed", 1, 2)]),
    ({"a": 1}, {}, [Change("/a", "removed", old=1)]),
    ({}, {"a": {"b": [1]}}, [Change("/a", "added", new={"b": [1]})]),
    ({"a": {"b": {"c": 1}}}, {"a": {"b": {"c": 1, "d": None}}},
     [Change("/a/b/d", "added", new=None)]),
    ({"a": None}, {}, [Change("/a", "removed", old=None)]),
    ({"a": [1, 2, 3]}, {"a": [1, 3]},
     [Change("/a/1", "changed", 2, 3), Change("/a/2", "removed", old=3)]),
    ({"a": [1]}, {"a": [1, {"x": 1}]}, [Change("/a/1", "added", new={"x": 1})]),
    ({"a": [{"x": 1}]}, {"a": [{"x": 2}]}, [Change("/a/0/x", "changed", 1, 2)]),
    ({"a": {"b": 1}}, {"a": [1]}, [Change("/a", "changed", {"b": 1}, [1])]),
    ({"a": 1}, {"a": True}, [Change("/a", "changed", 1, True)]),
    ({"a": 1}, {"a": 1.0}, [Change("/a", "changed", 1, 1.0)]),
    ({"a": "1"}, {"a": 1}, [Change("/a", "changed", "1", 1)]),
    ({"a/b": 1, "c~d": 1}, {"a/b": 2, "c~d": 2},
     [Change("/a~1b", "changed", 1, 2), Change("/c~0d", "changed", 1, 2)]),
    ({"b": 1, "a": 1, "c": 1}, {"c": 2, "d": 1, "a": 1},
     [Change("/b", "removed", old=1), Change("/c", "changed", 1, 2),
      Change("/d", "added", new=1)]),
    (1, 2, [Change("", "changed", 1, 2)]),
    (None, {"a": 1}, [Change("", "changed", None, {"a": 1})]),
    ({1: "x", None: "y", 2.5: "z"}, {}, [Change("/1", "removed", old="x"),
                                          Change("/null", "removed", old="y"),
                                          Change("/2.5", "removed", old="z")]),
    ({"t": float("nan")}, {"t": float("nan")}, []),
    ({"t": float("inf")}, {"t": float("-inf")}, [Change("/t", "changed", ".inf", "-.inf")]),
    ({"d": date(2026, 1, 5)}, {"d": datetime(2026, 1, 5, 9, 0)},
     [Change("/d", "changed", "2026-01-05", "2026-01-05T09:00:00")]),
    ({"b": b"\x00\x01"}, {"b": b"\x00\x02"}, [Change("/b", "changed", "AAE=", "AAI=")]),
    ({"s": {3, 1}}, {"s": {1, 2}}, [Change("/s", "changed", [1, 3], [1, 2])]),
])
def test_changes_by_key_path(old: Any, new: Any, expected: list[Change]) -> None:
    assert diff.changes(old, new) == expected


@pytest.mark.parametrize(("old", "new", "same"), [
    (1, 1, True), (1, 2, False), (1, True, False), (0, False, False), (1, 1.0, False),
    ("a", "a", True), (None, None, True), (float("nan"), float("nan"), True),
    (float("nan"), 1.0, False), ({1}, {1}, True),
])
def test_same_means_same_value_and_type(old: Any, new: Any, same: bool) -> None:
    assert diff.same(old, new) is same


@pytest.mark.parametrize(("value", "wire"), [
    ({"a": [1, (2, 3)]}, {"a": [1, [2, 3]]}),
    ({1: "x"}, {"1": "x"}),
    (float("nan"), ".nan"),
    (-math.inf, "-.inf"),
    (2.5, 2.5),
    (date(2026, 1, 5), "2026-01-05"),
    (b"hi", "aGk="),
    (frozenset({"b", "a"}), ["a", "b"]),
])
def test_values_are_given_in_their_json_form(value: Any, wire: Any) -> None:
    assert diff.plain(value) == wire


# --- unified diff -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "lines"), [
    ("", []),
    ("a", ["a"]),
    ("a\n", ["a\n"]),
    ("a\nb", ["a\n", "b"]),
    ("a\r\nb\n", ["a\r\n", "b\n"]),
    ("a\u2028b\n", ["a\u2028b\n"]),
    ("\n\n", ["\n", "\n"]),
])
def test_only_newline_ends_a_line(text: str, lines: list[str]) -> None:
    assert diff.lines(text) == lines


def test_unified_diff_names_file_and_version() -> None:
    old = side("a: 1\nb: 2\nc: 3\n", 1)
    new = side("a: 1\nb: 3\nc: 3\n", 2, "gw.yaml")
    assert diff.unified(old, new) == (
        "--- a/otel.yaml\tversion 1\n"
        "+++ b/gw.yaml\tversion 2\n"
        "@@ -1,3 +1,3 @@\n"
        " a: 1\n"
        "-b: 2\n"
        "+b: 3\n"
        " c: 3\n"
    )


@pytest.mark.parametrize(("old", "new", "body"), [
    ("a\nb", "a\nc", " a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"),
    ("a\n", "a", "-a\n+a\n\\ No newline at end of file\n"),
    ("", "a\n", "+a\n"),
    ("a\n", "", "-a\n"),
])
def test_unified_diff_marks_a_missing_final_newline(old: str, new: str, body: str) -> None:
    found = diff.unified(side(old), side(new, 2))
    assert found.split("\n", 3)[3] == body


def test_unified_diff_of_the_same_text_is_empty() -> None:
    assert diff.unified(side("a\nb"), side("a\nb", 2, "other.yaml")) == ""


# --- compare ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("content_type", "text", "changes"), [
    (YAML, "a: [1, 2]\nb: .nan\n", []),
    (JSON, '{"a": [1, 2]}', []),
    (TEXT, "anything", None),
])
def test_comparing_a_version_with_itself_is_empty(content_type: str, text: str,
                                                  changes: Any) -> None:
    found = diff.compare(content_type, side(text), side(text))
    assert found == diff.Comparison("", changes)


def test_comparing_yaml_gives_the_diff_and_the_changes() -> None:
    old = side("receivers:\n  otlp: {}\nexporters:\n  debug: {verbosity: basic}\n", 1)
    new = side("receivers:\n  otlp: {}\nexporters:\n  debug: {verbosity: detailed}\n", 2)
    found = diff.compare(YAML, old, new)
    assert found.changes == [
        Change("/exporters/debug/verbosity", "changed", "basic", "detailed")]
    assert "-  debug: {verbosity: basic}\n+  debug: {verbosity: detailed}\n" \
        in found.unified_diff


def test_a_reformatted_document_has_a_diff_but_no_changes() -> None:
    found = diff.compare(JSON, side('{"a": 1, "b": [1]}'), side('{\n  "a": 1,\n  "b": [1]\n}'))
    assert found.unified_diff and found.changes == []


def test_plain_text_has_only_the_diff() -> None:
    found = diff.compare(TEXT, side("one\n"), side("two\n", 2))
    assert found.changes is None and found.unified_diff.endswith("-one\n+two\n")


def _apply(old: str, patch: str) -> str:
    """``old`` with the unified diff ``patch`` applied (what `patch -p1` would produce)."""
    import re

    source, result, at = diff.lines(old), [], 0
    body = patch.splitlines(keepends=True)[2:]
    for line in body:
        header = re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", line)
        if header:
            start = int(header.group(1)) - (1 if header.group(2) != "0" else 0)
            result += source[at:start]
            at = start
        elif line.startswith("\\"):
            result[-1] = result[-1].removesuffix("\n")
        elif line[0] in " -":
            at += 1
            if line[0] == " ":
                result.append(line[1:])
        else:
            result.append(line[1:])
    return "".join(result + source[at:])


def _text(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


REPEATED_OLD = _text([f"  k{i % 50}: v{i % 7}" for i in range(14_000)])
REPEATED_NEW = _text([f"  k{i % 53}: v{i % 5}" for i in range(14_000)])
EDITED = [f"  enabled: {i % 2 == 0}" if i % 3 else f"k{i}:" for i in range(9_000)]


@pytest.mark.parametrize(("old", "new"), [
    ("a\nb\nc\n", "a\nB\nc"),
    ("", "x\n"),
    ("x\n", ""),
    (_text(["a", "b", "c"] * 40), _text(["a", "c", "b"] * 40)),
    # long files of repeated lines, rewritten or edited here and there: difflib alone takes
    # seconds to minutes on these; the diff must still be a correct patch
    (REPEATED_OLD, REPEATED_NEW),
    (_text(EDITED), _text([*EDITED[:50], "new: 1", *EDITED[50:4000], *EDITED[4100:]])),
], ids=["small", "from-empty", "to-empty", "moved-lines", "rewrite-of-repeated-lines",
        "edits-in-repeated-lines"])
def test_the_unified_diff_is_a_patch_that_turns_old_into_new(old: str, new: str) -> None:
    patch = diff.unified(Side(1, "c.yaml", old), Side(2, "c.yaml", new))
    assert _apply(old, patch) == new


@pytest.mark.parametrize("seed", range(20))
def test_small_files_diff_exactly_as_difflib_does(seed: int) -> None:
    import difflib
    import random

    rng = random.Random(seed)
    old = [rng.choice("abcdef") for _ in range(rng.randint(0, 60))]
    new = [rng.choice("abcdefg") for _ in range(rng.randint(0, 60))]
    ours = diff.unified(Side(1, "c", _text(old)), Side(2, "c", _text(new)))
    theirs = "".join(difflib.unified_diff(diff.lines(_text(old)), diff.lines(_text(new)),
                                          "a/c", "b/c", "version 1", "version 2"))
    assert ours == theirs
