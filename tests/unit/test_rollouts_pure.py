"""The rollouts' pure logic: waves and cohorts, the health gate, the lifecycle, the machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.rollouts import health, lifecycle, machine, waves

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# --- waves -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [
    ({"step": 25}, [25, 50, 75, 100]),
    ({"step": 30}, [30, 60, 90, 100]),
    ({"step": 100}, [100]),
    ({"start": 1, "factor": 10}, [1, 10, 100]),
    ({"start": 5, "factor": 2}, [5, 10, 20, 40, 80, 100]),
])
def test_generated_waves(given: dict[str, float], expected: list[float]) -> None:
    assert waves.generate(**given) == expected


def test_a_tiny_step_is_capped_at_the_most_waves() -> None:
    generated = waves.generate(step=0.01)
    assert len(generated) == waves.MAX_WAVES and generated[-1] == 100


@pytest.mark.parametrize("given", [{"step": 0}, {"start": 1, "factor": 1}, {"start": 0,
                                                                              "factor": 2}, {}])
def test_bad_generators(given: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="generator"):
        waves.generate(**given)


@pytest.mark.parametrize(("given", "message"), [
    ([], "between"), ([10, 5, 100], "cumulative"), ([10, 10, 100], "cumulative"),
    ([0, 100], "above 0"), ([50, 101], "at most 100"), ([10, 50], "last wave"),
    ([1.0] * 101, "between"),
])
def test_bad_wave_lists(given: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        waves.check(given)


@pytest.mark.parametrize(("percents", "count", "expected"), [
    ([34, 67, 100], 3, [1, 2, 3]),
    ([1, 10, 50, 100], 1000, [10, 100, 500, 1000]),
    ([1, 10, 100], 5, [1, 1, 5]),          # the canary wave holds at least one agent
    ([50, 100], 0, [0, 0]),
    ([10, 20, 100], 7, [1, 1, 7]),
    ([33.3, 66.6, 100], 1000, [333, 666, 1000]),
])
def test_wave_sizes(percents: list[float], count: int, expected: list[int]) -> None:
    assert waves.sizes(percents, count) == expected


def test_cohorts_put_exactly_each_waves_share_under_its_threshold() -> None:
    agents = [f"{number:032x}" for number in range(1000)]
    found = waves.cohorts("r1", agents, [1, 10, 50, 100])
    keys = [waves.key("r1", agent) for agent in agents]
    for size, threshold in zip(found.sizes, found.thresholds, strict=True):
        assert sum(key < threshold for key in keys) == size
    assert found.thresholds[-1] == waves.ALL
    in_wave = [found.wave_of(key) for key in keys]
    assert [in_wave.count(index) for index in range(4)] == [10, 90, 400, 500]


def test_an_agent_in_a_wave_stays_in_every_later_wave() -> None:
    agents = [f"{number:032x}" for number in range(500)]
    found = waves.cohorts("r1", agents, [5, 20, 60, 100])
    assert list(found.thresholds) == sorted(found.thresholds)
    for agent in agents:
        first = found.wave_of(waves.key("r1", agent))
        assert all(waves.key("r1", agent) < threshold
                   for threshold in found.thresholds[first:])


def test_keys_are_stable_and_differ_between_rollouts() -> None:
    assert waves.key("r1", "a") == waves.key("r1", "a") == 3154150359413000844
    assert waves.key("r2", "a") != waves.key("r1", "a")


def test_an_agent_joining_later_is_in_the_last_wave_at_the_latest() -> None:
    found = waves.cohorts("r1", ["a", "b"], [50, 100])
    assert found.wave_of(waves.ALL - 1) == 1


# --- the health gate -------------------------------------------------------------------------

def counts(**given: int) -> health.WaveCounts:
    wave = health.WaveCounts(targeted=sum(given.values()))
    wave.counts.update(given)
    return wave


@pytest.mark.parametrize(("entry", "online", "expected"), [
    ({"configuration": {"configurationId": "c", "version": 2, "appliedVersion": 2,
                        "status": "applied"}}, None, "applied"),
    ({"configuration": {"configurationId": "c", "version": 2, "appliedVersion": 2,
                        "status": "applied"}, "health": {"healthy": False}}, None, "unhealthy"),
    ({"configuration": {"configurationId": "c", "version": 2, "appliedVersion": 1,
                        "status": "failed"}}, None, "failed"),
    ({"configuration": {"configurationId": "c", "version": 2, "appliedVersion": 1,
                        "status": "applying"}}, True, "pending"),
    ({"configuration": {"configurationId": "c", "version": 1, "appliedVersion": 1,
                        "status": "applied"}}, False, "offline"),
    ({"configuration": {"configurationId": "other", "version": 2, "appliedVersion": 2,
                        "status": "applied"}}, None, "pending"),
    ({"configuration": None}, None, "pending"),
])
def test_standing(entry: dict[str, Any], online: bool | None, expected: str) -> None:
    assert health.standing(entry, online, "c", 2) == expected


GATE = health.Gate(bake_seconds=60, budget_count=1)
AFTER_BAKE = NOW + timedelta(seconds=61)


@pytest.mark.parametrize(("gate", "waves_", "opened", "now", "verdict"), [
    # baking
    (GATE, [counts(applied=3)], [NOW], NOW + timedelta(seconds=10), "wait"),
    # baked and healthy: the next wave, or done after the last
    (GATE, [counts(applied=3), counts()], [NOW], AFTER_BAKE, "continue"),
    (GATE, [counts(applied=3)], [NOW], AFTER_BAKE, "done"),
    # within budget, and over it (even while baking)
    (GATE, [counts(applied=2, failed=1), counts()], [NOW], AFTER_BAKE, "continue"),
    (GATE, [counts(applied=1, failed=2)], [NOW], NOW, "breach"),
    (GATE, [counts(applied=1, failed=1, unhealthy=1)], [NOW], NOW, "breach"),
    # an earlier wave going bad breaches too
    (GATE, [counts(failed=2), counts(applied=5)], [NOW, AFTER_BAKE], AFTER_BAKE, "breach"),
    # agents on their way hold the wave, until the wave timeout counts them as failed
    (GATE, [counts(applied=2, pending=1), counts()], [NOW], AFTER_BAKE, "wait"),
    (health.Gate(bake_seconds=60, budget_count=0, wave_timeout_seconds=120),
     [counts(applied=2, pending=1)], [NOW], NOW + timedelta(seconds=121), "breach"),
    (health.Gate(bake_seconds=60, budget_count=1, wave_timeout_seconds=120),
     [counts(applied=2, pending=1)], [NOW], NOW + timedelta(seconds=121), "done"),
    # offline agents: skipped, failed, or waited for until the deadline
    (health.Gate(bake_seconds=0, offline="skip"), [counts(applied=2, offline=1)], [NOW], NOW,
     "done"),
    (health.Gate(bake_seconds=0, offline="fail"), [counts(applied=2, offline=1)], [NOW], NOW,
     "breach"),
    (health.Gate(bake_seconds=0, offline="wait", offline_deadline_seconds=300),
     [counts(applied=2, offline=1)], [NOW], NOW, "wait"),
    (health.Gate(bake_seconds=0, offline="wait", offline_deadline_seconds=300),
     [counts(applied=2, offline=1)], [NOW], NOW + timedelta(seconds=300), "breach"),
    # a percentage budget, of the wave's members, rounded down
    (health.Gate(bake_seconds=0, budget_percent=10), [counts(applied=17, failed=3)], [NOW],
     NOW, "breach"),
    (health.Gate(bake_seconds=0, budget_percent=10), [counts(applied=18, failed=2)], [NOW],
     NOW, "done"),
    (health.Gate(bake_seconds=0, budget_percent=10), [counts(applied=9, failed=2)], [NOW],
     NOW, "breach"),
])
def test_the_gate(gate: health.Gate, waves_: list[health.WaveCounts], opened: list[datetime],
                  now: datetime, verdict: str) -> None:
    decision = health.decide(gate, waves_, opened, now)
    assert decision.verdict == verdict, decision.reason


def test_waiting_says_how_long() -> None:
    baking = health.decide(GATE, [counts(applied=3)], [NOW], NOW + timedelta(seconds=45))
    assert baking.wait_seconds == 15
    on_their_way = health.decide(GATE, [counts(pending=3)], [NOW], AFTER_BAKE)
    assert 1 <= on_their_way.wait_seconds <= health.POLL_SECONDS
    # A wave that has waited long looks again less often, but never past its timeout
    long_wait = health.decide(GATE, [counts(pending=3)], [NOW], NOW + timedelta(seconds=460))
    assert long_wait.wait_seconds == 200
    near_timeout = health.decide(GATE, [counts(pending=3)], [NOW],
                                 NOW + timedelta(seconds=3590))
    assert near_timeout.wait_seconds == 10


def test_a_breach_names_the_wave_and_its_budget() -> None:
    decision = health.decide(GATE, [counts(failed=2)], [NOW], NOW)
    assert decision.reason == "wave 1 has 2 failed agent(s), over its budget of 1"


# --- the lifecycle ---------------------------------------------------------------------------

@pytest.mark.parametrize(("state", "action", "expected"), [
    ("created", "start", "running"), ("running", "pause", "paused"),
    ("paused", "resume", "running"), ("running", "abort", "aborted"),
    ("created", "abort", "aborted"), ("paused", "rollback", "rolled-back"),
    ("failed", "rollback", "rolled-back"), ("failed", "abort", "aborted"),
    ("running", "complete", "succeeded"), ("running", "breach-pause", "paused"),
    ("running", "breach-rollback", "rolled-back"), ("paused", "fail", "failed"),
])
def test_legal_moves(state: str, action: str, expected: str) -> None:
    assert lifecycle.move(state, action) == expected


@pytest.mark.parametrize(("state", "action"), [
    ("created", "pause"), ("running", "start"), ("running", "resume"), ("paused", "pause"),
    ("created", "rollback"), ("succeeded", "abort"), ("aborted", "resume"),
    ("rolled-back", "rollback"), ("succeeded", "start"), ("paused", "complete"),
])
def test_illegal_moves_name_the_state(state: str, action: str) -> None:
    with pytest.raises(lifecycle.IllegalMove) as caught:
        lifecycle.move(state, action)
    assert f"the rollout is {state}" in str(caught.value)


def test_final_states_allow_nothing() -> None:
    for state in lifecycle.FINAL:
        assert all(state not in sources for sources, _ in lifecycle.MOVES.values())


# --- the machine -----------------------------------------------------------------------------

ARNS = {role: f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        for role, name in machine.TASKS.items()}


def test_every_state_is_reachable_and_every_next_exists() -> None:
    states = machine.definition(ARNS)["States"]
    targets = {"OpenWave"}
    for state in states.values():
        for name in [state.get("Next"), state.get("Default"),
                     *(c["Next"] for c in state.get("Choices", [])),
                     *(c["Next"] for c in state.get("Catch", []))]:
            if name is not None:
                assert name in states
                targets.add(name)
    assert targets == set(states)


def test_tasks_invoke_their_functions_with_retries_and_a_catch() -> None:
    states = machine.definition(ARNS)["States"]
    for name, role in (("OpenWave", "open"), ("Evaluate", "evaluate"), ("Failed", "fail")):
        assert states[name]["Parameters"]["FunctionName"] == ARNS[role]
        assert machine.TRANSIENT in states[name]["Retry"][0]["ErrorEquals"]
        assert "Lambda.ServiceException" in states[name]["Retry"][0]["ErrorEquals"]
    assert states["OpenWave"]["Catch"][0]["Next"] == "Failed"
    hold = states["Hold"]
    assert hold["Resource"].endswith(".waitForTaskToken")
    assert hold["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert hold["Catch"][0] == {"ErrorEquals": [machine.NOT_PAUSED], "ResultPath": "$.resumed",
                                "Next": "Evaluate"}


def test_each_answer_routes_to_its_state() -> None:
    states = machine.definition(ARNS)["States"]
    for router in ("AfterOpen", "AfterEvaluate"):
        routes = {c["StringEquals"]: c["Next"] for c in states[router]["Choices"]}
        assert routes == {k: v for k, v in machine.NEXT.items() if v != "Done"}
        assert states[router]["Default"] == "Done"
