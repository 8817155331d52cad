"""Strong ETags and ``If-Match``: optimistic concurrency enforced by DynamoDB itself.

Each versioned item stores a random ``revision``; its ETag is that revision in
quotes. A mutation carrying ``If-Match`` turns it into the write's condition, so
a concurrent change makes the write fail (412) rather than being overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chalicelib.core.problems import BadRequest

_ETAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e]*)"\s*')


def new_revision(random_bytes: Any) -> str:
    """A fresh revision for an item's next state."""
    return str(random_bytes(16).hex())


def etag(revision: str) -> str:
    """The strong ETag header value for ``revision``."""
    return f'"{revision}"'


@dataclass(frozen=True)
class IfMatch:
    """A parsed ``If-Match``: ``any`` (``*``) or a set of acceptable revisions."""

    any: bool
    revisions: tuple[str, ...] = ()

    def accepts(self, revision: str | None) -> bool:
        """Whether the item's current ``revision`` satisfies this precondition."""
        if revision is None:
            return False
        return self.any or revision in self.revisions


def parse_if_match(header: str | None) -> IfMatch | None:
    """Parse ``If-Match``; weak tags never match (RFC 9110 strong comparison)."""
    if header is None:
        return None
    if header.strip() == "*":
        return IfMatch(any=True)
    revisions: list[str] = []
    for part in _split(header):
        match = _ETAG.fullmatch(part)
        if match is None:
            raise BadRequest("If-Match must be '*' or a list of quoted entity tags")
        if not match.group(1):
            revisions.append(match.group(2))
    return IfMatch(any=False, revisions=tuple(revisions))


def _split(header: str) -> list[str]:
    return [part for part in re.findall(r'(?:W/)?"[^"]*"|[^,\s][^,]*', header) if part.strip()]


def revision_condition(attribute: Any, if_match: IfMatch | None) -> Any:
    """The pynamodb condition enforcing ``if_match`` on ``attribute`` (``None``: none)."""
    if if_match is None:
        return None
    if if_match.any:
        return attribute.exists()
    if not if_match.revisions:
        return attribute.is_in("\x00never")
    return attribute.is_in(*if_match.revisions)
