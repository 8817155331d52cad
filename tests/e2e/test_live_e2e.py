"""End-to-end: the live-updates hub streams a rollout's events to operators on the local stack.

``ampora dev`` serves the hub on its own port (``ws://127.0.0.1:<port>/hubs/live-updates``);
clients are the ``websockets`` library's asyncio client, tokens come from ``ampora dev-token``.
The rollout moves the real OpAMP agents of :mod:`tests.e2e.test_rollouts_e2e` (its ``fleet``
fixture: three agents on a group already running version 1), so its events are written by the
rollout's own execution on the stack, read from the events table's stream and fanned out.

Two subscribers of tenant A (the dev tenant) and one of tenant B follow the rollout: A's first
one drops out after the first wave opens and resumes with ``since``; B sees nothing of A.
Every wait is bounded by a generous deadline; no assertion is about time.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.conftest import LocalStack
from tests.e2e.test_agents_e2e import _created
from tests.e2e.test_rollouts_e2e import ROLLOUT_PATIENCE, Fleet
from tests.e2e.test_rollouts_e2e import fleet as fleet  # the fixture, reused

pytestmark = pytest.mark.e2e

HUB = "/hubs/live-updates"
#: The dev tenant: what ``ampora dev-token`` issues tokens for unless told otherwise.
TENANT_A = "default"
TENANT_B = "e2e-live-beta"
#: The most one frame may take to arrive (a deadline against hanging, never an assertion).
PATIENCE = 30.0
#: The rollout's state events (everything but ``rollout.progress``), in the order they happen.
STATE_EVENTS = ["rollout.created", "rollout.started", "rollout.wave-opened",
                "rollout.wave-opened", "rollout.succeeded"]
EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
SEQUENCE = re.compile(r"^\d{13}-[0-9a-f]{16}$")

Frame = dict[str, Any]


@dataclass
class Subscriber:
    """One hub connection; a reader task keeps every frame it is sent, in arrival order."""

    name: str
    ws: ClientConnection
    frames: list[Frame] = field(default_factory=list)
    inbox: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        try:
            async for message in self.ws:
                frame = json.loads(message)
                assert isinstance(frame, dict), frame
                self.frames.append(frame)
                self.inbox.put_nowait(frame)
        except ConnectionClosed:
            pass

    async def send(self, message: Frame | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def next(self, check: Callable[[Frame], bool] = lambda frame: True,
                   what: str = "a frame") -> Frame:
        """The next frame (skipping those that fail ``check``), within :data:`PATIENCE`."""
        async def find() -> Frame:
            while not check(frame := await self.inbox.get()):
                pass
            return frame
        try:
            return await asyncio.wait_for(find(), PATIENCE)
        except TimeoutError:
            raise AssertionError(f"{self.name} got no {what}; got {self.frames!r}") from None

    async def subscribe(self, events: list[str], **fields: Any) -> Frame:
        """Subscribe; the ack, which is the very next frame."""
        await self.send({"type": "subscribe", "events": events, **fields})
        ack = await self.next(what="ack")
        assert ack == {"type": "ack", "of": "subscribe",
                       "subscription": {"events": events, "filter": {}}}, ack
        return ack

    async def ping(self) -> None:
        """A round trip: every frame posted to the connection before it has arrived."""
        await self.send({"type": "ping"})
        assert await self.next(lambda frame: frame.get("type") == "pong", "pong")

    def events(self) -> list[Frame]:
        """The events received (not control frames), in arrival order."""
        return [frame for frame in self.frames if "specversion" in frame]

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, PATIENCE)


async def subscriber(stack: LocalStack, name: str, token: str) -> Subscriber:
    url = stack.url.replace("http://", "ws://", 1) + f"{HUB}?access_token={token}"
    ws = await asyncio.wait_for(connect(url), PATIENCE)
    sub = Subscriber(name, ws)
    sub.reader = asyncio.create_task(sub.read())
    return sub


def of_rollout(rollout_id: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.get("subject") == f"rollouts/{rollout_id}"


def distinct(events: list[Frame]) -> list[Frame]:
    """``events`` without the ones received twice (by ``id``), first arrival kept."""
    seen: set[str] = set()
    kept = []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            kept.append(event)
    return kept


def sequences(events: list[Frame]) -> list[str]:
    return [event["sequence"] for event in events]


def state_events(events: list[Frame]) -> list[Frame]:
    return [event for event in events if event["type"] != "rollout.progress"]


def check_envelope(event: Frame, rollout_id: str) -> None:
    """A CloudEvents 1.0 envelope of the rollout's, in tenant A."""
    assert event["specversion"] == "1.0", event
    assert EVENT_ID.match(event["id"]), event
    assert event["source"] == "/ampora", event
    assert event["type"].startswith("rollout."), event
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", event["time"]), event
    assert event["subject"] == f"rollouts/{rollout_id}", event
    assert event["datacontenttype"] == "application/json", event
    assert event["data"]["id"] == rollout_id, event
    assert event["tenant"] == TENANT_A, event
    assert SEQUENCE.match(event["sequence"]), event
    assert "dataref" not in event, event


def test_a_rollout_streams_to_its_tenant_and_resumes_after_a_disconnection(
        stack: LocalStack, fleet: Fleet) -> None:
    admin_b = stack.dev_token("Admin", "--tenant", TENANT_B, "--sub", "bob")
    operator_a = stack.dev_token("Operator", "--sub", "olga")
    version = int(fleet.group()["desiredConfiguration"]["version"]) + 1
    fleet.publish(version)

    async def scenario() -> None:
        # Given two subscribers of tenant A and one of tenant B
        first = await subscriber(stack, "A1", fleet.admin)
        second = await subscriber(stack, "A2", operator_a)
        other = await subscriber(stack, "B", admin_b)
        await first.subscribe(["rollout.*"])
        await second.subscribe(["*"])
        await other.subscribe(["*"])

        # When a rollout of tenant A runs in two waves
        rollout_id = await asyncio.to_thread(fleet.roll_out, version, [50, 100])
        mine = of_rollout(rollout_id)

        # And A's first subscriber drops out once the first wave is open
        opened = await first.next(
            lambda frame: mine(frame) and frame["type"] == "rollout.wave-opened",
            "rollout.wave-opened")
        assert opened["data"]["wave"] == 1, opened
        await first.close()
        before = [event for event in first.events() if mine(event)]
        assert opened in before, before
        since = first.events()[-1]["sequence"]  # the last event it received

        # (and tenant B does something of its own meanwhile)
        b_group = await asyncio.to_thread(
            _created, stack, "/api/groups", admin_b, {"name": "beta-live"})

        # And it misses what happens next (A's second subscriber sees it)
        await second.next(lambda frame: mine(frame) and frame["sequence"] > since,
                          "an event after the first wave opened")
        missed = [event for event in second.events() if mine(event) and event["sequence"] > since]

        # And it comes back on a new connection, resuming from the last event it had
        again = await subscriber(stack, "A1 again", fleet.admin)
        await again.subscribe(["rollout.*"], since=since)
        succeeded = await again.next(
            lambda frame: mine(frame) and frame["type"] == "rollout.succeeded",
            "rollout.succeeded")
        assert succeeded["data"]["state"] == "succeeded", succeeded

        # Then A's second subscriber received the whole rollout, and the group's new version
        await second.next(lambda frame: mine(frame) and frame["type"] == "rollout.succeeded",
                          "rollout.succeeded")
        await asyncio.gather(again.ping(), second.ping(), other.ping())  # all delivered
        for sub in (again, second, other):
            await sub.close()
        # (the group's new version is announced with the success, to those who follow groups)
        [group_updated] = [event for event in second.events()
                           if event["subject"] == f"groups/{fleet.group_id}"]
        assert group_updated["type"] == "group.updated", group_updated
        assert group_updated["data"]["desiredConfiguration"] == {
            "configurationId": fleet.configuration_id, "version": version}, group_updated

        whole = [event for event in second.events() if mine(event)]
        for event in whole:
            check_envelope(event, rollout_id)
        # in the order they were made: arrival order is sequence order, each event once
        assert sequences(whole) == sorted(set(sequences(whole))), sequences(whole)
        assert len({event["id"] for event in whole}) == len(whole)
        states = state_events(whole)
        assert [event["type"] for event in states] == STATE_EVENTS, states
        assert [event["data"]["state"] for event in states] == [
            "created", "running", "running", "running", "succeeded"], states
        assert [event["data"]["wave"] for event in states[2:4]] == [1, 2], states
        assert states[1]["data"]["sizes"][-1] == len(fleet.agents), states[1]
        assert states[4]["data"]["by"] == "gate", states[4]
        progress = [event for event in whole if event["type"] == "rollout.progress"]
        assert progress, whole
        assert whole[-2]["type"] == "rollout.progress", whole  # written just before succeeded
        assert sum(wave["applied"] for wave in whole[-2]["data"]["waves"]) == len(fleet.agents)
        # the first subscriber followed rollouts only
        assert {event["type"].split(".")[0] for event in first.events() + again.events()} \
            == {"rollout"}

        # And A's first subscriber, after the ack, had what it missed replayed first
        resumed = distinct([event for event in again.events() if mine(event)])
        assert again.frames[0]["type"] == "ack", again.frames[0]
        assert sequences(resumed) == sorted(sequences(resumed)), sequences(resumed)
        assert missed and [event for event in resumed if event["sequence"] > since][
            :len(missed)] == missed, (missed, resumed)
        assert since not in sequences(resumed)  # the event named by 'since' is left out
        for event in resumed:
            check_envelope(event, rollout_id)
        # and lost nothing of the rollout: once duplicates are dropped, all of it, in order
        combined = distinct(before + resumed)
        assert sorted(sequences(combined)) == sequences(whole), (combined, whole)
        assert [e["id"] for e in state_events(sorted(combined, key=lambda e: e["sequence"]))] \
            == [e["id"] for e in states]

        # And B received its own tenant's events, and nothing of tenant A's
        b_events = other.events()
        assert all(event["tenant"] == TENANT_B for event in b_events), b_events
        assert not [event for event in b_events if mine(event)
                    or event["subject"].endswith(fleet.group_id)], b_events
        # (its first change also created its default group)
        assert f"groups/{b_group['id']}" in [event["subject"] for event in b_events
                                            if event["type"] == "group.created"], b_events

    asyncio.run(asyncio.wait_for(scenario(), ROLLOUT_PATIENCE))


def test_the_hub_refuses_a_connection_without_a_token_and_survives_bad_messages(
        stack: LocalStack) -> None:
    url = stack.url.replace("http://", "ws://", 1) + HUB

    async def scenario() -> None:
        # A connection without a token, or with a token that is not one, is refused
        for query in ("", "?access_token=not-a-token"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url + query, open_timeout=PATIENCE):
                    pass
            response = refused.value.response
            assert response.status_code == 401, (query, response)
            problem = json.loads(response.body or b"{}")
            assert problem["status"] == 401, problem

        # A malformed message gets an error frame, and the connection stays usable
        sub = await subscriber(stack, "A", stack.dev_token("Viewer"))
        await sub.send("not json")
        error = await sub.next(what="error")
        assert error["type"] == "error" and error["code"] == "bad-message", error
        assert "not JSON" in error["message"], error
        await sub.send({"type": "subscribe", "events": ["rollout.**"]})
        error = await sub.next(what="error")
        assert error["type"] == "error" and error["code"] == "bad-message", error
        await sub.send({"type": "ping"})
        assert await sub.next(what="pong") == {"type": "pong"}
        await sub.subscribe(["agent.*"])  # the refused patterns were not kept
        await sub.close()
        assert sub.ws.close_code == 1000, sub.ws.close_code

    asyncio.run(asyncio.wait_for(scenario(), 2 * PATIENCE))
