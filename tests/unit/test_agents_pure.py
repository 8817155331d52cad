"""The agents room's pure logic: label selectors, presence, capabilities, attributes, plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.agents import presence
from chalicelib.agents.attributes import derive, digest
from chalicelib.agents.capabilities import capability_names
from chalicelib.agents.observation import Observation, Snapshot, health_digest, plan
from chalicelib.core import selectors as labels

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LABELS = {"env": "prod", "tier": "edge", "app.kubernetes.io/name": "otel"}


@pytest.mark.parametrize(("selector", "expected"), [
    ("", True),
    ("env=prod", True),
    ("env==prod", True),
    ("env=staging", False),
    ("env!=staging", True),
    ("tier!=edge", False),
    ("missing!=x", True),
    ("env=prod,tier!=edge", False),
    ("env=prod, tier=edge", True),
    ("tier", True),
    ("!tier", False),
    ("!missing", True),
    ("env in (prod,staging)", True),
    ("env in (staging)", False),
    ("env notin (staging, dev)", True),
    ("missing notin (x)", True),
    ("missing in (x)", False),
    ("app.kubernetes.io/name=otel", True),
    ("env in (prod),tier in (edge,core)", True),
])
def test_selector_matching(selector: str, expected: bool) -> None:
    assert labels.matches(labels.parse(selector), LABELS) is expected


@pytest.mark.parametrize("selector", [",", "env=prod,", "=prod", "env in ()", "env in (a,)",
                                      "env ~ prod", "env=prod prod", "-env=x", "env in prod"])
def test_malformed_selectors_are_refused(selector: str) -> None:
    with pytest.raises(labels.SelectorError):
        labels.parse(selector)


def test_selector_parses_into_requirements() -> None:
    assert labels.parse("env=prod,tier!=edge,x,!y,z in (a, b)") == (
        labels.Requirement("env", "=", ("prod",)), labels.Requirement("tier", "!=", ("edge",)),
        labels.Requirement("x", "exists"), labels.Requirement("y", "!exists"),
        labels.Requirement("z", "in", ("a", "b")))


@pytest.mark.parametrize(("seen_ago", "disconnected", "online"), [
    (None, False, False),
    (0, False, True),
    (89, False, True),
    (90, False, False),
    (10, True, False),
])
def test_online_means_seen_within_three_intervals(seen_ago: int | None, disconnected: bool,
                                                  online: bool) -> None:
    seen = None if seen_ago is None else NOW - timedelta(seconds=seen_ago)
    assert presence.is_online(seen, disconnected, NOW, 30) is online


@pytest.mark.parametrize(("seen_ago", "due"), [(None, True), (0, False), (59, False),
                                               (60, True), (300, True)])
def test_last_seen_is_rewritten_after_two_intervals(seen_ago: int | None, due: bool) -> None:
    seen = None if seen_ago is None else NOW - timedelta(seconds=seen_ago)
    assert presence.needs_touch(seen, NOW, 30) is due


@pytest.mark.parametrize(("stored", "stored_ago", "seq", "missed"), [
    (None, None, 7, False),   # nothing stored yet
    (5, 0, 5, False),         # the same message again (a retry)
    (5, 0, 6, False),         # the next one
    (5, 0, 4, True),          # went backwards: restarted or replayed
    (5, 60, 8, False),        # two unwritten heartbeats in two intervals
    (5, 60, 10, False),       # within the slack
    (5, 60, 11, True),        # more than time and slack explain
    (5, 0, 9, True),
])
def test_missed_messages(stored: int | None, stored_ago: int | None, seq: int,
                         missed: bool) -> None:
    at = None if stored_ago is None else NOW - timedelta(seconds=stored_ago)
    assert presence.missed_messages(stored, at, seq, NOW, 30) is missed


@pytest.mark.parametrize(("revoked", "online", "status"), [
    (True, True, "revoked"), (False, True, "online"), (False, False, "offline")])
def test_status(revoked: bool, online: bool, status: str) -> None:
    assert presence.status(revoked=revoked, online=online) == status


@pytest.mark.parametrize(("mask", "names"), [
    (0, []),
    (1, ["ReportsStatus"]),
    (0x1 | 0x800 | 0x2000, ["ReportsStatus", "ReportsHealth", "ReportsHeartbeat"]),
    (0x8000, ["ReportsConnectionSettingsStatus"]),
    (1 << 40, []),
])
def test_capability_names(mask: int, names: list[str]) -> None:
    assert capability_names(mask) == names


@pytest.mark.parametrize(("identifying", "non_identifying", "expected"), [
    ({"service.name": "otelcol", "service.version": "1.0"}, {"host.name": "h1"},
     ("otelcol", "1.0", "h1", "h1")),
    ({"service.name": "otelcol"}, {}, ("otelcol", None, None, "otelcol")),
    ({"host.name": "h2"}, {}, (None, None, "h2", "h2")),
    ({"service.name": ""}, {}, (None, None, None, None)),
    ({"service.version": 3}, {}, (None, "3", None, None)),
])
def test_attributes_derive_type_version_and_name(identifying: dict, non_identifying: dict,
                                                 expected: tuple) -> None:
    derived = derive(identifying, non_identifying)
    assert (derived.agent_type, derived.agent_version, derived.host_name,
            derived.name) == expected


def test_digest_ignores_key_order() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_health_digest_ignores_times() -> None:
    early = {"healthy": True, "status": "ok", "lastError": "", "components": {},
             "statusTimeUnixNano": 1}
    assert health_digest(early) == health_digest({**early, "statusTimeUnixNano": 2})
    assert health_digest(early) != health_digest({**early, "healthy": False})


# --- plans ---------------------------------------------------------------------------------

DESCRIBED = Observation(sequence_num=0, capabilities=1, identifying={"service.name": "a"},
                        non_identifying={"host.name": "h"},
                        health={"healthy": True, "status": "", "lastError": "", "components": {}})


def stored(**changes: object) -> Snapshot:
    """The snapshot after DESCRIBED was recorded at NOW with a 30-second interval."""
    first = plan(Snapshot(), DESCRIBED, NOW, 30).updates
    base = {"description_hash": first["description_hash"], "capabilities": 1,
            "health_hash": first["health_hash"], "sequence_num": 0, "last_seen_at": NOW,
            "offered_interval": 30}
    return Snapshot(**{**base, **changes})  # type: ignore[arg-type]


def test_new_agent_with_description_stores_everything_and_gets_the_interval() -> None:
    result = plan(Snapshot(), DESCRIBED, NOW, 30)
    assert result.updates["agent_type"] == "a" and result.updates["name"] == "h"
    assert result.updates["last_seen_at"] == NOW and result.updates["offered_interval"] == 30
    assert set(result.changed) == {"description", "capabilities", "health"}
    assert result.offer_settings and not result.full_state


def test_new_agent_without_description_is_asked_for_full_state() -> None:
    result = plan(Snapshot(), Observation(sequence_num=0, capabilities=1), NOW, 30)
    assert result.full_state


def test_plain_heartbeat_within_two_intervals_writes_nothing() -> None:
    heartbeat = Observation(sequence_num=1, capabilities=1)
    result = plan(stored(), heartbeat, NOW + timedelta(seconds=30), 30)
    assert not result.writes and result.event is None and not result.full_state
    assert not result.offer_settings


def test_plain_heartbeat_after_two_intervals_touches_last_seen_only() -> None:
    later = NOW + timedelta(seconds=60)
    result = plan(stored(), Observation(sequence_num=2, capabilities=1), later, 30)
    assert result.updates == {"last_seen_at": later, "sequence_num": 2}
    assert result.event is None


@pytest.mark.parametrize(("observation", "changed"), [
    (Observation(sequence_num=1, capabilities=3), {"capabilities"}),
    (Observation(sequence_num=1, capabilities=1, effective_config_hash="ab"), {"effectiveConfig"}),
    (Observation(sequence_num=1, capabilities=1, health={"healthy": False}), {"health"}),
    (Observation(sequence_num=1, capabilities=1, remote_config_status={"status": "FAILED"}),
     {"remoteConfigStatus"}),
    (Observation(sequence_num=1, capabilities=1, identifying={"service.name": "b"}),
     {"description"}),
])
def test_each_change_is_written_with_an_updated_event(observation: Observation,
                                                      changed: set[str]) -> None:
    result = plan(stored(), observation, NOW, 30)
    assert set(result.changed) == changed and result.event == "agent.updated"
    assert result.updates["sequence_num"] == 1


def test_repeating_the_same_state_changes_nothing() -> None:
    again = Observation(**{**DESCRIBED.__dict__, "sequence_num": 1})
    assert not plan(stored(), again, NOW, 30).writes


def test_disconnect_and_return() -> None:
    goodbye = Observation(sequence_num=1, capabilities=1, disconnect=True)
    left = plan(stored(), goodbye, NOW, 30)
    assert left.event == "agent.offline" and left.updates["disconnected_at"] == NOW
    back = plan(stored(disconnected=True), Observation(sequence_num=2, capabilities=1), NOW, 30)
    assert back.event == "agent.updated" and back.changed == {"online": True}
    assert back.updates["disconnected_at"] is None


def test_sequence_regression_asks_for_full_state_and_stores_the_new_number() -> None:
    result = plan(stored(sequence_num=9), Observation(sequence_num=0, capabilities=1), NOW, 30)
    assert result.full_state and result.offer_settings
    assert result.updates["sequence_num"] == 0 and result.event is None


def test_a_new_tenant_interval_is_offered_once() -> None:
    result = plan(stored(), Observation(sequence_num=1, capabilities=1), NOW, 10)
    assert result.offer_settings and result.updates["offered_interval"] == 10
