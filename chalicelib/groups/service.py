"""Group use cases: the default group, create, list, read, merge-patch, members, soft-delete.

A group's name is unique within its tenant (case-insensitively): every live group
holds a claim item on its name, written in the same transaction as the group, so
two racing creations or renames cannot both win. Every change of a group writes
its event in that transaction too; ``group.members-added`` follows the agents'
own moves (membership lives on the agents).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from chalicelib.core.concurrency import IfMatch, new_revision
from chalicelib.core.db import find, query_page
from chalicelib.core.deps import deps
from chalicelib.core.events import EventRecord, event_item
from chalicelib.core.lazy import LazyModule
from chalicelib.core.metadata import merge_labels, name_key
from chalicelib.core.named import Named
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.problems import Conflict, NotFound
from chalicelib.groups.models import GroupItem, GroupNameItem
from chalicelib.groups.schemas import (
    DesiredConfiguration,
    Group,
    GroupCreate,
    GroupPatch,
    MembersResult,
)

#: The id (and initial name) of every tenant's default group.
DEFAULT = "default"
#: How groups and their name claims are stored and changed.
GROUPS = Named(GroupItem, GroupNameItem, owner="group_id", noun="group", soft_deleted=True)

_agents = LazyModule("chalicelib.agents.service")
_configurations = LazyModule("chalicelib.configurations.service")
_desired_cache = LazyModule("chalicelib.groups.desired")
_with_default: set[str] = set()


# --- views, items, events --------------------------------------------------------------------


def _desired(item: GroupItem) -> tuple[str, int] | None:
    if item.desired_configuration_id is None or item.desired_version is None:
        return None
    return item.desired_configuration_id, int(item.desired_version)


def _view(item: GroupItem) -> Group:
    desired = _desired(item)
    return Group(
        id=item.id, name=item.name, description=item.description, labels=dict(item.labels),
        is_default=item.id == DEFAULT, created_at=item.created_at, updated_at=item.updated_at,
        deleted_at=item.deleted_at,
        desired_configuration=None if desired is None else DesiredConfiguration(
            configuration_id=desired[0], version=desired[1]),
    )


def _new_item(tenant: str, group_id: str, spec: GroupCreate) -> GroupItem:
    now = deps().clock.now()
    return GroupItem(
        tenant=tenant, id=group_id, name=spec.name, name_key=name_key(spec.name),
        description=spec.description, labels=dict(spec.labels),
        revision=new_revision(deps().random_bytes), created_at=now, updated_at=now,
    )


def _event(kind: str, item: GroupItem, data: dict[str, Any] | None = None) -> EventRecord:
    d = deps()
    return event_item(tenant=item.tenant, event_type=f"group.{kind}", subject=f"groups/{item.id}",
                      data=data if data is not None else _view(item).to_wire(),
                      at=d.clock.now(), event_id=d.new_id(), random_hex=d.random_bytes(4).hex())


# --- the default group -----------------------------------------------------------------------


def _insert(item: GroupItem) -> None:
    """Write a new group with its name claim and ``group.created``; 409 if the name is taken."""
    GROUPS.insert(item, _event("created", item))


def _create_default(tenant: str) -> None:
    """Insert the default group unless it exists (perhaps renamed: it is never deleted)."""
    with suppress(Conflict):
        _insert(_new_item(tenant, DEFAULT, GroupCreate(name=DEFAULT)))


def ensure_default(tenant: str) -> str:
    """The id of the tenant's default group, created on first use (once per process)."""
    if tenant not in _with_default:
        if _fetch(tenant, DEFAULT) is None:
            _create_default(tenant)
        _with_default.add(tenant)
    return DEFAULT


def forget_known() -> None:
    """Drop the in-process memory of existing default groups (tests reset the tables)."""
    _with_default.clear()


# --- reading ---------------------------------------------------------------------------------


def _fetch(tenant: str, group_id: str) -> GroupItem | None:
    return find(GroupItem, tenant, group_id)


def _fetch_healing(tenant: str, group_id: str) -> GroupItem | None:
    """Like :func:`_fetch`, but the default group always exists (created if missing)."""
    item = _fetch(tenant, group_id)
    if item is None and group_id == DEFAULT:
        _create_default(tenant)
        item = _fetch(tenant, group_id)
    return item


def _load(tenant: str, group_id: str, *, include_deleted: bool = False) -> GroupItem:
    item = _fetch_healing(tenant, group_id)
    if item is None or (item.deleted_at is not None and not include_deleted):
        raise NotFound(f"no group {group_id!r}")
    return item


def require_active(tenant: str, group_id: str) -> None:
    """Raise NotFound unless ``group_id`` is a live (not soft-deleted) group of ``tenant``."""
    _load(tenant, group_id)


def get(tenant: str, group_id: str, *, include_deleted: bool = False) -> tuple[Group, str]:
    """One group and its revision (soft-deleted ones only if asked for)."""
    ensure_default(tenant)
    item = _load(tenant, group_id, include_deleted=include_deleted)
    return _view(item), item.revision


def _list_filter(name_prefix: str | None, include_deleted: bool) -> Any:
    conditions: list[Any] = []
    if not include_deleted:
        conditions.append(GroupItem.deleted_at.does_not_exist())
    if name_prefix:
        conditions.append(GroupItem.name_key.startswith(name_key(name_prefix)))
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined & condition
    return combined


def list_groups(tenant: str, page: PageRequest, *, name_prefix: str | None = None,
                include_deleted: bool = False) -> Page[Group]:
    """The tenant's groups by id (the default group included), paged."""
    ensure_default(tenant)
    found = query_page(GroupItem, tenant, page,
                       filter_condition=_list_filter(name_prefix, include_deleted))
    return found.map(_view)


# --- changing --------------------------------------------------------------------------------


def create(tenant: str, spec: GroupCreate) -> tuple[Group, str]:
    """A new group; 409 if the tenant already has a live group of that name."""
    ensure_default(tenant)
    item = _new_item(tenant, deps().new_id(), spec)
    _insert(item)
    return _view(item), item.revision


Change = Callable[[GroupItem], "GroupItem | None"]
Write = Callable[[GroupItem, GroupItem], None]


def _mutate(tenant: str, group_id: str, if_match: IfMatch | None, change: Change,
            write: Write) -> GroupItem:
    """Read, ``change`` and conditionally ``write`` a live group, retrying lost races."""
    return GROUPS.mutate(lambda: _load(tenant, group_id), if_match, change, write)


def _patched(patch: GroupPatch) -> Change:
    given = patch.model_fields_set

    def change(current: GroupItem) -> GroupItem | None:
        name = patch.name if "name" in given and patch.name is not None else current.name
        description = patch.description if "description" in given else current.description
        labels = merge_labels(current.labels, patch.labels, "group") if "labels" in given \
            else dict(current.labels)
        if (name, description, labels) == (current.name, current.description, current.labels):
            return None
        return GROUPS.successor(current, name=name, name_key=name_key(name),
                          description=description, labels=labels)

    return change


def _write_update(current: GroupItem, new: GroupItem) -> None:
    GROUPS.write(current, new, _event("updated", new))


def update(tenant: str, group_id: str, patch: GroupPatch,
           if_match: IfMatch | None) -> tuple[Group, str]:
    """Merge-patch a live group's name, description or labels; emits ``group.updated``."""
    ensure_default(tenant)
    item = _mutate(tenant, group_id, if_match, _patched(patch), _write_update)
    return _view(item), item.revision


def _deletable(current: GroupItem) -> GroupItem:
    if current.id == DEFAULT:
        raise Conflict("the default group cannot be deleted")
    if current.active_rollout_id is not None:
        raise Conflict(f"rollout {current.active_rollout_id!r} holds the group; abort or roll "
                       "it back first")
    members = int(_agents.count_in_group(current.tenant, current.id))
    if members:
        raise Conflict(f"group {current.id!r} still has {members} agent(s); move them first")
    # Later: also refuse while a rollout targeting the group is active.
    return GROUPS.successor(current, deleted_at=deps().clock.now())


def _write_delete(current: GroupItem, new: GroupItem) -> None:
    GROUPS.write(current, new, _event("deleted", new), release=True)


def delete(tenant: str, group_id: str, if_match: IfMatch | None) -> tuple[Group, str]:
    """Soft-delete an empty group and free its name; the default group stays."""
    ensure_default(tenant)
    item = _mutate(tenant, group_id, if_match, _deletable, _write_delete)
    return _view(item), item.revision


# --- members ---------------------------------------------------------------------------------


def _move_each(tenant: str, group_id: str, agent_ids: list[str]) -> tuple[list[str], list[str]]:
    moved, missing = [], []
    for agent_id in dict.fromkeys(agent_ids):
        try:
            _agents.move(tenant, agent_id, group_id)
        except NotFound:
            missing.append(agent_id)
        else:
            moved.append(agent_id)
    return moved, missing


def add_members(tenant: str, group_id: str, agent_ids: list[str],
                if_match: IfMatch | None) -> tuple[MembersResult, str]:
    """Move agents into a live group; reports which ids were moved and which are unknown.

    Membership lives on the agents, so the group itself does not change (nor its ETag);
    If-Match is checked against a consistent read just before the moves.
    """
    ensure_default(tenant)
    group = _load(tenant, group_id)
    GROUPS.check(group, if_match)
    moved, missing = _move_each(tenant, group_id, agent_ids)
    if moved:
        _event("members-added", group, {"id": group_id, "agentIds": moved}).save()
    return MembersResult(group_id=group_id, moved=moved, not_found=missing), group.revision


# --- the configuration a group's agents run ---------------------------------------------------


def _put_on(configuration_id: str, version: int) -> Change:
    def change(current: GroupItem) -> GroupItem | None:
        if _desired(current) == (configuration_id, version):
            return None
        return GROUPS.successor(current, desired_configuration_id=configuration_id,
                                desired_version=version)

    return change


def set_desired_configuration(tenant: str, group_id: str, configuration_id: str, version: int,
                              if_match: IfMatch | None = None) -> tuple[Group, str]:
    """Put a live group on a published configuration version: its agents receive it on their
    next OpAMP exchange (other containers see the change within
    :data:`chalicelib.groups.desired.CACHE_SECONDS`). Emits ``group.updated``."""
    ensure_default(tenant)
    _configurations.require_published(tenant, configuration_id, version)
    item = _mutate(tenant, group_id, if_match, _put_on(configuration_id, version),
                   _write_update)
    _desired_cache.forget(tenant, group_id)
    return _view(item), item.revision


def put_on_event(tenant: str, group_id: str, configuration_id: str, version: int) -> Any:
    """The ``group.updated`` event of a group put on a version by a write made elsewhere (a
    rollout that succeeded), to add to that write."""
    item = _load(tenant, group_id)
    item.desired_configuration_id, item.desired_version = configuration_id, version
    item.updated_at = deps().clock.now()
    return _event("updated", item)


def uses_configuration(tenant: str, configuration_id: str) -> bool:
    """Whether any live group of the tenant is on a version of the configuration."""
    on_it = ((GroupItem.desired_configuration_id == configuration_id)
             & GroupItem.deleted_at.does_not_exist())
    for _ in GroupItem.query(tenant, filter_condition=on_it, consistent_read=True,
                             attributes_to_get=["id"]):
        return True
    return False
