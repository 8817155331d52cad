"""Comparing two versions of a configuration: a unified diff of their text and, for YAML and
JSON, the changes by key path (added, removed, changed, with old and new values).

Pure: no I/O. Paths are JSON Pointers (RFC 6901) into the documents; list items are
compared by position. Values are given in their JSON form.
"""

from __future__ import annotations

import base64
import difflib
import json
import math
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


def unified(old: Side, new: Side) -> str:
    """The unified diff from ``old`` to ``new`` (empty when their text is the same)."""
    diff = difflib.unified_diff(
        lines(old.text), lines(new.text), fromfile=f"a/{old.file_name}",
        tofile=f"b/{new.file_name}", fromfiledate=f"version {old.version}",
        tofiledate=f"version {new.version}")
    return "".join(line if line.endswith("\n") else f"{line}\n{NO_NEWLINE}" for line in diff)


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
