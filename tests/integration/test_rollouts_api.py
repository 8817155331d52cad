"""Rollouts through HTTP: create, list, read, and the operators' actions, with a state machine
on moto that records executions (the executions themselves run in test_rollouts_execution)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_policies_evaluate import approve_policy, configuration, enroll, group
from tests.support.api import Api

DOCS = "https://docs.ampora.io/errors/"
DEBUG = "receivers:\n  otlp: {}\nexporters:\n  debug: {}\n"


@pytest.fixture
def machine(aws: None) -> Iterator[str]:
    """The rollout state machine, recorded by moto (its executions do not run here)."""
    import boto3

    from chalicelib.rollouts import executions, machine

    executions.forget()
    arns = {role: f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
            for role, name in machine.TASKS.items()}
    created = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
        name=executions.machine_name(), definition=json.dumps(machine.definition(arns)),
        roleArn="arn:aws:iam::123456789012:role/rollouts")
    yield str(created["stateMachineArn"])
    executions.forget()


def publish(api: Api, configuration_id: str, version: int = 1) -> None:
    answer = api.post(f"/api/configurations/{configuration_id}/versions/{version}/publish")
    assert answer.status == 200, answer.json


def draft(api: Api, configuration_id: str, content: str) -> int:
    answer = api.post(f"/api/configurations/{configuration_id}/versions", {"content": content})
    assert answer.status == 201, answer.json
    return int(answer.json["version"])


@pytest.fixture
def fleet(api: Api) -> dict[str, Any]:
    """A group of two agents and a configuration with a published version 1."""
    web = group(api)
    agents = enroll(api, web, {"env": "prod"}, 2)
    config = configuration(api)
    publish(api, config)
    return {"group": web, "config": config, "agents": agents}


def create(api: Api, fleet: dict[str, Any], **body: Any) -> Any:
    spec = {"configurationId": fleet["config"], "version": 1, "groupId": fleet["group"],
            "strategy": {"waves": [50, 100], "bakeSeconds": 60}, **body}
    return api.post("/api/rollouts", spec, role="Operator")


def act(api: Api, rollout: str, verb: str, **kwargs: Any) -> Any:
    return api.post(f"/api/rollouts/{rollout}/{verb}", kwargs.pop("body", None),
                    role=kwargs.pop("role", "Operator"), **kwargs)


def test_a_created_rollout_is_read_back_with_its_strategy_and_waves(api: Api, fleet) -> None:
    created = create(api, fleet, description="canary first")
    assert created.status == 201, created.json
    rollout = created.json
    assert created.header("Location") == f"/api/rollouts/{rollout['id']}"
    assert rollout["state"] == "created" and rollout["description"] == "canary first"
    assert rollout["strategy"]["waves"] == [50, 100]
    assert rollout["strategy"]["failureBudget"] == {"count": 0, "percent": None}
    assert rollout["strategy"]["onBreach"] == "pause"
    assert [w["number"] for w in rollout["waves"]] == [1, 2]
    assert rollout["progress"]["openWaves"] == 0
    assert rollout["history"][0]["action"] == "create"
    read = api.get(f"/api/rollouts/{rollout['id']}", role="Viewer")
    assert read.status == 200 and read.json == rollout
    assert read.header("ETag") == created.header("ETag")


def test_a_generated_strategy_lists_its_waves(api: Api, fleet) -> None:
    created = create(api, fleet, strategy={"generator": {"kind": "linear", "step": 25}})
    assert created.status == 201, created.json
    assert [w["percent"] for w in created.json["waves"]] == [25, 50, 75, 100]


def test_rollouts_are_listed_and_filtered(api: Api, fleet) -> None:
    first = create(api, fleet).json["id"]
    other = group(api, "db")
    second = api.post("/api/rollouts", {"configurationId": fleet["config"], "version": 1,
                                        "groupId": other}).json["id"]
    assert [r["id"] for r in api.get("/api/rollouts").json] == [first, second]
    assert [r["id"] for r in api.get(f"/api/rollouts?group={other}").json] == [second]
    assert [r["id"] for r in api.get("/api/rollouts?status=created").json] == [first, second]
    assert api.get("/api/rollouts?status=running").json == []
    assert api.get("/api/rollouts?configuration=nope").json == []
    assert api.get("/api/rollouts?status=bogus").status == 400


@pytest.mark.parametrize(("body", "pointer"), [
    ({"strategy": {"waves": [50, 40, 100]}}, "/strategy/waves"),
    ({"strategy": {"waves": [50]}}, "/strategy/waves"),
    ({"strategy": {"waves": [0, 100]}}, "/strategy/waves"),
    ({"strategy": {"waves": [50, 100], "generator": {"kind": "linear", "step": 10}}},
     "/strategy"),
    ({"strategy": {"generator": {"kind": "exponential", "start": 1}}}, "/strategy/generator"),
    ({"strategy": {"generator": {"kind": "linear", "step": 0}}}, "/strategy/generator/step"),
    ({"strategy": {"failureBudget": {"count": 1, "percent": 5}}}, "/strategy/failureBudget"),
    ({"strategy": {"failureBudget": {"percent": 101}}}, "/strategy/failureBudget/percent"),
    ({"strategy": {"offline": {"mode": "sometimes"}}}, "/strategy/offline/mode"),
    ({"strategy": {"bakeSeconds": -1}}, "/strategy/bakeSeconds"),
    ({"strategy": {"onBreach": "panic"}}, "/strategy/onBreach"),
    ({"version": 0}, "/version"),
    ({"surprise": True}, "/surprise"),
])
def test_bad_strategies_are_422_and_create_nothing(api: Api, fleet, body: dict[str, Any],
                                                    pointer: str) -> None:
    answer = create(api, fleet, **body)
    assert answer.status == 422, answer.json
    assert answer.json["type"] == DOCS + "validation-failed"
    assert any(e["pointer"].startswith(pointer) for e in answer.json["errors"]), answer.json
    assert api.get("/api/rollouts").json == []


def test_an_unpublished_version_cannot_be_rolled_out(api: Api, fleet) -> None:
    version = draft(api, fleet["config"], DEBUG)
    answer = create(api, fleet, version=version)
    assert answer.status == 409, answer.json
    assert "draft" in answer.json["detail"]


@pytest.mark.parametrize("change", [{"groupId": "nope"}, {"configurationId": "nope"},
                                    {"version": 9}])
def test_unknown_targets_are_404(api: Api, fleet, change: dict[str, Any]) -> None:
    assert create(api, fleet, **change).status == 404


def test_a_deleted_group_cannot_be_rolled_out_to(api: Api, fleet) -> None:
    empty = group(api, "empty")
    assert api.call("DELETE", f"/api/groups/{empty}").status == 204
    assert create(api, fleet, groupId=empty).status == 404


def test_another_tenants_rollouts_are_404(api: Api, fleet) -> None:
    rollout = create(api, fleet).json["id"]
    assert api.get(f"/api/rollouts/{rollout}", tenant="globex").status == 404
    assert act(api, rollout, "start", tenant="globex").status == 404
    assert api.get("/api/rollouts", tenant="globex").json == []


def test_viewers_cannot_create_or_act(api: Api, fleet) -> None:
    assert create(api, fleet | {}, ).status == 201
    rollout = api.get("/api/rollouts").json[0]["id"]
    assert api.post("/api/rollouts", {}, role="Viewer").status == 403
    assert act(api, rollout, "start", role="Viewer").status == 403


# --- starting ----------------------------------------------------------------------------------

def test_starting_fixes_the_cohorts_and_takes_the_group(api: Api, fleet, machine) -> None:
    import boto3

    rollout = create(api, fleet).json["id"]
    started = act(api, rollout, "start", body={"reason": "tuesday change"})
    assert started.status == 200, started.json
    assert started.json["state"] == "running"
    assert [w["targeted"] for w in started.json["waves"]] == [1, 1]
    assert started.json["previous"] is None and started.json["execution"] == rollout
    entry = started.json["history"][-1]
    assert (entry["action"], entry["fromState"], entry["toState"], entry["reason"]) == \
        ("start", "created", "running", "tuesday change")
    assert entry["by"]["type"] == "user"
    executions = boto3.client("stepfunctions", region_name="us-east-1").list_executions(
        stateMachineArn=machine)["executions"]
    assert [e["name"] for e in executions] == [rollout]
    # And the group cannot be deleted while the rollout holds it
    audit = api.get("/api/audit/events").json
    assert any(e["action"] == "rollouts.start" for e in audit)


def test_a_second_active_rollout_on_a_group_is_409(api: Api, fleet, machine) -> None:
    first, second = create(api, fleet).json["id"], create(api, fleet).json["id"]
    assert act(api, first, "start").status == 200
    answer = act(api, second, "start")
    assert answer.status == 409, answer.json
    assert answer.json["activeRollout"] == first
    assert api.get(f"/api/rollouts/{second}").json["state"] == "created"


def test_rollout_policies_deny_the_start_with_the_spec_problem(api: Api, fleet,
                                                              machine) -> None:
    approve_policy(api, "no-staging-only", 'agent.labels["env"] == "staging"')
    rollout = create(api, fleet).json["id"]
    answer = act(api, rollout, "start")
    assert answer.status == 422, answer.json
    body = answer.json
    assert body["type"] == DOCS + "policy-denied"
    assert body["title"] == "Policy denied the push"
    assert body["instance"] == f"/api/rollouts/{rollout}/start"
    first = sorted(fleet["agents"])[0]
    assert body["detail"] == f"Policy 'no-staging-only' returned false for agent {first}"
    assert body["total"] == 2
    assert api.get(f"/api/rollouts/{rollout}").json["state"] == "created"


def test_a_deleted_group_stops_the_start(api: Api, machine) -> None:
    empty = group(api, "empty")
    config = configuration(api)
    publish(api, config)
    rollout = api.post("/api/rollouts", {"configurationId": config, "version": 1,
                                         "groupId": empty}).json["id"]
    assert api.call("DELETE", f"/api/groups/{empty}").status == 204
    answer = act(api, rollout, "start")
    assert answer.status == 409 and "deleted" in answer.json["detail"]


def test_a_rollback_strategy_needs_a_version_to_return_to(api: Api, fleet, machine) -> None:
    rollout = create(api, fleet, strategy={"onBreach": "rollback"}).json["id"]
    answer = act(api, rollout, "start")
    assert answer.status == 409 and "nothing to roll back to" in answer.json["detail"]


def test_without_a_state_machine_nothing_starts(api: Api, fleet) -> None:
    from chalicelib.rollouts import executions

    executions.forget()
    rollout = create(api, fleet).json["id"]
    assert act(api, rollout, "start").status == 503
    assert api.get(f"/api/rollouts/{rollout}").json["state"] == "created"


# --- the other actions -------------------------------------------------------------------------

@pytest.mark.parametrize(("moves", "verb", "state"), [
    ([], "pause", "created"), ([], "resume", "created"), ([], "rollback", "created"),
    (["start"], "start", "running"), (["start"], "resume", "running"),
    (["start", "pause"], "pause", "paused"), (["abort"], "start", "aborted"),
    (["abort"], "abort", "aborted"), (["start", "rollback"], "resume", "rolled-back"),
])
def test_illegal_moves_are_409_naming_the_state(api: Api, fleet, machine, moves: list[str],
                                                 verb: str, state: str) -> None:
    rollout = create(api, fleet).json["id"]
    for move in moves:
        assert act(api, rollout, move).status == 200, move
    answer = act(api, rollout, verb)
    assert answer.status == 409, answer.json
    assert answer.json["state"] == state
    assert f"the rollout is {state}" in answer.json["detail"]


def test_stale_if_match_is_412_and_changes_nothing(api: Api, fleet, machine) -> None:
    created = create(api, fleet)
    rollout, tag = created.json["id"], created.header("ETag")
    assert act(api, rollout, "start", headers={"If-Match": tag}).status == 200
    answer = act(api, rollout, "pause", headers={"If-Match": tag})
    assert answer.status == 412
    assert api.get(f"/api/rollouts/{rollout}").json["state"] == "running"
    current = api.get(f"/api/rollouts/{rollout}").header("ETag")
    assert act(api, rollout, "pause", headers={"If-Match": current}).status == 200


def test_pause_resume_abort_are_kept_in_the_history(api: Api, fleet, machine) -> None:
    rollout = create(api, fleet).json["id"]
    for verb in ("start", "pause", "resume"):
        assert act(api, rollout, verb, body={"reason": f"{verb} now"}).status == 200
    aborted = act(api, rollout, "abort", body={"reason": "wrong version"})
    assert aborted.status == 200 and aborted.json["state"] == "aborted"
    assert aborted.json["finishedAt"] is not None
    assert [(h["action"], h["toState"], h["reason"]) for h in aborted.json["history"]] == [
        ("create", "created", None), ("start", "running", "start now"),
        ("pause", "paused", "pause now"), ("resume", "running", "resume now"),
        ("abort", "aborted", "wrong version")]
    # The group is free again
    second = create(api, fleet).json["id"]
    assert act(api, second, "start").status == 200


def test_every_action_emits_its_event(api: Api, fleet, machine) -> None:
    from chalicelib.core.events import EventRecord

    rollout = create(api, fleet).json["id"]
    for verb in ("start", "pause", "resume", "abort"):
        act(api, rollout, verb)
    kinds = [e.envelope["type"] for e in EventRecord.query("acme")
             if e.envelope["subject"] == f"rollouts/{rollout}"]
    # (the test clock stands still, so the events share one timestamp: compare them unordered)
    assert sorted(kinds) == ["rollout.aborted", "rollout.created", "rollout.paused",
                             "rollout.resumed", "rollout.started"]


def test_a_configuration_a_rollout_holds_cannot_be_deleted(api: Api, fleet, machine) -> None:
    rollout = create(api, fleet).json["id"]
    assert act(api, rollout, "start").status == 200
    answer = api.call("DELETE", f"/api/configurations/{fleet['config']}")
    assert answer.status == 409 and rollout in answer.json["detail"]
    assert act(api, rollout, "rollback").status == 200
    assert api.call("DELETE", f"/api/configurations/{fleet['config']}").status == 204


def test_a_group_a_rollout_holds_cannot_be_deleted(api: Api, machine) -> None:
    empty = group(api, "empty")
    config = configuration(api)
    publish(api, config)
    rollout = api.post("/api/rollouts", {"configurationId": config, "version": 1,
                                         "groupId": empty}).json["id"]
    assert act(api, rollout, "start").status == 200
    answer = api.call("DELETE", f"/api/groups/{empty}")
    assert answer.status == 409 and rollout in answer.json["detail"]
