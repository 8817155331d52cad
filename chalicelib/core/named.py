"""Resources with a tenant-unique name and a revision (groups, configurations, policies).

Each such resource is an item with ``tenant``, ``id``, ``name``, ``name_key``,
``revision`` and ``updated_at``, and every live one holds a claim item on its
name, written in the same transaction as the resource: a secondary index cannot
enforce uniqueness, a conditional put of the claim can. A change is read, made,
and written on condition that the revision is still the one read (the ETag), with
its event in the same transaction; a lost race is retried, or is a 412 when the
caller named the revision that is now gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from chalicelib.core.concurrency import IfMatch, etag, new_revision
from chalicelib.core.db import condition_failed, find, transaction
from chalicelib.core.deps import deps
from chalicelib.core.problems import Conflict, PreconditionFailed

Item = TypeVar("Item", bound=Any)  # a pynamodb Model with the attributes named above


class Raced(Exception):
    """The resource changed between our read and our conditional write."""


@dataclass(frozen=True)
class Named(Generic[Item]):
    """How one kind of named resource is stored and changed."""

    model: type[Item]
    #: The name-claim model (keys ``tenant`` and ``name_key``) and its attribute naming the owner.
    claims: Any  # a pynamodb Model class
    owner: str
    #: The word problems use for the resource ("group").
    noun: str
    #: Whether a resource ends by a soft delete (``deleted_at``): then only live ones change.
    soft_deleted: bool = False
    attempts: int = 3

    # --- the name claim ----------------------------------------------------------------------

    def claim(self, item: Item) -> Model:
        """The claim of ``item``'s name by ``item``."""
        return self.claims(tenant=item.tenant, name_key=item.name_key, **{self.owner: item.id})

    def held_by_other(self, item: Item) -> bool:
        """Whether another resource holds ``item``'s name (read after a cancelled transaction:
        pynamodb reorders a transaction's actions, so reasons cannot be matched by position)."""
        try:
            claim = self.claims.get(item.tenant, item.name_key, consistent_read=True)
        except self.claims.DoesNotExist:
            return False
        return bool(getattr(claim, self.owner) != item.id)

    def taken(self, name: str) -> Conflict:
        """The problem of a name another resource of the tenant holds."""
        return Conflict(f"a {self.noun} named {name!r} already exists in this tenant")

    def release(self, tx: Any, item: Item) -> None:
        """Delete ``item``'s name claim within ``tx`` (it must be ours, or gone)."""
        claims: Any = self.claims
        mine = (getattr(claims, self.owner) == item.id) | claims.name_key.does_not_exist()
        tx.delete(self.claim(item), condition=mine)

    # --- writing -----------------------------------------------------------------------------

    def insert(self, item: Item, event: Model) -> None:
        """Write a new resource with its name claim and ``event``; 409 if the name is taken."""
        model: Any = self.model
        try:
            with transaction() as tx:
                tx.save(item, condition=model.id.does_not_exist())
                tx.save(self.claim(item), condition=self.claims.name_key.does_not_exist())
                tx.save(event)
        except TransactWriteError as exc:
            if not condition_failed(exc):
                raise
            if self.held_by_other(item):
                raise self.taken(item.name) from exc
            raise Conflict(f"a {self.noun} with id {item.id!r} already exists") from exc

    def successor(self, current: Item, **changes: Any) -> Item:
        """The next state of ``current``: a new revision and ``updated_at``, plus ``changes``."""
        state = {name: getattr(current, name) for name in self.model.get_attributes()}
        state.update(revision=new_revision(deps().random_bytes), updated_at=deps().clock.now())
        state.update(changes)
        return self.model(**state)

    def unchanged(self, item: Item) -> Any:
        """The write condition: the resource is still as read (and live)."""
        model: Any = self.model
        condition = model.revision == item.revision
        return condition & model.deleted_at.does_not_exist() if self.soft_deleted else condition

    def still(self, current: Item) -> bool:
        """Whether the stored resource is still ``current`` (read after a cancelled write)."""
        latest = find(self.model, current.tenant, current.id)
        if latest is None:
            return False
        live = not self.soft_deleted or getattr(latest, "deleted_at", None) is None
        return bool(latest.revision == current.revision) and live

    def write(self, current: Item, new: Item, event: Model, *, release: bool = False) -> None:
        """Replace ``current`` by ``new`` with ``event``, moving the name claim on a rename (or
        releasing it); raises :class:`Raced` if ``current`` changed meanwhile."""
        renamed = not release and new.name_key != current.name_key
        try:
            with transaction() as tx:
                tx.save(new, condition=self.unchanged(current))
                tx.save(event)
                if renamed:
                    tx.save(self.claim(new), condition=self.claims.name_key.does_not_exist())
                if renamed or release:
                    self.release(tx, current)
        except TransactWriteError as exc:
            if not condition_failed(exc):
                raise
            if not self.still(current):
                raise Raced from exc
            if renamed and self.held_by_other(new):
                raise self.taken(new.name) from exc
            raise

    # --- changing ----------------------------------------------------------------------------

    def check(self, item: Item, if_match: IfMatch | None) -> None:
        """412 unless ``if_match`` (if any) names ``item``'s revision."""
        if if_match is not None and not if_match.accepts(item.revision):
            raise PreconditionFailed(f"{self.noun} {item.id!r} changed since you read it",
                                     current_etag=etag(item.revision))

    def lost_race(self, load: Callable[[], Item], if_match: IfMatch | None) -> None:
        """After a lost race: a 412 if the caller named the revision that is now gone."""
        if if_match is not None and not if_match.any:
            self.check(load(), if_match)

    def mutate(self, load: Callable[[], Item], if_match: IfMatch | None,
               change: Callable[[Item], Item | None],
               write: Callable[[Item, Item], None]) -> Item:
        """Read (``load``), ``change`` and conditionally ``write`` the resource, retrying lost
        races; ``change`` returning None means nothing to do."""
        current = None
        for _ in range(self.attempts):
            current = load()
            self.check(current, if_match)
            successor = change(current)
            if successor is None:
                return current
            try:
                write(current, successor)
            except Raced:
                self.lost_race(load, if_match)
                continue
            return successor
        name = "" if current is None else f" {current.id!r}"
        raise Conflict(f"{self.noun}{name} is being changed by others; retry")
