"""Rollouts driven by their real state machine on moto (rollouts/machine.py, its tasks run
in-process), moving simulated agents wave by wave.

Wait states are scaled down (a 60 s bake takes 60 ms); the app's clock is the test's, which
the test moves on, so a wave's bake is over when the test says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.cli.sim_agent import SimulatedAgent
from tests.integration.test_config_delivery import YAML_V1, YAML_V2, Fleet
from tests.support.api import Api

#: A 60 s Wait takes 60 ms here.
TIME_SCALE = 0.001
#: The most a test waits (real seconds) for the machine to get somewhere.
PATIENCE = 20.0


@pytest.fixture
def moto_config() -> dict[str, Any]:
    """moto interprets the state machines."""
    from chalicelib.local.stepfunctions import MOTO_CONFIG

    return dict(MOTO_CONFIG)


#: moto is not thread-safe: the machine's tasks (on moto's threads) and the test's calls take
#: turns, as the local stack's worker lock makes them.
LOCK = threading.RLock()


def locked(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call``, holding :data:`LOCK`."""
    def run(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return call(*args, **kwargs)
    return run


@pytest.fixture
def machines(aws: None, api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The rollout state machine, its tasks in-process, waits scaled down."""
    from chalicelib.local import rollouts
    from chalicelib.local.stepfunctions import LocalStateMachines
    from chalicelib.rollouts import executions
    from tests.integration import test_config_delivery

    monkeypatch.setattr(api.client.http, "request", locked(api.client.http.request))
    monkeypatch.setattr(test_config_delivery, "post", locked(test_config_delivery.post))
    with LocalStateMachines(time_scale=TIME_SCALE) as found:
        rollouts.install(found, locked)
        yield found
    executions.forget()


def until(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` until it returns something true (the machine runs in its own thread)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


class Rollouts:
    """One fleet's rollouts, through the API."""

    def __init__(self, api: Api, fleet: Fleet) -> None:
        self.api, self.fleet = api, fleet

    def start(self, version: int, **strategy: Any) -> str:
        created = self.api.post("/api/rollouts", {
            "configurationId": self.fleet.configuration, "version": version,
            "groupId": self.fleet.group, "strategy": {"bakeSeconds": 60, **strategy}})
        assert created.status == 201, created.json
        started = self.api.post(f"/api/rollouts/{created.json['id']}/start")
        assert started.status == 200, started.json
        return str(created.json["id"])

    def get(self, rollout: str) -> dict[str, Any]:
        return dict(self.api.get(f"/api/rollouts/{rollout}").json)

    def open_waves(self, rollout: str, count: int) -> dict[str, Any]:
        return until(lambda: (found := self.get(rollout))["progress"]["openWaves"] >= count
                     and found, f"wave {count} to open")

    def state(self, rollout: str, state: str) -> dict[str, Any]:
        return until(lambda: (found := self.get(rollout))["state"] == state and found,
                     f"the rollout to be {state}")

    def settle(self, agents: list[SimulatedAgent]) -> None:
        """Every agent talks twice: it is offered what its wave says, and reports back."""
        for _ in range(2):
            for agent in agents:
                self.fleet.exchange(agent)


def applied(fleet: Fleet, agents: list[SimulatedAgent]) -> list[int | None]:
    return [fleet.view(agent)["configuration"]["appliedVersion"] for agent in agents]


@pytest.fixture
def fleet(api: Api, machines: Any) -> Fleet:
    """A group on version 1, with version 2 published."""
    fleet = Fleet(api)
    fleet.desire(fleet.publish(YAML_V1))
    assert fleet.publish(YAML_V2) == 2
    return fleet


def test_a_rollout_moves_agents_wave_by_wave_and_succeeds(api: Api, fleet: Fleet,
                                                          clock: Any) -> None:
    agents = [fleet.agent() for _ in range(3)]
    rollouts = Rollouts(api, fleet)
    rollouts.settle(agents)
    assert applied(fleet, agents) == [1, 1, 1]
    rollout = rollouts.start(2, waves=[34, 67, 100])
    for wave in (1, 2, 3):
        # When wave k is open, exactly k agents are given version 2
        found = rollouts.open_waves(rollout, wave)
        assert [w["targeted"] for w in found["waves"]] == [1, 1, 1]
        rollouts.settle(agents)
        assert sorted(applied(fleet, agents)) == [1] * (3 - wave) + [2] * wave
        # And once the bake is over, the next wave opens (or the rollout succeeds)
        clock.advance(seconds=61)
    done = rollouts.state(rollout, "succeeded")
    assert done["progress"]["applied"] == 3 and done["progress"]["failed"] == 0
    assert [w["applied"] for w in done["waves"]] == [1, 1, 1]
    assert done["finishedAt"] is not None and done["history"][-1]["by"] is None
    group = api.get(f"/api/groups/{fleet.group}").json
    assert group["desiredConfiguration"] == {"configurationId": fleet.configuration,
                                             "version": 2}
    rollouts.settle(agents)
    assert applied(fleet, agents) == [2, 2, 2]
    # And every step was an event, written with it
    kinds = [kind for kind in _events(rollout) if kind != "rollout.progress"]
    assert sorted(kinds) == sorted(["rollout.created", "rollout.started", "rollout.wave-opened",
                                    "rollout.wave-opened", "rollout.wave-opened",
                                    "rollout.succeeded"])
    assert "rollout.progress" in _events(rollout)
    with LOCK:
        from chalicelib.core.events import EventRecord

        group_updates = [e.envelope["data"] for e in EventRecord.query("acme")
                         if e.envelope["subject"] == f"groups/{fleet.group}"
                         and e.envelope["type"] == "group.updated"]
    assert group_updates[-1]["desiredConfiguration"]["version"] == 2


def _events(rollout: str) -> list[str]:
    from chalicelib.core.events import EventRecord

    with LOCK:
        return [e.envelope["type"] for e in EventRecord.query("acme")
                if e.envelope["subject"] == f"rollouts/{rollout}"]


def test_failures_past_the_budget_pause_without_opening_the_next_wave(api: Api, fleet: Fleet,
                                                                    clock: Any) -> None:
    agents = [fleet.agent() for _ in range(4)]
    rollouts = Rollouts(api, fleet)
    rollouts.settle(agents)
    for agent in agents:
        agent.fail_applies = True
    rollout = rollouts.start(2, waves=[50, 100], failureBudget={"count": 1})
    rollouts.open_waves(rollout, 1)
    rollouts.settle(agents)
    # Then the breach pauses the rollout at once, with its cause, and wave 2 stays shut
    paused = rollouts.state(rollout, "paused")
    assert paused["cause"] == "wave 1 has 2 failed agent(s), over its budget of 1"
    assert paused["waves"][0]["failed"] == 2 and paused["progress"]["openWaves"] == 1
    # (its execution waits on its task token: nothing more will run until it is resumed)
    until(lambda: _token(rollout), "the execution to hold")
    clock.advance(seconds=600)
    assert rollouts.get(rollout)["progress"]["openWaves"] == 1
    # And rolling back returns the agents that got version 2 to version 1
    for agent in agents:
        agent.fail_applies = False
    back = api.post(f"/api/rollouts/{rollout}/rollback", {"reason": "bad exporter"})
    assert back.status == 200, back.json
    assert back.json["state"] == "rolled-back"
    rollouts.settle(agents)
    assert applied(fleet, agents) == [1, 1, 1, 1]


def test_a_breach_rolls_back_on_its_own_when_the_strategy_says_so(api: Api, fleet: Fleet,
                                                                 clock: Any) -> None:
    agents = [fleet.agent() for _ in range(2)]
    rollouts = Rollouts(api, fleet)
    rollouts.settle(agents)
    rollout = rollouts.start(2, waves=[50, 100], onBreach="rollback")
    rollouts.open_waves(rollout, 1)
    for agent in agents:
        agent.fail_applies = True
    rollouts.settle(agents)
    done = rollouts.state(rollout, "rolled-back")
    assert done["cause"].startswith("wave 1 has 1 failed agent(s)")
    for agent in agents:
        agent.fail_applies = False
    rollouts.settle(agents)
    assert applied(fleet, agents) == [1, 1]


def test_pause_holds_the_execution_and_resume_goes_on(api: Api, fleet: Fleet,
                                                      clock: Any) -> None:
    agents = [fleet.agent() for _ in range(2)]
    rollouts = Rollouts(api, fleet)
    rollout = rollouts.start(2, waves=[50, 100])
    rollouts.open_waves(rollout, 1)
    assert api.post(f"/api/rollouts/{rollout}/pause").status == 200
    rollouts.settle(agents)
    clock.advance(seconds=61)
    # Then the execution waits on its task token, and no wave opens
    until(lambda: _token(rollout), "the execution to hold")
    assert rollouts.get(rollout)["progress"]["openWaves"] == 1
    # And resuming goes on to the next wave, and to the end
    assert api.post(f"/api/rollouts/{rollout}/resume").status == 200
    rollouts.open_waves(rollout, 2)
    rollouts.settle(agents)
    clock.advance(seconds=61)
    rollouts.state(rollout, "succeeded")


def _token(rollout: str) -> str | None:
    from chalicelib.rollouts.models import RolloutItem

    with LOCK:
        return RolloutItem.get("acme", rollout, consistent_read=True).task_token


def test_a_task_failing_once_is_retried(api: Api, fleet: Fleet, clock: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import PutError

    from chalicelib.rollouts import service

    original, failures = service.open_wave, []

    def throttled(tenant: str, rollout_id: str) -> Any:
        if not failures:
            failures.append(1)
            raise PutError("throttled", cause=ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem"))
        return original(tenant, rollout_id)

    monkeypatch.setattr(service, "open_wave", throttled)
    rollout = Rollouts(api, fleet).start(2, waves=[100], bakeSeconds=0)
    assert Rollouts(api, fleet).state(rollout, "succeeded") and failures == [1]


def test_a_task_failing_for_good_fails_the_rollout_with_its_cause(
        api: Api, fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.rollouts import service

    def broken(tenant: str, rollout_id: str) -> Any:
        raise RuntimeError("the roster is unreadable")

    monkeypatch.setattr(service, "open_wave", broken)
    rollouts = Rollouts(api, fleet)
    rollout = rollouts.start(2, waves=[100])
    failed = rollouts.state(rollout, "failed")
    assert failed["cause"] == "RuntimeError: the roster is unreadable"
    # And a failed rollout still holds its group until it is rolled back
    second = api.post("/api/rollouts", {"configurationId": fleet.configuration, "version": 2,
                                        "groupId": fleet.group}).json["id"]
    assert api.post(f"/api/rollouts/{second}/start").status == 409
    assert api.post(f"/api/rollouts/{rollout}/rollback").status == 200
    assert api.post(f"/api/rollouts/{second}/start").status == 200


def test_a_lost_execution_is_driven_on_from_where_it_stood(api: Api, fleet: Fleet,
                                                           clock: Any) -> None:
    import boto3

    from chalicelib.rollouts import executions, service

    agents = [fleet.agent() for _ in range(2)]
    rollouts = Rollouts(api, fleet)
    rollout = rollouts.start(2, waves=[50, 100])
    rollouts.open_waves(rollout, 1)
    # When its execution is gone (stopped behind the rollout's back)
    with LOCK:
        boto3.client("stepfunctions", region_name="us-east-1").stop_execution(
            executionArn=executions.execution_arn(rollout))
    until(locked(lambda: not executions.running(rollout)), "the execution to stop")
    # Then the sweep starts a new one, which opens no wave twice and goes on to the end
    with LOCK:
        assert service.redrive_lost() == 1
        assert service.redrive_lost() == 0
    assert rollouts.get(rollout)["execution"] == f"{rollout}-2"
    rollouts.settle(agents)
    clock.advance(seconds=61)
    rollouts.open_waves(rollout, 2)
    rollouts.settle(agents)
    clock.advance(seconds=61)
    done = rollouts.state(rollout, "succeeded")
    assert len([e for e in done["history"] if e["action"] == "start"]) == 1
    assert applied(fleet, agents) == [2, 2]
