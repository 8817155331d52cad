"""Agent use cases: check-ins from the OpAMP endpoint, the agents API, and what other rooms call.

A check-in is the hot path: one consistent read of the agent item, then a write
only when the message changed something or last-seen is due (see
:mod:`chalicelib.agents.presence`). Changes are written together with the event
that records them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.agents import presence, roster
from chalicelib.agents.capabilities import capability_names
from chalicelib.agents.models import AgentItem, RosterShard, group_key
from chalicelib.agents.observation import (
    BootstrapToken,
    ClientCertificate,
    Enrollment,
    Observation,
    Plan,
    Snapshot,
    plan,
)
from chalicelib.agents.remote_config import Desired, Standing, files_hash
from chalicelib.agents.schemas import Agent, AgentQuery
from chalicelib.core.db import (
    condition_failed,
    find,
    get_or_not_found,
    label_conditions,
    query_page,
    transact,
)
from chalicelib.core.deps import deps
from chalicelib.core.events import event_item
from chalicelib.core.lazy import LazyModule
from chalicelib.core.observability import logger
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.problems import Conflict, InvalidToken, NotFound

__all__ = ["BootstrapToken", "CheckIn", "ClientCertificate", "Enrollment", "Observation",
           "check_in", "count_in_group", "get", "group_views", "heartbeat_interval", "list_agents",
           "mark_certificate", "move", "online_of", "revoke_certificate", "roster_shards",
           "token_revoked"]

_configurations = LazyModule("chalicelib.configurations.delivery")
_desired = LazyModule("chalicelib.groups.desired")
_enrollment = LazyModule("chalicelib.enrollment.service")
_groups = LazyModule("chalicelib.groups.service")
_tenants = LazyModule("chalicelib.tenants.service")

DEFAULT_GROUP = "default"
#: How long a container trusts its copy of a tenant's heartbeat interval: a changed interval
#: reaches agents within this time, and a warm container reads the tenant's settings at most
#: this often, whatever the number of its agents.
INTERVAL_CACHE_SECONDS = 300.0
_intervals: dict[str, tuple[float, int]] = {}


# --- the tenant's heartbeat interval ------------------------------------------------------

def heartbeat_interval(tenant: str) -> int:
    """The tenant's heartbeat interval in seconds (cached in the container for a minute)."""
    now = deps().monotonic()
    cached = _intervals.get(tenant)
    if cached is not None and now - cached[0] < INTERVAL_CACHE_SECONDS:
        return cached[1]
    settings, _revision = _tenants.get(tenant)
    value = int(settings.heartbeat_interval_seconds)
    _intervals[tenant] = (now, value)
    return value


def forget_cached() -> None:
    """Drop the cached intervals and version targets (tests change settings and tables)."""
    _intervals.clear()
    _version_target.cache_clear()


# --- reading and viewing ------------------------------------------------------------------

def _find(tenant: str, agent_id: str) -> AgentItem | None:
    return find(AgentItem, tenant, agent_id)


def _get_item(tenant: str, agent_id: str) -> AgentItem:
    return get_or_not_found(AgentItem, tenant, agent_id, "agent")


def _labels(item: AgentItem) -> dict[str, str]:
    stored = item.labels
    return {} if stored is None else {str(k): str(v) for k, v in stored.as_dict().items()}


def _certificate(item: AgentItem) -> dict[str, Any] | None:
    if item.cert_serial is None:
        return None
    return {"serial": item.cert_serial, "not_after": item.cert_not_after,
            "revoked": item.cert_revoked_at is not None, "revoked_at": item.cert_revoked_at}


def _description(item: AgentItem) -> dict[str, Any] | None:
    if item.identifying is None:
        return None
    return {"identifying_attributes": item.identifying,
            "non_identifying_attributes": item.non_identifying or {}}


def _configuration(item: AgentItem) -> dict[str, Any] | None:
    if item.desired_configuration_id is None or item.config_status is None:
        return None
    applied = item.applied_version
    return {"configuration_id": item.desired_configuration_id,
            "version": int(item.desired_version or 0),
            "applied_version": None if applied is None else int(applied),
            "status": item.config_status, "error": item.config_error,
            "drifted": bool(item.drifted)}


def _view(item: AgentItem, now: datetime, interval: int) -> Agent:
    online = presence.is_online(item.last_seen_at, item.disconnected_at is not None, now,
                                interval)
    revoked = item.cert_revoked_at is not None
    return Agent.model_validate({
        "id": item.id, "group_id": item.group_id, "labels": _labels(item),
        "name": item.name, "type": item.agent_type, "version": item.agent_version,
        "host_name": item.host_name, "status": presence.status(revoked=revoked, online=online),
        "online": online and not revoked, "last_seen_at": item.last_seen_at,
        "disconnected_at": item.disconnected_at, "enrolled_at": item.enrolled_at,
        "enrolled_by_token": item.enrolled_by, "description": _description(item),
        "capabilities": capability_names(int(item.capabilities or 0)), "health": item.health,
        "effective_config_hash": item.effective_config_hash,
        "remote_config_status": item.remote_config_status,
        "configuration": _configuration(item), "certificate": _certificate(item),
    })


def view(item: AgentItem) -> Agent:
    """The API view of ``item`` as of now."""
    return _view(item, deps().clock.now(), heartbeat_interval(item.tenant))


def get(tenant: str, agent_id: str) -> Agent:
    """One agent of the tenant."""
    return view(_get_item(tenant, agent_id))


# --- listing --------------------------------------------------------------------------------

def _status_condition(status: str, cutoff: datetime) -> Any:
    revoked = AgentItem.cert_revoked_at.exists()
    online = (AgentItem.last_seen_at > cutoff) & AgentItem.disconnected_at.does_not_exist()
    if status == "revoked":
        return revoked
    if status == "online":
        return online & ~revoked
    return ~online & ~revoked


def _conditions(tenant: str, query: AgentQuery, now: datetime) -> list[Any]:
    found: list[Any] = []
    if query.group is not None:
        found.append(AgentItem.group_id == query.group)
    if query.status is not None:
        cutoff = now - presence.online_window(heartbeat_interval(tenant))
        found.append(_status_condition(query.status, cutoff))
    if query.labels:
        found += label_conditions(AgentItem.labels, query.labels)
    if query.name is not None:
        found.append(AgentItem.host_name.startswith(query.name)
                     | AgentItem.agent_type.startswith(query.name))
    if query.type is not None:
        found.append(AgentItem.agent_type == query.type)
    if query.version is not None:
        found.append(AgentItem.agent_version == query.version)
    if query.health is not None:
        found.append(AgentItem.healthy == (query.health == "healthy"))
    if query.config_status is not None:
        found.append(AgentItem.config_status == query.config_status)
    if query.drifted is not None:
        found.append(AgentItem.drifted == True if query.drifted  # noqa: E712 - a condition
                     else AgentItem.drifted.does_not_exist() | (AgentItem.drifted == False))  # noqa: E712
    return found


def list_agents(tenant: str, page: PageRequest, query: AgentQuery) -> Page[Agent]:
    """The tenant's agents that match every filter, in enrollment (instance uid) order."""
    now = deps().clock.now()
    condition = None
    for part in _conditions(tenant, query, now):
        condition = part if condition is None else condition & part
    found = query_page(AgentItem, tenant, page, filter_condition=condition)
    interval = heartbeat_interval(tenant)
    return found.map(lambda item: _view(item, now, interval))


# --- events and writes ----------------------------------------------------------------------

def _event(tenant: str, kind: str, agent_id: str, data: dict[str, Any], at: datetime) -> Any:
    d = deps()
    return event_item(tenant=tenant, event_type=kind, subject=f"agents/{agent_id}",
                      data={"id": agent_id, **data}, at=at, event_id=d.new_id(),
                      random_hex=d.random_bytes(4).hex())


def _actions(updates: dict[str, Any]) -> list[Any]:
    attributes = AgentItem.get_attributes()
    return [attributes[name].remove() if value is None else attributes[name].set(value)
            for name, value in updates.items()]


def _write(item: AgentItem, updates: dict[str, Any], events: list[Any],
           condition: Any = None) -> bool:
    """Apply ``updates`` (with ``events`` and the roster change they make, atomically); False
    if ``condition`` failed."""
    guard = AgentItem.id.exists() if condition is None else AgentItem.id.exists() & condition
    moves = _roster_changes(item, updates)
    if not events and not moves:
        try:
            item.update(actions=_actions(updates), condition=guard)
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
    elif not _commit(item.tenant, lambda tx: tx.update(item, actions=_actions(updates),
                                                       condition=guard), moves, events):
        return False
    for name, value in updates.items():
        setattr(item, name, value)
    return True


# --- the roster (agents/roster.py) ------------------------------------------------------------

#: Tries of a write whose roster shard another write changed meanwhile.
ROSTER_ATTEMPTS = 8


def _entry(item: AgentItem) -> dict[str, Any]:
    return roster.entry(_view(item, deps().clock.now(), heartbeat_interval(item.tenant))
                        .to_wire())


def _roster_changes(item: AgentItem, updates: dict[str, Any]) -> list[roster.Change]:
    """The roster changes of writing ``updates`` to ``item``."""
    if roster.SOURCE_ATTRIBUTES.isdisjoint(updates):
        return []
    after = AgentItem.from_raw_data(item.serialize())
    for name, value in updates.items():
        setattr(after, name, value)
    return roster.changes(item.id, _entry(item), _entry(after))


def _shard_writes(tenant: str, change: roster.Change) -> list[Callable[[Any], None]]:
    """The transaction operation that applies ``change`` to its shard as it stands now
    (conditioned on the shard's revision), or none when there is nothing to change."""
    key = group_key(tenant, change.group_id)
    current = find_shard(key, change.shard)
    members = roster.unpack(None if current is None else current.members)
    if current is None and change.entry is None:
        return []
    blob = roster.applied(members, change)
    if current is None:
        created = RosterShard(group_key=key, shard=change.shard, revision=deps().new_id(),
                              members=blob, size=len(members))
        return [lambda tx: tx.save(created, condition=RosterShard.shard.does_not_exist())]
    unchanged = RosterShard.revision == current.revision
    if not members:
        return [lambda tx: tx.delete(current, condition=unchanged)]
    updated = RosterShard(group_key=key, shard=change.shard, revision=deps().new_id(),
                          members=blob, size=len(members))
    return [lambda tx: tx.save(updated, condition=unchanged)]


def find_shard(key: str, shard: int) -> RosterShard | None:
    """One roster shard, read consistently (None: the shard is empty)."""
    try:
        return RosterShard.get(key, shard, consistent_read=True)
    except RosterShard.DoesNotExist:
        return None


def _commit(tenant: str, write: Callable[[Any], None], moves: list[roster.Change],
            events: list[Any]) -> bool:
    """Run the agent's ``write`` with its roster ``moves`` and ``events`` in one transaction;
    False if the agent's condition failed. A shard changed by another write meanwhile is read
    again and the transaction retried."""
    for _attempt in range(ROSTER_ATTEMPTS):
        shards = [op for change in moves for op in _shard_writes(tenant, change)]

        def build(tx: Any, shards: list[Callable[[Any], None]] = shards) -> None:
            write(tx)
            for op in shards:
                op(tx)
            for event in events:
                tx.save(event)

        failed = transact(build)
        if not failed:
            return True
        if failed.get(AgentItem.Meta.table_name) == "ConditionalCheckFailed":
            return False
        if RosterShard.Meta.table_name not in failed:
            raise Conflict(f"the agent's write was cancelled: {failed}")
    raise Conflict("the group's roster kept changing; try again")


def _roster_view(tenant: str, agent: dict[str, Any], group_id: str) -> dict[str, Any] | None:
    """An agent the roster could not hold whole, read from its item (None: it left)."""
    item = _find(tenant, str(agent["id"]))
    return None if item is None or item.group_id != group_id else view(item).to_wire()


def _presence(tenant: str, group_id: str) -> dict[str, dict[str, Any]]:
    """Each agent of the group's ``status`` and ``online`` now, by id: read from the agent
    items, only the attributes that say it."""
    now, interval = deps().clock.now(), heartbeat_interval(tenant)
    found = {}
    for item in AgentItem.query(tenant, filter_condition=AgentItem.group_id == group_id,
                                attributes_to_get=["id", "last_seen_at", "disconnected_at",
                                                   "cert_revoked_at"]):
        online = presence.is_online(item.last_seen_at, item.disconnected_at is not None, now,
                                    interval)
        revoked = item.cert_revoked_at is not None
        found[item.id] = {
            "status": presence.status(revoked=revoked, online=online),
            "online": online and not revoked}
    return found


def online_of(tenant: str, agent_ids: Iterable[str]) -> dict[str, bool]:
    """Whether each of the agents is online now, by id (unknown agents are left out): read
    in batches, only the attributes that say it."""
    now, interval = deps().clock.now(), heartbeat_interval(tenant)
    keys = [(tenant, agent_id) for agent_id in agent_ids]
    found = {}
    for item in AgentItem.batch_get(keys, attributes_to_get=["id", "last_seen_at",
                                                             "disconnected_at",
                                                             "cert_revoked_at"]):
        online = presence.is_online(item.last_seen_at, item.disconnected_at is not None, now,
                                    interval)
        found[item.id] = online and item.cert_revoked_at is None
    return found


def group_views(tenant: str, group_id: str, *, presence: bool = True) -> list[dict[str, Any]]:
    """Every agent of a group as policies see it, in id order: the API's wire form, from the
    group's roster.

    With ``presence`` the agents' ``status`` and ``online`` are joined from their items
    (reading every item of the group, a few attributes each); the agent items then also
    decide membership, so an agent missing from the roster is read whole. Without it, those
    fields are absent.
    """
    members: dict[str, dict[str, Any]] = {}
    for shard in RosterShard.query(group_key(tenant, group_id), consistent_read=True):
        members.update(roster.unpack(shard.members))
    joined = _presence(tenant, group_id) if presence else None
    if joined is not None:
        members = {agent_id: members.get(agent_id) or {"id": agent_id, "truncated": True}
                   for agent_id in joined}
    views = []
    for agent_id in sorted(members):
        agent: dict[str, Any] | None = members[agent_id]
        if agent is not None and agent.get("truncated"):
            agent = _roster_view(tenant, agent, group_id)
        if agent is None:
            continue
        if joined is not None:
            agent = {**agent, **joined[agent_id]}
        views.append(agent)
    return views


def roster_shards(tenant: str, group_id: str, items: Iterable[AgentItem]) -> list[RosterShard]:
    """The roster of a group made of ``items`` (all in that group), as items to save: for
    loading many agents at once (benches, imports) rather than agent by agent."""
    key = group_key(tenant, group_id)
    return [RosterShard(group_key=key, shard=shard, revision=deps().new_id(),
                        members=roster.pack(members), size=len(members))
            for shard, members in sorted(roster.shards(_entry(item) for item in items).items())]


# --- the configuration the agent's group wants ------------------------------------------------

#: What an agent's group wants it to run: the desired version and the content to send.
Target = tuple[Desired, Any] | None


def _target(tenant: str, group_id: str, agent_id: str) -> Target:
    """The version the agent should run, as its group says (the group's desired version, or
    a rollout's), and its content (both cached per container)."""
    wanted = _desired.desired_configuration(tenant, group_id, agent_id)
    if wanted is None:
        return None
    try:
        return _version_target(tenant, *wanted)
    except (NotFound, Conflict):
        logger.warning("group %s wants a configuration version it cannot be given", group_id)
        return None


@lru_cache(maxsize=64)
def _version_target(tenant: str, configuration_id: str, version: int) -> tuple[Desired, Any]:
    """A published version as a target: versions never change, so its fingerprints are
    computed once per container, not on every heartbeat."""
    content = _configurations.delivery(tenant, configuration_id, version)
    files = {content.file_name: (content.content_type, content.body)}
    return Desired(configuration_id=configuration_id, version=version,
                   config_hash=content.config_hash.hex(), files_hash=files_hash(files)), content


def _wanted(target: Target) -> Desired | None:
    return None if target is None else target[0]


def _config_events(item: AgentItem, outcome: Plan, now: datetime) -> list[Any]:
    """The events of a change in the agent's configuration standing."""
    data = {"groupId": item.group_id, **outcome.changed.get("configuration", {})}
    return [_event(item.tenant, kind, item.id, data, now) for kind in outcome.config_events]


# --- check-ins (the OpAMP endpoint) --------------------------------------------------------

@dataclass(frozen=True)
class CheckIn:
    """What the OpAMP endpoint needs to answer one message."""

    agent_id: str
    interval: int
    full_state: bool
    offer_settings: bool
    capabilities: int
    cert_serial: str | None
    cert_not_after: datetime | None
    cert_issued_at: datetime | None
    #: The serial and expiry of the client certificate this message came with (None: a token).
    presented_serial: str | None = None
    presented_not_after: datetime | None = None
    #: The configuration to send (a ``configurations.delivery.Delivery``), if it must be sent.
    remote_config: Any = None


def _snapshot(item: AgentItem) -> Snapshot:
    def number(value: Any) -> int | None:
        return None if value is None else int(value)

    return Snapshot(
        description_hash=item.description_hash, capabilities=number(item.capabilities),
        health_hash=item.health_hash, effective_config_hash=item.effective_config_hash,
        remote_config_hash=item.remote_config_hash, sequence_num=number(item.sequence_num),
        last_seen_at=item.last_seen_at, disconnected=item.disconnected_at is not None,
        offered_interval=number(item.offered_interval),
        remote_config_status=item.remote_config_status,
        configuration=Standing(
            configuration_id=item.desired_configuration_id, version=number(item.desired_version),
            status=item.config_status, error=item.config_error,
            applied_version=number(item.applied_version), baseline=item.config_baseline,
            drifted=item.drifted),
    )


def _in_grace(item: AgentItem, serial: str, now: datetime) -> bool:
    """Whether ``serial`` is the agent's previous leaf, replaced but not yet confirmed."""
    return (item.previous_serial is not None and serial == item.previous_serial
            and item.previous_not_after is not None and now <= item.previous_not_after)


def _admit(item: AgentItem | None, credential: Enrollment | ClientCertificate,
           now: datetime) -> None:
    if item is None:
        if isinstance(credential, ClientCertificate):
            raise InvalidToken("no agent holds this client certificate")
        return
    if item.cert_revoked_at is not None:
        raise InvalidToken("the agent's certificate was revoked")
    if (isinstance(credential, ClientCertificate) and credential.serial != item.cert_serial
            and not _in_grace(item, credential.serial, now)):
        raise InvalidToken("the client certificate is not the agent's current one")


def _confirm_renewal(item: AgentItem, credential: Enrollment | ClientCertificate) -> None:
    """The agent shows its new leaf: the previous one is no longer accepted (one write, once)."""
    if (isinstance(credential, ClientCertificate) and item.previous_serial is not None
            and credential.serial == item.cert_serial):
        _write(item, {"previous_serial": None, "previous_not_after": None}, [],
               AgentItem.cert_serial == credential.serial)


def _presented(item: AgentItem, serial: str | None) -> tuple[str, datetime | None] | None:
    """The serial and expiry of the agent's leaf ``serial`` (current or previous), if known."""
    if serial is None:
        return None
    if serial == item.cert_serial:
        return serial, item.cert_not_after
    if serial == item.previous_serial:
        return serial, item.previous_not_after
    return None


def _result(item: AgentItem, outcome: Plan, interval: int,
            credential: Enrollment | ClientCertificate, target: Target) -> CheckIn:
    serial = credential.serial if isinstance(credential, ClientCertificate) else None
    presented = _presented(item, serial)
    sent = target[1] if target is not None and outcome.send_config else None
    return CheckIn(agent_id=item.id, interval=interval, full_state=outcome.full_state,
                   remote_config=sent,
                   offer_settings=outcome.offer_settings,
                   capabilities=int(item.capabilities or 0), cert_serial=item.cert_serial,
                   cert_not_after=item.cert_not_after, cert_issued_at=item.cert_issued_at,
                   presented_serial=None if presented is None else presented[0],
                   presented_not_after=None if presented is None else presented[1])


def _landing_group(tenant: str, group_id: str) -> str:
    if group_id and group_id != DEFAULT_GROUP:
        try:
            _groups.require_active(tenant, group_id)
            return group_id
        except NotFound:
            pass
    return str(_groups.ensure_default(tenant))


def _enroll(tenant: str, agent_id: str, obs: Observation, grant: Enrollment, now: datetime,
            interval: int) -> tuple[AgentItem, Plan, Target] | None:
    group = _landing_group(tenant, grant.group_id)
    target = _target(tenant, group, agent_id)
    item = AgentItem(tenant=tenant, id=agent_id, group_id=group,
                     group_key=group_key(tenant, group), labels=dict(grant.labels),
                     enrolled_at=now, enrolled_by=grant.token_id,
                     token_expires_at=grant.expires_at, updated_at=now)
    outcome = plan(Snapshot(), obs, now, interval, _wanted(target))
    for name, value in outcome.updates.items():
        setattr(item, name, value)
    data = {"groupId": group, "tokenId": grant.token_id, "labels": dict(grant.labels),
            "changed": outcome.changed}
    events = [_event(tenant, "agent.enrolled", agent_id, data, now),
              *_config_events(item, outcome, now)]
    moves = roster.changes(agent_id, None, _entry(item))
    if not _commit(tenant, lambda tx: tx.save(item, condition=AgentItem.id.does_not_exist()),
                   moves, events):
        return None
    return item, outcome, target


def _update(item: AgentItem, obs: Observation, now: datetime, interval: int,
            target: Target) -> Plan:
    outcome = plan(_snapshot(item), obs, now, interval, _wanted(target))
    if not outcome.writes:
        return outcome
    events = _config_events(item, outcome, now)
    if outcome.event is not None:
        outcome.updates["updated_at"] = now
        data = {"groupId": item.group_id, "changed": outcome.changed}
        events.insert(0, _event(item.tenant, outcome.event, item.id, data, now))
    _write(item, outcome.updates, events)
    return outcome


def _vouches(item: AgentItem | None, token_id: str, now: datetime) -> bool:
    """Whether the agent's own item admits the token, with no token read: the token enrolled
    the agent and, as far as the item knows (revocations are written onto it), still holds."""
    if item is None or item.enrolled_by != token_id or item.token_expires_at is None:
        return False
    if item.token_revoked_at is not None:
        raise InvalidToken("the bootstrap token is revoked")
    if now >= item.token_expires_at:
        raise InvalidToken("the bootstrap token is expired")
    return True


def _token_grant(item: AgentItem | None, token: BootstrapToken, now: datetime) -> Enrollment:
    if _vouches(item, token.token_id, now):
        assert item is not None
        return Enrollment(token_id=token.token_id, group_id=item.group_id,
                          expires_at=item.token_expires_at)
    return token.redeem()


def _still_admitted(item: AgentItem, grant: Enrollment, now: datetime) -> None:
    """After enrolling with a token: refuse if it was revoked meanwhile.

    A revocation marks the agents that exist when it runs; an agent created after the
    token's check but before the revocation is caught here, since its item now exists.
    """
    if _enrollment.is_live(item.tenant, grant.token_id):
        return
    _write(item, {"token_revoked_at": now}, [])
    raise InvalidToken("the bootstrap token is revoked")


def check_in(tenant: str, agent_id: str, obs: Observation,
             credential: BootstrapToken | Enrollment | ClientCertificate) -> CheckIn:
    """Record what one OpAMP message says; enroll the agent on its first message.

    A client certificate has already been verified, and is checked here against the agent
    (it must be the agent's current, unrevoked leaf). A bootstrap token is admitted by the
    agent's item when that token enrolled it (a steady heartbeat reads nothing else); other
    agents go through the token's full check, which may take one of its uses.
    """
    now, interval = deps().clock.now(), heartbeat_interval(tenant)
    item = _find(tenant, agent_id)
    checked = (_token_grant(item, credential, now) if isinstance(credential, BootstrapToken)
               else credential)
    _admit(item, checked, now)
    if item is None:
        assert isinstance(checked, Enrollment)
        enrolled = _enroll(tenant, agent_id, obs, checked, now, interval)
        if enrolled is not None:
            if isinstance(credential, BootstrapToken):
                _still_admitted(enrolled[0], checked, now)
            return _result(*enrolled[:2], interval, checked, enrolled[2])
        item = _get_item(tenant, agent_id)  # a concurrent first message enrolled it
    _confirm_renewal(item, checked)
    target = _target(tenant, item.group_id, agent_id)
    return _result(item, _update(item, obs, now, interval, target), interval, checked, target)


# --- what other rooms call -----------------------------------------------------------------

def _require_group(tenant: str, group_id: str) -> None:
    if group_id == DEFAULT_GROUP:
        _groups.ensure_default(tenant)
    else:
        _groups.require_active(tenant, group_id)


def move(tenant: str, agent_id: str, group_id: str) -> dict[str, Any]:
    """Move an agent to another (active) group; returns the agent's view."""
    _require_group(tenant, group_id)
    item = _get_item(tenant, agent_id)
    if item.group_id != group_id:
        now = deps().clock.now()
        change = {"group": {"from": item.group_id, "to": group_id}}
        event = _event(tenant, "agent.updated", agent_id,
                       {"groupId": group_id, "changed": change}, now)
        updates = {"group_id": group_id, "group_key": group_key(tenant, group_id),
                   "updated_at": now}
        if not _write(item, updates, [event]):
            raise NotFound(f"no agent {agent_id!r}")
    return view(item).to_wire()


def count_in_group(tenant: str, group_id: str) -> int:
    """How many agents are in the group now."""
    return int(AgentItem.by_group.count(group_key(tenant, group_id)))


def mark_certificate(tenant: str, agent_id: str, *, serial: str, not_after: datetime,
                     presented: str | None = None) -> None:
    """Record the client certificate just issued to the agent (it replaces any earlier one).

    ``presented`` is the serial of the leaf the agent asked with (None: it used a token). That
    leaf stays accepted, in the same write, until the agent shows the new one or it expires,
    so an agent that never received the answer is not locked out. A leaf revoked since the
    agent was admitted is never replaced (the write is refused).
    """
    item = _get_item(tenant, agent_id)
    now = deps().clock.now()
    kept = None if item.cert_revoked_at is not None else _presented(item, presented)
    updates = {"cert_serial": serial, "cert_not_after": not_after, "cert_issued_at": now,
               "cert_revoked_at": None, "updated_at": now,
               "previous_serial": None if kept is None else kept[0],
               "previous_not_after": None if kept is None else kept[1]}
    change = {"certificate": {"serial": serial, "notAfter": not_after.isoformat()}}
    event = _event(tenant, "agent.updated", agent_id,
                   {"groupId": item.group_id, "changed": change}, now)
    unrevoked = (AgentItem.cert_revoked_at.does_not_exist() if item.cert_revoked_at is None
                 else None)
    if not _write(item, updates, [event], unrevoked):
        if _find(tenant, agent_id) is None:
            raise NotFound(f"no agent {agent_id!r}")
        raise InvalidToken("the agent's certificate was revoked")


def revoke_certificate(tenant: str, agent_id: str) -> dict[str, Any]:
    """Revoke the agent's client certificate: its next request is refused; emits agent.revoked."""
    item = _get_item(tenant, agent_id)
    if item.cert_serial is None:
        raise Conflict(f"agent {agent_id!r} has no certificate to revoke")
    if item.cert_revoked_at is None:
        now = deps().clock.now()
        event = _event(tenant, "agent.revoked", agent_id,
                       {"groupId": item.group_id, "serial": item.cert_serial}, now)
        updates = {"cert_revoked_at": now, "updated_at": now, "previous_serial": None,
                   "previous_not_after": None}
        if not _write(item, updates, [event], AgentItem.cert_serial == item.cert_serial):
            return revoke_certificate(tenant, agent_id)
    return view(item).to_wire()


def token_revoked(tenant: str, agent_id: str, token_id: str, at: datetime) -> None:
    """Record on an agent enrolled by ``token_id`` that the token was revoked: the agent's
    next request with that token is refused (its certificate, if any, still admits it)."""
    try:
        AgentItem(tenant=tenant, id=agent_id).update(
            actions=[AgentItem.token_revoked_at.set(at)],
            condition=AgentItem.id.exists() & (AgentItem.enrolled_by == token_id))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
