"""The live-updates hub's protocol: client messages, subscriptions, who is sent what."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.core.access import Role
from chalicelib.live import protocol
from chalicelib.live.protocol import Ping, ProtocolError, Subscribe, Subscription, Unsubscribe

ROLLOUT = {"specversion": "1.0", "type": "rollout.started", "subject": "rollouts/r1",
           "data": {"id": "r1", "groupId": "web"}, "sequence": "0000000000001-aa"}


@pytest.mark.parametrize(("text", "expected"), [
    ('{"type": "ping"}', Ping()),
    ('{"type": "subscribe", "events": ["rollout.*", "agent.updated"]}',
     Subscribe(("rollout.*", "agent.updated"), {}, None)),
    ('{"type": "subscribe", "events": ["*"], "filter": {"groupId": "web"}, '
     '"since": "1767603600000-0a1b"}', Subscribe(("*",), {"groupId": "web"}, "1767603600000-0a1b")),
    ('{"type": "subscribe", "events": ["a.b", "a.b"]}', Subscribe(("a.b",), {}, None)),
    ('{"type": "unsubscribe", "events": ["rollout.*"]}', Unsubscribe(("rollout.*",))),
    ('{"type": "unsubscribe"}', Unsubscribe(())),
])
def test_messages(text: str, expected: Any) -> None:
    assert protocol.parse(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    (None, "JSON object"), ("", "JSON object"), ("not json", "not JSON"), ("[1]", "object"),
    ('{"type": "dance"}', "'type' must be"), ('{"events": ["a"]}', "'type' must be"),
    ('{"type": "subscribe"}', "'events' must be"),
    ('{"type": "subscribe", "events": []}', "'events' must be"),
    ('{"type": "subscribe", "events": "rollout.*"}', "'events' must be"),
    ('{"type": "subscribe", "events": ["rollout.**"]}', "is not an event type"),
    ('{"type": "subscribe", "events": ["*.started"]}', "is not an event type"),
    ('{"type": "subscribe", "events": [3]}', "is not an event type"),
    ('{"type": "subscribe", "events": ["a"], "filter": []}', "'filter' must map"),
    ('{"type": "subscribe", "events": ["a"], "filter": {"x": {"y": 1}}}', "'filter' must map"),
    ('{"type": "subscribe", "events": ["a"], "since": "yesterday"}', "'since' must be"),
    ('{"type": "subscribe", "events": ["a"], "extra": 1}', "unknown field"),
    ('{"type": "ping", "x": 1}', "unknown field"),
    (json.dumps({"type": "subscribe", "events": ["a"] * 51}), "'events' must be"),
    ("x" * 40_000, "at most"),
])
def test_bad_messages_say_what_is_wrong(text: str | None, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.parse(text)


def test_subscribing_adds_patterns_and_replaces_the_filter() -> None:
    first = protocol.subscribed(Subscription(), Subscribe(("rollout.*",), {"groupId": "a"}))
    second = protocol.subscribed(first, Subscribe(("agent.updated",), {}))
    assert second == Subscription(("rollout.*", "agent.updated"), {})
    assert protocol.subscribed(second, Unsubscribe(("rollout.*",))) == \
        Subscription(("agent.updated",), {})
    assert protocol.subscribed(second, Unsubscribe(())) == Subscription()
    assert Subscription.from_wire(second.to_wire()) == second


def test_too_many_patterns_in_all() -> None:
    full = Subscription(tuple(f"a{index}" for index in range(protocol.MAX_PATTERNS)))
    with pytest.raises(ProtocolError, match="at most"):
        protocol.subscribed(full, Subscribe(("b",), {}))


@pytest.mark.parametrize(("patterns", "filters", "role", "envelope", "expected"), [
    (("rollout.*",), {}, Role.VIEWER, ROLLOUT, True),
    (("rollout.started",), {}, Role.VIEWER, ROLLOUT, True),
    (("*",), {}, Role.VIEWER, ROLLOUT, True),
    (("rollout.succeeded",), {}, Role.VIEWER, ROLLOUT, False),
    (("roll.*",), {}, Role.VIEWER, ROLLOUT, False),
    (("rollout.*",), {"groupId": "web"}, Role.VIEWER, ROLLOUT, True),
    (("rollout.*",), {"groupId": "db"}, Role.VIEWER, ROLLOUT, False),
    (("rollout.*",), {"subject": "rollouts/r1"}, Role.VIEWER, ROLLOUT, True),
    (("rollout.*",), {"missing": "x"}, Role.VIEWER, ROLLOUT, False),
    ((), {}, Role.ADMIN, ROLLOUT, False),
    (("*",), {}, Role.OPERATOR, {**ROLLOUT, "type": "api-token.created"}, False),
    (("*",), {}, Role.ADMIN, {**ROLLOUT, "type": "api-token.created"}, True),
    (("tenant.*",), {}, Role.VIEWER, {**ROLLOUT, "type": "tenant.updated"}, True),
    (("*",), {}, Role.VIEWER, {**ROLLOUT, "type": "bootstrap-token.issued"}, True),
])
def test_who_is_sent_what(patterns: tuple[str, ...], filters: dict[str, Any], role: Role,
                          envelope: dict[str, Any], expected: bool) -> None:
    assert protocol.wanted(Subscription(patterns, filters), role, envelope) is expected


def test_an_event_is_sent_whole_or_by_reference() -> None:
    assert json.loads(protocol.event_frame(ROLLOUT)) == ROLLOUT
    large = {**ROLLOUT, "data": {"blob": "x" * protocol.MAX_EVENT_BYTES}}
    sent = json.loads(protocol.event_frame(large))
    assert "data" not in sent and sent["dataref"] == "/api/rollouts/r1"
    assert sent["sequence"] == ROLLOUT["sequence"]


@pytest.mark.parametrize(("subject", "path"), [
    ("rollouts/r1", "/api/rollouts/r1"), ("agents/a1", "/api/agents/a1"),
    ("groups/g", "/api/groups/g"), ("tenant", "/api/audit/events"),
])
def test_rest_paths(subject: str, path: str) -> None:
    assert protocol.rest_path(subject) == path


def test_events_are_ordered_by_sequence() -> None:
    events = [{"sequence": "0000000000002-a"}, {"sequence": "0000000000001-b"}]
    assert [e["sequence"] for e in protocol.ordered(events)] == \
        ["0000000000001-b", "0000000000002-a"]
