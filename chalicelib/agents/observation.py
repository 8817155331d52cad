"""What one OpAMP message says about an agent, and what the server must store and answer.

:func:`plan` compares an :class:`Observation` with the stored :class:`Snapshot` and
decides, without I/O, which attributes change, which event (if any) records the
change, whether the agent must send its full state, and whether the heartbeat is
worth a write at all. A plain heartbeat normally changes nothing and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.agents import presence
from chalicelib.agents.attributes import derive, digest
from chalicelib.agents.capabilities import ACCEPTS_REMOTE_CONFIG, capability_names, has
from chalicelib.agents.remote_config import Desired, Standing, assess

#: Health fields that identify a health state (times are left out: they move on every report).
_HEALTH_KEYS = ("healthy", "status", "lastError", "components")


@dataclass(frozen=True)
class Observation:
    """One AgentToServer in plain values; ``None`` means "not sent (unchanged)"."""

    sequence_num: int
    capabilities: int
    identifying: dict[str, Any] | None = None
    non_identifying: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    effective_config_hash: str | None = None
    remote_config_status: dict[str, Any] | None = None
    disconnect: bool = False


@dataclass(frozen=True)
class Enrollment:
    """A checked bootstrap-token credential: where a new agent lands, and until when the
    token admits it (``None``: the token's expiry is not known here)."""

    token_id: str
    group_id: str
    labels: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class BootstrapToken:
    """A bootstrap-token credential not checked yet: the id of the token presented, and the
    full check (it reads the token and may take one of its uses), needed only when the agent's
    own item cannot vouch for the token."""

    token_id: str
    redeem: Callable[[], Enrollment]


@dataclass(frozen=True)
class ClientCertificate:
    """An mTLS credential: the serial of the leaf the agent presented."""

    serial: str


@dataclass(frozen=True)
class Snapshot:
    """What the server has stored about an agent (all ``None`` for a new one)."""

    description_hash: str | None = None
    capabilities: int | None = None
    health_hash: str | None = None
    effective_config_hash: str | None = None
    remote_config_hash: str | None = None
    sequence_num: int | None = None
    last_seen_at: datetime | None = None
    disconnected: bool = False
    offered_interval: int | None = None
    remote_config_status: dict[str, Any] | None = None
    configuration: Standing = field(default_factory=Standing)


@dataclass
class Plan:
    """The outcome of one message: attributes to set, the change, what to answer."""

    updates: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, Any] = field(default_factory=dict)
    event: str | None = None
    full_state: bool = False
    offer_settings: bool = False
    #: Events about the agent's configuration (applied, failed, drifted), besides ``event``.
    config_events: list[str] = field(default_factory=list)
    #: Whether the desired configuration must be sent in the answer.
    send_config: bool = False

    @property
    def writes(self) -> bool:
        """Whether anything must be written."""
        return bool(self.updates)


def health_digest(health: dict[str, Any]) -> str:
    """The hash that tells one health state from another."""
    return digest({key: health.get(key) for key in _HEALTH_KEYS})


def _description(plan: Plan, snap: Snapshot, obs: Observation) -> None:
    if obs.identifying is None:
        return
    non_identifying = obs.non_identifying or {}
    value = digest([obs.identifying, non_identifying])
    if value == snap.description_hash:
        return
    derived = derive(obs.identifying, non_identifying)
    plan.updates.update(identifying=obs.identifying, non_identifying=non_identifying,
                        description_hash=value, agent_type=derived.agent_type,
                        agent_version=derived.agent_version, host_name=derived.host_name,
                        name=derived.name)
    plan.changed["description"] = {"type": derived.agent_type,
                                   "version": derived.agent_version, "name": derived.name}


def _capabilities(plan: Plan, snap: Snapshot, obs: Observation) -> None:
    if obs.capabilities != snap.capabilities:
        plan.updates["capabilities"] = obs.capabilities
        plan.changed["capabilities"] = capability_names(obs.capabilities)


def _health(plan: Plan, snap: Snapshot, obs: Observation) -> None:
    if obs.health is None:
        return
    value = health_digest(obs.health)
    if value != snap.health_hash:
        plan.updates.update(health=obs.health, healthy=bool(obs.health.get("healthy")),
                            health_hash=value)
        plan.changed["health"] = {k: obs.health.get(k) for k in ("healthy", "status",
                                                                  "lastError")}


def _configs(plan: Plan, snap: Snapshot, obs: Observation) -> None:
    effective = obs.effective_config_hash
    if effective is not None and effective != snap.effective_config_hash:
        plan.updates["effective_config_hash"] = effective
        plan.changed["effectiveConfig"] = {"hash": effective}
    remote = obs.remote_config_status
    if remote is not None and digest(remote) != snap.remote_config_hash:
        plan.updates.update(remote_config_status=remote, remote_config_hash=digest(remote))
        plan.changed["remoteConfigStatus"] = remote


def _configuration(plan: Plan, snap: Snapshot, obs: Observation,
                   desired: Desired | None) -> None:
    report = (obs.remote_config_status if obs.remote_config_status is not None
              else snap.remote_config_status)
    outcome = assess(snap.configuration, desired, report,
                     obs.effective_config_hash or snap.effective_config_hash,
                     effective_reported=obs.effective_config_hash is not None,
                     accepts_remote_config=has(obs.capabilities, ACCEPTS_REMOTE_CONFIG))
    plan.updates.update(outcome.updates)
    plan.changed.update(outcome.changed)
    plan.config_events, plan.send_config = outcome.events, outcome.send


def _connection(plan: Plan, snap: Snapshot, obs: Observation, now: datetime) -> None:
    if obs.disconnect and not snap.disconnected:
        plan.updates["disconnected_at"] = now
        plan.changed["online"] = False
    elif snap.disconnected and not obs.disconnect:
        plan.updates["disconnected_at"] = None
        plan.changed["online"] = True


def _event(plan: Plan) -> str | None:
    if plan.changed.get("online") is False:
        return "agent.offline"
    return "agent.updated" if plan.changed else None


def plan(snap: Snapshot, obs: Observation, now: datetime, interval: int,
         desired: Desired | None = None) -> Plan:
    """Decide what ``obs`` changes in ``snap`` and how to answer the agent, whose group
    wants it to run ``desired``."""
    result = Plan()
    for step in (_description, _capabilities, _health, _configs):
        step(result, snap, obs)
    _configuration(result, snap, obs, desired)
    _connection(result, snap, obs, now)
    result.event = _event(result)
    missed = presence.missed_messages(snap.sequence_num, snap.last_seen_at, obs.sequence_num,
                                      now, interval)
    lacks_description = snap.description_hash is None and obs.identifying is None
    result.full_state = missed or lacks_description
    if snap.offered_interval != interval:
        result.updates["offered_interval"] = interval
        result.offer_settings = True
    result.offer_settings = result.offer_settings or result.full_state
    if result.updates or missed or presence.needs_touch(snap.last_seen_at, now, interval):
        result.updates.update(last_seen_at=now, sequence_num=obs.sequence_num)
    return result
