"""End-to-end: a rollout moves real OpAMP agents wave by wave on the local stack.

Three agents run the real ``opentelemetry-opamp-client`` runtime (``OpAMPAgent``: its own
worker and heartbeat threads, its requests transport) against ``ampora dev`` over HTTP,
enrolled into a group by a bootstrap token. Like an agent of that library would, each one
applies the JSON configuration it is sent and reports it applied. They heartbeat every
quarter second: the client's own interval (it does not take the server's offer), so the
tenant's setting (5 s at least) need not change.

The rollout's state machine runs on moto inside the stack, with real-time Wait states: a
2 s bake lasts 2 s. Polling loops are bounded by a generous deadline; no assertion is
about time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry._opamp.agent import OpAMPAgent
from opentelemetry._opamp.callbacks import MessageData, OpAMPCallbacks
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2 as client_pb2

from tests.e2e.conftest import LocalStack
from tests.e2e.test_agents_e2e import _agents, _created

pytestmark = pytest.mark.e2e

AGENTS = 3
#: How often the agents heartbeat (seconds): well under a bake, so a wave's agents have
#: applied its version before it is judged (else the gate looks again only 15 s later).
HEARTBEAT = 0.25
#: Each wave bakes this long (seconds, real time on the local stack).
BAKE = 2
#: The most any one step may take before the test gives up (a deadline, not an assertion).
PATIENCE = 45.0
#: The most a whole rollout may take: a wave whose agents have not all reported when its bake
#: is over is looked at again 15 s later (rollouts/health.py), slow but not wrong.
ROLLOUT_PATIENCE = 90.0
POLL = 0.1
FILE = "sampler.json"
FINAL = ("succeeded", "failed", "aborted", "rolled-back", "paused")


def content(version: int) -> dict[str, Any]:
    """The configuration's content at ``version`` (distinct per version)."""
    return {"sampler": {"ratio": version / 10}, "exporters": ["otlp"]}


def until(check: Callable[[], Any], what: str, patience: float = PATIENCE) -> Any:
    """Poll ``check`` until it returns something true; fail after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    found = None
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(POLL)
    raise AssertionError(f"gave up waiting for {what}; last seen: {found!r}")


class Applier(OpAMPCallbacks):
    """What an agent does with a remote configuration: apply it, and report the outcome."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.applied: list[dict[str, Any]] = []

    def on_message(self, agent: OpAMPAgent, client: OpAMPClient, message: MessageData) -> None:
        remote = message.remote_config
        if remote is None:
            return
        try:
            files = dict(client.decode_remote_config(remote))
        except Exception as exc:  # noqa: BLE001 - an agent reports a bad config, never raises
            status = client.update_remote_config_status(
                remote.config_hash, client_pb2.RemoteConfigStatuses_FAILED, str(exc))
        else:
            client.update_effective_config(files, "application/json")
            status = client.update_remote_config_status(
                remote.config_hash, client_pb2.RemoteConfigStatuses_APPLIED)
            if status is not None:
                with self.lock:
                    self.applied.append(files)
        if status is not None:  # only a change is reported (the client dedupes it)
            agent.send(client.build_full_state_message())

    def last(self) -> dict[str, Any] | None:
        """The configuration files it applied last."""
        with self.lock:
            return self.applied[-1] if self.applied else None


@dataclass
class Agent:
    """One running agent: the OpAMP client, its runtime and what it applied."""

    client: OpAMPClient
    runtime: OpAMPAgent
    callbacks: Applier

    @property
    def id(self) -> str:
        """The agent's id as Ampora shows it (its instance UID, hex)."""
        return self.client._instance_uid.hex()


def start_agent(stack: LocalStack, token: str, number: int) -> Agent:
    """An agent on the real client, with nothing but the endpoint and its bootstrap token."""
    client = OpAMPClient(
        endpoint=f"{stack.url}/v1/opamp",
        headers={"Authorization": f"Bearer {token}"},
        agent_identifying_attributes={"service.name": "e2e-rollouts",
                                      "service.version": "1.0.0"},
        agent_non_identifying_attributes={"host.name": f"pod-{number}"},
        timeout_millis=15_000,
    )
    callbacks = Applier()
    runtime = OpAMPAgent(interval=HEARTBEAT, callbacks=callbacks, client=client,
                         initial_backoff=0.2)
    runtime.start()
    return Agent(client=client, runtime=runtime, callbacks=callbacks)


@dataclass
class Fleet:
    """A group, its JSON configuration and the running agents enrolled into the group."""

    stack: LocalStack
    admin: str
    group_id: str
    configuration_id: str
    agents: list[Agent] = field(default_factory=list)

    @property
    def config_path(self) -> str:
        return f"/api/configurations/{self.configuration_id}"

    def publish(self, version: int) -> None:
        """Save the configuration's next version (``version``) and publish it."""
        saved = self.stack.call("POST", f"{self.config_path}/versions", token=self.admin,
                                body={"content": json.dumps(content(version))})
        assert saved.status == 201, saved.body
        assert saved.json()["version"] == version, saved.body
        etag = self.stack.call("GET", self.config_path, token=self.admin).headers.get("ETag")
        published = self.stack.call("POST", f"{self.config_path}/versions/{version}/publish",
                                    token=self.admin, headers={"If-Match": etag})
        assert published.status == 200, published.body

    def roll_out(self, version: int, waves: list[float]) -> str:
        """Create and start a rollout of ``version`` onto the group; its id."""
        created = _created(self.stack, "/api/rollouts", self.admin, {
            "configurationId": self.configuration_id, "version": version,
            "groupId": self.group_id, "strategy": {"waves": waves, "bakeSeconds": BAKE}})
        assert created["state"] == "created"
        started = self.stack.call("POST", f"/api/rollouts/{created['id']}/start",
                                  token=self.admin, body={"reason": "e2e"})
        assert started.status == 200, started.body
        assert started.json()["state"] == "running", started.body
        return str(created["id"])

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        reply = self.stack.call("GET", f"/api/rollouts/{rollout_id}", token=self.admin)
        assert reply.status == 200, reply.body
        return dict(reply.json())

    def ended(self, rollout_id: str) -> dict[str, Any]:
        """The rollout once it is in a final (or paused) state."""
        return dict(until(lambda: (found := self.rollout(rollout_id))["state"] in FINAL
                          and found, f"rollout {rollout_id} to end", ROLLOUT_PATIENCE))

    def on_version(self, version: int) -> int:
        """How many of the group's agents have ``version`` applied, as the API lists them."""
        return sum(1 for agent in _agents(self.stack, self.admin, f"&group={self.group_id}")
                   if _applied(agent.get("configuration"), self.configuration_id, version))

    def group(self) -> dict[str, Any]:
        reply = self.stack.call("GET", f"/api/groups/{self.group_id}", token=self.admin)
        assert reply.status == 200, reply.body
        return dict(reply.json())

    def check_everyone_on(self, version: int) -> None:
        """Every agent, by id, runs ``version``; so does the group; and so say the agents."""
        for agent in self.agents:
            reply = self.stack.call("GET", f"/api/agents/{agent.id}", token=self.admin)
            assert reply.status == 200, reply.body
            shown = reply.json()["configuration"]
            assert _applied(shown, self.configuration_id, version), (agent.id, shown)
            assert shown["version"] == version and shown["error"] is None, shown
            assert agent.callbacks.last() == {FILE: content(version)}, agent.id
        assert self.group()["desiredConfiguration"] == {
            "configurationId": self.configuration_id, "version": version}


def _applied(configuration: dict[str, Any] | None, configuration_id: str, version: int) -> bool:
    return configuration is not None and (
        configuration["configurationId"], configuration["appliedVersion"],
        configuration["status"]) == (configuration_id, version, "applied")


@dataclass(frozen=True)
class Seen:
    """One look at a running rollout: the rollout, and how many agents had its version
    applied just before it was read."""

    rollout: dict[str, Any]
    on_new: int

    @property
    def open_waves(self) -> int:
        return int(self.rollout["progress"]["openWaves"])


def watch(fleet: Fleet, rollout_id: str, version: int,
          stop: Callable[[Seen], bool] = lambda seen: seen.rollout["state"] in FINAL
          ) -> list[Seen]:
    """Look at the rollout and its agents every :data:`POLL` seconds until ``stop``."""
    seen: list[Seen] = []

    def look() -> bool:
        on_new = fleet.on_version(version)  # first: waves only open, so on_new <= open waves
        seen.append(Seen(fleet.rollout(rollout_id), on_new))
        return stop(seen[-1])

    until(look, f"rollout {rollout_id} to move on", ROLLOUT_PATIENCE)
    return seen


def distinct(values: list[int]) -> list[int]:
    """``values`` without consecutive repeats."""
    return [value for index, value in enumerate(values) if not index or value != values[index - 1]]


@pytest.fixture(scope="module")
def fleet(stack: LocalStack) -> Iterator[Fleet]:
    """Three real agents enrolled into a group that runs version 1 (put there by a one-wave
    rollout: there is no other way to put a group on a version over the API)."""
    admin = stack.dev_token("Admin")
    group = _created(stack, "/api/groups", admin, {"name": "e2e-rollouts"})
    configuration = _created(stack, "/api/configurations", admin, {
        "name": "e2e-sampler", "contentType": "application/json", "fileName": FILE})
    token = _created(stack, "/api/tokens", admin, {
        "name": "e2e-rollouts", "maxUses": AGENTS, "groupId": group["id"]})["token"]
    fleet = Fleet(stack=stack, admin=admin, group_id=group["id"],
                  configuration_id=configuration["id"])
    try:
        fleet.agents = [start_agent(stack, token, number) for number in range(AGENTS)]
        ids = {agent.id for agent in fleet.agents}
        until(lambda: {a["id"] for a in _agents(stack, admin, f"&group={group['id']}")} == ids,
              "the agents to enroll")
        fleet.publish(1)
        first = fleet.roll_out(1, [100])
        ended = fleet.ended(first)
        assert ended["state"] == "succeeded", ended
        assert ended["previous"] is None
        fleet.check_everyone_on(1)
        yield fleet
    finally:
        with ThreadPoolExecutor() as pool:  # each stop waits up to a second for its worker
            list(pool.map(lambda agent: agent.runtime.stop(timeout=5), fleet.agents))


def test_a_rollout_moves_real_agents_wave_by_wave(fleet: Fleet) -> None:
    # Given the group on version 1, and version 2 published
    fleet.publish(2)
    # When version 2 is rolled out in three waves of one agent each
    rollout_id = fleet.roll_out(2, [34, 67, 100])
    seen = watch(fleet, rollout_id, 2)

    # Then the waves opened one at a time, and no agent ever ran ahead of its wave
    running = [look for look in seen if look.rollout["state"] == "running"]
    assert [n for n in distinct([look.open_waves for look in running]) if n] == [1, 2, 3]
    assert all(look.on_new <= look.open_waves for look in seen), \
        [(look.open_waves, look.on_new) for look in seen]
    # And with wave k open, k agents ran version 2
    for wave in (1, 2, 3):
        assert any(look.open_waves == wave and look.on_new == wave for look in seen), wave
    # And the rollout's own progress, per wave and overall, counted them: 1, then 2, then 3
    assert [n for n in distinct([look.rollout["progress"]["applied"] for look in seen])
            if n] == [1, 2, 3]
    for look in running:
        waves, opened = look.rollout["waves"], look.open_waves
        assert all(wave["applied"] == 1 for wave in waves[:max(opened - 1, 0)]), waves
        assert all(wave["openedAt"] is None and wave["members"] == 0 for wave in waves[opened:])
        assert look.rollout["progress"]["applied"] >= opened - 1

    # And it ended succeeded, every wave with its one agent applied
    done = seen[-1].rollout
    assert done["state"] == "succeeded", done
    assert done["previous"] == {"configurationId": fleet.configuration_id, "version": 1}
    assert [(w["number"], w["percent"], w["targeted"], w["members"], w["applied"])
            for w in done["waves"]] == [(1, 34, 1, 1, 1), (2, 67, 1, 1, 1), (3, 100, 1, 1, 1)]
    opened_at = [w["openedAt"] for w in done["waves"]]
    assert opened_at == sorted(opened_at) and len(set(opened_at)) == 3
    progress = {k: v for k, v in done["progress"].items() if k != "updatedAt"}
    assert progress == {"openWaves": 3, "targeted": 3, "applied": 3, "unhealthy": 0,
                        "failed": 0, "pending": 0, "offline": 0}
    assert [(h["action"], h["toState"]) for h in done["history"]] == [
        ("create", "created"), ("start", "running"), ("complete", "succeeded")]
    assert done["history"][-1]["by"] is None and done["finishedAt"] is not None
    # And every agent runs version 2, as the API and the agents themselves say; so does the group
    fleet.check_everyone_on(2)


def test_a_rollout_survives_a_restart_of_the_local_stack(fleet: Fleet) -> None:
    # Given a rollout of the next version, stopped with its first wave open and applied
    stack = fleet.stack
    version = int(fleet.group()["desiredConfiguration"]["version"]) + 1
    fleet.publish(version)
    rollout_id = fleet.roll_out(version, [34, 67, 100])
    before = watch(fleet, rollout_id, version,
                   lambda look: look.on_new >= 1 or look.rollout["state"] != "running")[-1]
    assert stack.stop() == 0, stack.output()
    assert before.rollout["state"] == "running" and before.open_waves >= 1, before

    # When the stack starts again on the same state dir
    stack.start()

    # Then the rollout was driven on by a new execution, and succeeded
    seen = watch(fleet, rollout_id, version)
    done = seen[-1].rollout
    assert done["state"] == "succeeded", (done, stack.output())
    assert done["execution"] == f"{rollout_id}-2"
    assert all(look.on_new <= look.open_waves for look in seen)
    assert [w["applied"] for w in done["waves"]] == [1, 1, 1]
    assert done["progress"]["applied"] == AGENTS
    fleet.check_everyone_on(version)
