"""Comparing two versions of a configuration: a unified diff of their text and, for YAML and
JSON, the changes by key path (added, removed, changed, with old and new values).

Pure: no I/O. Paths are JSON Pointers (RFC 6901) into the documents; list items are
compared by position. Values are given in their JSON form.
"""

from __future__ import annotations

import base64
import bisect
import difflib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from chalicelib.configurations import content

Kind = Literal["added", "removed", "changed"]
NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass(frozen=True)
class Side:
    """One of the two versions compared: its number, file name and text."""

    version: int
    file_name: str
    text: str


@dataclass(frozen=True)
class Change:
    """One difference between the two documents, at ``path``."""

    path: str
    kind: Kind
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class Comparison:
    """What changed from one version to another (``changes`` is ``None`` for plain text)."""

    unified_diff: str
    changes: list[Change] | None


def compare(content_type: str, old: Side, new: Side) -> Comparison:
    """How ``new`` differs from ``old``, both of ``content_type``; nothing for the same text."""
    structured = content_type in content.STRUCTURED
    if old.text == new.text:
        return Comparison("", [] if structured else None)
    if not structured:
        return Comparison(unified(old, new), None)
    found = changes(content.parse(content_type, old.text), content.parse(content_type, new.text))
    return Comparison(unified(old, new), found)


# --- text ------------------------------------------------------------------------------------


def lines(text: str) -> list[str]:
    """The lines of ``text``, each with its ``\\n`` (the last may lack one); only ``\\n`` ends
    a line, as it does for a patch."""
    parts = text.split("\n")
    return [f"{part}\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


#: A stretch of lines is searched by difflib only while (old lines times new lines) stays under
#: this; beyond it, lines unique to both sides anchor the match (patience diff) and a stretch
#: with no such anchor is one replacement. difflib alone degrades to quadratic time or worse
#: on long files of repeated lines (seconds to minutes for a few hundred KiB).
SEARCH_LIMIT = 250_000
CONTEXT = 3


def _anchors(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int
             ) -> list[tuple[int, int]]:
    """Lines found once in ``a[alo:ahi]`` and once in ``b[blo:bhi]``, as (i, j) pairs in
    order on both sides (the longest such chain)."""
    count: dict[str, list[int]] = {}
    for i in range(alo, ahi):
        count.setdefault(a[i], [0, 0, i])[0] += 1
    for j in range(blo, bhi):
        if a_seen := count.get(b[j]):
            a_seen[1] += 1
            a_seen.append(j)
    pairs = sorted((seen[2], seen[3]) for seen in count.values() if seen[:2] == [1, 1])
    tails: list[int] = []  # per chain length, the index of the pair ending the best chain
    ends: list[int] = []  # the j of each of those pairs (increasing)
    links: list[int] = []
    for index, (_, j) in enumerate(pairs):
        at = bisect.bisect_left(ends, j)
        links.append(tails[at - 1] if at else -1)
        tails[at:at + 1], ends[at:at + 1] = [index], [j]
    chain, index = [], tails[-1] if tails else -1
    while index >= 0:
        chain.append(pairs[index])
        index = links[index]
    return chain[::-1]


def _searched(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int,
              found: list[tuple[int, int, int]]) -> None:
    """Append difflib's matching blocks of a stretch small enough to search (none otherwise:
    a large stretch with no anchor is one replacement)."""
    if (ahi - alo) * (bhi - blo) <= SEARCH_LIMIT:
        matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
        found += [(alo + i, blo + j, n) for i, j, n in matcher.get_matching_blocks() if n]


def _blocks(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int,
            found: list[tuple[int, int, int]]) -> None:
    """Append the matching blocks (i, j, size) of ``a[alo:ahi]`` and ``b[blo:bhi]``."""
    if (ahi - alo) * (bhi - blo) <= SEARCH_LIMIT:
        _searched(a, b, alo, ahi, blo, bhi, found)
        return
    while alo < ahi and blo < bhi and a[alo] == b[blo]:
        found.append((alo, blo, 1))
        alo, blo = alo + 1, blo + 1
    tail: list[tuple[int, int, int]] = []
    while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
        ahi, bhi = ahi - 1, bhi - 1
        tail.append((ahi, bhi, 1))
    anchors = [] if (ahi - alo) * (bhi - blo) <= SEARCH_LIMIT else _anchors(a, b, alo, ahi,
                                                                            blo, bhi)
    if not anchors:
        _searched(a, b, alo, ahi, blo, bhi, found)
    for i, j in anchors:
        _blocks(a, b, alo, i, blo, j, found)
        found.append((i, j, 1))
        alo, blo = i + 1, j + 1
    if anchors:
        _blocks(a, b, alo, ahi, blo, bhi, found)
    found += tail[::-1]


class _Matcher(difflib.SequenceMatcher[str]):
    """difflib's matcher (opcodes, grouping) over blocks found by :func:`_blocks`."""

    def __init__(self, a: list[str], b: list[str]) -> None:
        self.old, self.new = a, b
        self.found: list[difflib.Match] | None = None
        super().__init__(None, a, b, autojunk=False)

    def get_matching_blocks(self) -> list[difflib.Match]:
        if self.found is None:
            a, b = self.old, self.new
            found: list[tuple[int, int, int]] = []
            _blocks(a, b, 0, len(a), 0, len(b), found)
            merged: list[list[int]] = []
            for i, j, n in found:
                last = merged[-1] if merged else None
                if last is not None and (last[0] + last[2], last[1] + last[2]) == (i, j):
                    last[2] += n
                else:
                    merged.append([i, j, n])
            self.found = [difflib.Match(*block) for block in merged]
            self.found.append(difflib.Match(len(a), len(b), 0))
        return self.found


def _range(start: int, length: int) -> str:
    """A hunk's line range as unified diffs write it."""
    first = start + 1 if length else start
    return str(first) if length == 1 else f"{first},{length}"


def _hunks(a: list[str], b: list[str]) -> Iterator[str]:
    for group in _Matcher(a, b).get_grouped_opcodes(CONTEXT):
        (_, i1, _, j1, _), (_, _, i2, _, j2) = group[0], group[-1]
        yield f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@\n"
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                yield from (f" {line}" for line in a[a1:a2])
                continue
            yield from (f"-{line}" for line in a[a1:a2])
            yield from (f"+{line}" for line in b[b1:b2])


def unified(old: Side, new: Side) -> str:
    """The unified diff from ``old`` to ``new`` (empty when their text is the same)."""
    a, b = lines(old.text), lines(new.text)
    hunks = list(_hunks(a, b))
    if not hunks:
        return ""
    head = [f"--- a/{old.file_name}\tversion {old.version}\n",
            f"+++ b/{new.file_name}\tversion {new.version}\n"]
    return "".join(line if line.endswith("\n") else f"{line}\n{NO_NEWLINE}"
                   for line in head + hunks)


# --- documents -------------------------------------------------------------------------------


def changes(old: Any, new: Any) -> list[Change]:
    """The changes from document ``old`` to document ``new``, in document order."""
    found: list[Change] = []
    _walk(old, new, "", found)
    return found


def _walk(old: Any, new: Any, path: str, found: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        _walk_mappings(old, new, path, found)
    elif isinstance(old, list) and isinstance(new, list):
        _walk_sequences(old, new, path, found)
    elif not same(old, new):
        found.append(Change(path, "changed", plain(old), plain(new)))


def _walk_mappings(old: dict[Any, Any], new: dict[Any, Any], path: str,
                   found: list[Change]) -> None:
    for key, value in old.items():
        child = f"{path}/{escape(key)}"
        if key in new:
            _walk(value, new[key], child, found)
        else:
            found.append(Change(child, "removed", old=plain(value)))
    for key, value in new.items():
        if key not in old:
            found.append(Change(f"{path}/{escape(key)}", "added", new=plain(value)))


def _walk_sequences(old: list[Any], new: list[Any], path: str, found: list[Change]) -> None:
    for index in range(max(len(old), len(new))):
        child = f"{path}/{index}"
        if index >= len(new):
            found.append(Change(child, "removed", old=plain(old[index])))
        elif index >= len(old):
            found.append(Change(child, "added", new=plain(new[index])))
        else:
            _walk(old[index], new[index], child, found)


def same(old: Any, new: Any) -> bool:
    """Whether two scalars are the same value of the same type (``1``, ``1.0`` and ``true``
    differ; NaN is itself)."""
    if type(old) is not type(new):
        return False
    if isinstance(old, float) and math.isnan(old):
        return math.isnan(new)
    return bool(old == new)


def escape(key: Any) -> str:
    """``key`` as one JSON Pointer segment (a non-text YAML key in its JSON spelling)."""
    if isinstance(key, bool) or key is None:
        key = json.dumps(key)
    return str(plain(key)).replace("~", "~0").replace("/", "~1")


def plain(value: Any) -> Any:
    """``value`` as JSON can carry it (YAML also has dates, binary, sets and non-finite floats)."""
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return [plain(item) for item in sorted(value, key=repr)]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return value
