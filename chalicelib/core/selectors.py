"""Label selectors such as ``env=prod,tier!=edge``: parsing and matching (Kubernetes-style).

A selector is a comma-separated list of requirements, all of which must hold:
``key=value`` (or ``key==value``), ``key!=value`` (also true when the key is
absent), ``key`` (present), ``!key`` (absent), ``key in (a,b)`` and
``key notin (a,b)`` (also true when absent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = r"[A-Za-z0-9]([A-Za-z0-9_./-]{0,251}[A-Za-z0-9])?"
_VALUE = r"[A-Za-z0-9_.:/@-]{0,253}"
_KEY_RE = re.compile(_KEY)
_VALUE_RE = re.compile(_VALUE)
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s+\(([^)]*)\)$")
_EQ_RE = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")

OPERATORS = ("=", "!=", "exists", "!exists", "in", "notin")


class SelectorError(ValueError):
    """The selector text is not a valid label selector."""


@dataclass(frozen=True)
class Requirement:
    """One condition on one label."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values


def _split(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _set_values(raw: str, clause: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in raw.split(","))
    if not values or any(not _VALUE_RE.fullmatch(v) or not v for v in values):
        raise SelectorError(f"bad value list in {clause!r}")
    return values


def _requirement(clause: str) -> Requirement:
    if not clause:
        raise SelectorError("empty requirement (stray comma?)")
    if match := _SET_RE.match(clause):
        return Requirement(match.group(1), match.group(3),
                           _set_values(match.group(4), clause))
    if match := _EQ_RE.match(clause):
        op = "!=" if match.group(3) == "!=" else "="
        return Requirement(match.group(1), op, (match.group(4),))
    if clause.startswith("!") and _KEY_RE.fullmatch(clause[1:].strip()):
        return Requirement(clause[1:].strip(), "!exists")
    if _KEY_RE.fullmatch(clause):
        return Requirement(clause, "exists")
    raise SelectorError(f"cannot parse requirement {clause!r}")


def parse(text: str) -> tuple[Requirement, ...]:
    """The requirements of ``text``; raises :class:`SelectorError` if it is malformed."""
    if not text.strip():
        return ()
    return tuple(_requirement(clause) for clause in _split(text))


def matches(selector: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy every requirement of ``selector``."""
    return all(requirement.matches(labels) for requirement in selector)
