"""The lifecycle of a policy, as pure rules: drafts, approval by someone else, disabling.

A policy has at most two revisions at a time: the *approved* one, in force, and a
*draft* awaiting approval. New policies and edits of the expression or mode are drafts;
approval puts the draft in force and ends it. Whoever wrote any part of a draft may not
approve it (four eyes). A disabled policy keeps both revisions but is never evaluated.
Nothing here does I/O: the service stores :class:`Lifecycle` and applies these rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

#: The states a policy shows (and the list filters by).
DRAFT, APPROVED, DISABLED = "draft", "approved", "disabled"
STATES = (DRAFT, APPROVED, DISABLED)


class NothingToApprove(Exception):
    """Approval was asked for, but the policy has no draft."""


class SelfApproval(Exception):
    """The approver wrote (part of) the draft."""

    def __init__(self, number: int) -> None:
        super().__init__(f"revision {number} is (in part) the approver's own")
        self.number = number


@dataclass(frozen=True)
class Revision:
    """One numbered revision of a policy's rule: what is evaluated, and who stands behind it.

    ``authors`` are the actors (as audit records name them) who wrote the revision;
    ``author_keys`` are the people behind them (a token also names its creator), which is
    what self-approval is checked against.
    """

    number: int
    expression: str
    mode: str
    authors: tuple[dict[str, str], ...]
    author_keys: tuple[str, ...]
    created_at: datetime
    approved_by: dict[str, str] | None = None
    approved_at: datetime | None = None

    @property
    def rule(self) -> tuple[str, str]:
        """What evaluation depends on: the expression and the mode."""
        return self.expression, self.mode

    def to_dict(self) -> dict[str, Any]:
        """The stored form (JSON: times in ISO 8601)."""
        return {
            "number": self.number, "expression": self.expression, "mode": self.mode,
            "authors": [dict(a) for a in self.authors], "authorKeys": list(self.author_keys),
            "createdAt": self.created_at.isoformat(),
            "approvedBy": self.approved_by,
            "approvedAt": None if self.approved_at is None else self.approved_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Revision:
        """The revision stored as ``data`` by :meth:`to_dict`."""
        approved_at = data.get("approvedAt")
        return cls(
            number=int(data["number"]), expression=str(data["expression"]),
            mode=str(data["mode"]), authors=tuple(data.get("authors") or ()),
            author_keys=tuple(data.get("authorKeys") or ()),
            created_at=datetime.fromisoformat(data["createdAt"]),
            approved_by=data.get("approvedBy"),
            approved_at=None if approved_at is None else datetime.fromisoformat(approved_at),
        )


@dataclass(frozen=True)
class Lifecycle:
    """Where a policy stands: its revisions, whether it is disabled, the last number given."""

    approved: Revision | None = None
    draft: Revision | None = None
    disabled: bool = False
    last_number: int = 0

    @property
    def state(self) -> str:
        """``disabled``, else ``approved`` once a revision is in force, else ``draft``."""
        if self.disabled:
            return DISABLED
        return APPROVED if self.approved is not None else DRAFT

    @property
    def in_force(self) -> Revision | None:
        """The revision evaluated on pushes: the approved one, unless disabled."""
        return None if self.disabled else self.approved

    @property
    def current(self) -> Revision | None:
        """The newest revision: the draft if there is one, else the approved one."""
        return self.draft if self.draft is not None else self.approved


@dataclass(frozen=True)
class Author:
    """Who makes a change: the actor as recorded, and the people behind it."""

    actor: dict[str, str]
    keys: tuple[str, ...]


def _merged(first: Iterable[Any], second: Iterable[Any]) -> tuple[Any, ...]:
    seen: list[Any] = []
    for value in [*first, *second]:
        if value not in seen:
            seen.append(value)
    return tuple(seen)


def create(expression: str, mode: str, author: Author, now: datetime) -> Lifecycle:
    """A new policy: its first revision is a draft."""
    draft = Revision(number=1, expression=expression, mode=mode, authors=(author.actor,),
                     author_keys=author.keys, created_at=now)
    return Lifecycle(draft=draft, last_number=1)


def revise(current: Lifecycle, expression: str, mode: str, author: Author,
           now: datetime) -> Lifecycle | None:
    """``current`` after an edit of the rule, or ``None`` when the rule does not change.

    The edit becomes a new draft revision (whose authors include the earlier draft's);
    the approved revision stays in force. An edit back to the approved rule withdraws
    the draft: there is nothing left to approve.
    """
    newest = current.current
    if newest is not None and newest.rule == (expression, mode):
        return None
    if current.approved is not None and current.approved.rule == (expression, mode):
        return replace(current, draft=None)
    earlier = current.draft
    number = current.last_number + 1
    draft = Revision(
        number=number, expression=expression, mode=mode,
        authors=_merged(earlier.authors if earlier else (), (author.actor,)),
        author_keys=_merged(earlier.author_keys if earlier else (), author.keys),
        created_at=now)
    return replace(current, draft=draft, last_number=number)


def approve(current: Lifecycle, approver: Author, now: datetime) -> Lifecycle:
    """``current`` with its draft in force; refused without a draft or for its own author."""
    draft = current.draft
    if draft is None:
        raise NothingToApprove
    if set(draft.author_keys) & set(approver.keys):
        raise SelfApproval(draft.number)
    approved = replace(draft, approved_by=approver.actor, approved_at=now)
    return replace(current, approved=approved, draft=None)


def set_disabled(current: Lifecycle, disabled: bool) -> Lifecycle | None:
    """``current`` disabled (or enabled again), or ``None`` when it already is."""
    if current.disabled == disabled:
        return None
    return replace(current, disabled=disabled)
