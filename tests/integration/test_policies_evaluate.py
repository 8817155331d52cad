"""The dry run (POST /api/policies/evaluate) over agents enrolled over OpAMP, and the
rollout-scope enforcement that rollouts call."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import opamp
from tests.support.api import Api

DOCS = "https://docs.ampora.io/errors/"
EVALUATE = "/api/policies/evaluate"
PROD_ONLY = 'agent.labels["env"] == "prod"'
#: Fails to evaluate for agents without a "tier" label: must deny them, failing closed.
NEEDS_TIER = 'agent.labels["tier"] == "edge"'
CLEAN = "receivers:\n  otlp: {}\nexporters:\n  otlphttp:\n    endpoint: https://x\n"


def group(api: Api, name: str = "web", tenant: str = "acme") -> str:
    answer = api.post("/api/groups", {"name": name}, tenant=tenant)
    assert answer.status == 201, answer.json
    return str(answer.json["id"])


def enroll(api: Api, group_id: str, labels: dict[str, str], count: int = 1,
           tenant: str = "acme") -> list[str]:
    """Enroll ``count`` agents over OpAMP into ``group_id`` with ``labels``; their ids."""
    import app

    issued = api.post("/api/tokens", {"name": "fleet", "maxUses": count, "groupId": group_id,
                                      "labels": labels}, tenant=tenant)
    assert issued.status == 201, issued.json
    ids = []
    for _ in range(count):
        agent = opamp.Agent()
        reply = opamp.post(app.app, agent.full_state(), token=issued.json["token"])
        assert reply.status == 200, reply.body[:300]
        ids.append(agent.id)
    return ids


def configuration(api: Api, content: str = CLEAN, tenant: str = "acme") -> str:
    created = api.post("/api/configurations", {"name": "collector",
                                               "contentType": "application/yaml"},
                       tenant=tenant)
    assert created.status == 201, created.json
    saved = api.post(f"/api/configurations/{created.json['id']}/versions",
                     {"content": content}, tenant=tenant)
    assert saved.status == 201, saved.json
    return str(created.json["id"])


def evaluate(api: Api, **body: Any) -> Any:
    caller = {key: body.pop(key) for key in ("tenant", "role") if key in body}
    caller.setdefault("role", "Operator")
    return api.post(EVALUATE, body, **caller)


@pytest.fixture
def fleet(api: Api) -> dict[str, Any]:
    """A group "web" of two prod agents and one staging agent, and a configuration."""
    web = group(api)
    prod = enroll(api, web, {"env": "prod"}, 2)
    staging = enroll(api, web, {"env": "staging"})
    return {"group": web, "prod": prod, "staging": staging, "config": configuration(api),
            "all": sorted(prod + staging)}


def test_a_dry_run_lists_every_agents_verdict_with_counts(api: Api, fleet) -> None:
    # When an inline rule is evaluated over the group, asking for every verdict
    answer = evaluate(api, expression=PROD_ONLY, scope="rollout", groupId=fleet["group"],
                      configurationId=fleet["config"], version=1, show="all")
    # Then each agent has its verdict, in id order, with the counts
    assert answer.status == 200, answer.json
    result = answer.json
    assert result["counts"] == {"evaluated": 3, "allowed": 2, "denied": 1, "errors": 0}
    expected = [{"agent": agent, "allowed": agent in fleet["prod"], "error": None,
                 "message": "returned true" if agent in fleet["prod"] else "returned false"}
                for agent in fleet["all"]]
    assert result["verdicts"] == expected and result["next"] is None
    assert result["rule"] == {"policyId": None, "name": None, "revision": None,
                              "expression": PROD_ONLY, "scope": "rollout", "mode": None}
    assert result["target"] == {"groupId": fleet["group"], "configurationId": fleet["config"],
                                "version": 1}


def test_by_default_only_the_denied_verdicts_are_listed(api: Api, fleet) -> None:
    answer = evaluate(api, expression=PROD_ONLY, groupId=fleet["group"],
                      configurationId=fleet["config"], version=1)
    assert answer.status == 200, answer.json
    assert [v["agent"] for v in answer.json["verdicts"]] == fleet["staging"]
    assert answer.json["counts"]["evaluated"] == 3


def test_only_the_groups_agents_are_evaluated(api: Api, fleet) -> None:
    enroll(api, group(api, "db"), {"env": "staging"}, 2)
    answer = evaluate(api, expression="true", groupId=fleet["group"],
                      configurationId=fleet["config"], version=1, show="all")
    assert [v["agent"] for v in answer.json["verdicts"]] == fleet["all"]


def test_evaluation_errors_deny_each_agent_with_their_message(api: Api, fleet) -> None:
    answer = evaluate(api, expression=NEEDS_TIER, groupId=fleet["group"],
                      configurationId=fleet["config"], version=1)
    assert answer.status == 200, answer.json
    assert answer.json["counts"] == {"evaluated": 3, "allowed": 0, "denied": 3, "errors": 3}
    for verdict in answer.json["verdicts"]:
        assert verdict["allowed"] is False and verdict["error"]
        assert verdict["message"] == f"could not be evaluated: {verdict['error']}"


def test_verdicts_are_limited_and_continue_after_the_last_one(api: Api, fleet) -> None:
    # Given every agent denied, when two verdicts at a time are asked for
    body = {"expression": "false", "groupId": fleet["group"],
            "configurationId": fleet["config"], "version": 1, "limit": 2}
    first = evaluate(api, **body)
    # Then the first two are listed, and next continues after them
    assert [v["agent"] for v in first.json["verdicts"]] == fleet["all"][:2]
    assert first.json["next"] == fleet["all"][1]
    rest = evaluate(api, **body, after=first.json["next"])
    assert [v["agent"] for v in rest.json["verdicts"]] == fleet["all"][2:]
    assert rest.json["next"] is None
    # And the counts always cover every agent
    assert first.json["counts"] == rest.json["counts"]
    assert rest.json["counts"]["denied"] == 3


def test_a_dry_run_of_a_policy_uses_its_draft_unless_asked_for_the_approved(api: Api,
                                                                            fleet) -> None:
    # Given a policy approved as "true", with a draft "prod only"
    created = api.post("/api/policies", {"name": "prod-only", "expression": "true",
                                         "scope": "rollout"}, sub="olivia").json
    assert api.post(f"/api/policies/{created['id']}/approve", sub="adam").status == 200
    assert api.call("PATCH", f"/api/policies/{created['id']}", {"expression": PROD_ONLY},
                    sub="olivia").status == 200
    target = {"policyId": created["id"], "groupId": fleet["group"],
              "configurationId": fleet["config"], "version": 1}
    # When dry-run by id / Then the draft (revision 2) is evaluated
    draft = evaluate(api, **target)
    assert draft.status == 200, draft.json
    assert draft.json["rule"] == {"policyId": created["id"], "name": "prod-only",
                                  "revision": 2, "expression": PROD_ONLY,
                                  "scope": "rollout", "mode": "enforce"}
    assert draft.json["counts"]["denied"] == 1
    # And asked for the approved revision, revision 1 is
    approved = evaluate(api, **target, revision="approved")
    assert approved.json["rule"]["revision"] == 1
    assert approved.json["counts"]["denied"] == 0


def test_a_dry_run_enforces_nothing(api: Api, fleet) -> None:
    # Given an approved enforce policy that denies every agent
    created = api.post("/api/policies", {"name": "never", "expression": "false",
                                         "scope": "rollout"}, sub="olivia").json
    assert api.post(f"/api/policies/{created['id']}/approve", sub="adam").status == 200
    before = api.get(f"/api/policies/{created['id']}")
    # When it is dry-run / Then it answers verdicts, not a denial, and changes nothing
    answer = evaluate(api, policyId=created["id"], groupId=fleet["group"],
                      configurationId=fleet["config"], version=1)
    assert answer.status == 200 and answer.json["counts"]["denied"] == 3
    after = api.get(f"/api/policies/{created['id']}")
    assert after.json == before.json and after.header("ETag") == before.header("ETag")


def test_a_publish_scope_dry_run_has_one_verdict_for_the_version(api: Api) -> None:
    config = configuration(api, CLEAN + "# debug\n")
    answer = evaluate(api, expression='!config.text.contains("debug")', scope="publish",
                      configurationId=config, version=1)
    assert answer.status == 200, answer.json
    assert answer.json["counts"] == {"evaluated": 1, "allowed": 0, "denied": 1, "errors": 0}
    assert answer.json["verdicts"] == [{"agent": None, "allowed": False, "error": None,
                                        "message": "returned false"}]
    assert answer.json["target"]["groupId"] is None


@pytest.mark.parametrize(("body", "pointer"), [
    ({}, ""),
    ({"policyId": "p1", "expression": "true"}, ""),
    ({"expression": "true", "revision": "draft"}, ""),
    ({"policyId": "p1", "scope": "rollout"}, ""),
    ({"expression": "true", "scope": "deploy"}, "/scope"),
    ({"expression": "true", "limit": 0}, "/limit"),
    ({"expression": "true", "limit": 1001}, "/limit"),
    ({"expression": "true", "show": "some"}, "/show"),
    ({"expression": "true", "colour": "red"}, "/colour"),
])
def test_bad_dry_run_bodies_are_422(api: Api, fleet, body: dict[str, Any],
                                    pointer: str) -> None:
    target = {"groupId": fleet["group"], "configurationId": fleet["config"], "version": 1}
    answer = evaluate(api, **{**target, **body})
    assert answer.status == 422 and answer.json["type"] == DOCS + "validation-failed"
    assert pointer in [e["pointer"] for e in answer.json["errors"]], answer.json


def test_the_target_must_fit_the_scope(api: Api, fleet) -> None:
    config = {"configurationId": fleet["config"], "version": 1}
    without_group = evaluate(api, expression="true", scope="rollout", **config)
    assert without_group.status == 422
    assert without_group.json["errors"][0]["pointer"] == "/groupId"
    with_group = evaluate(api, expression="true", scope="publish", groupId=fleet["group"],
                          **config)
    assert with_group.status == 422 and with_group.json["errors"][0]["pointer"] == "/groupId"


def test_an_inline_expression_that_does_not_compile_is_422_with_its_position(api: Api,
                                                                              fleet) -> None:
    answer = evaluate(api, expression="agent.labels[", groupId=fleet["group"],
                      configurationId=fleet["config"], version=1)
    assert answer.status == 422 and answer.json["type"] == DOCS + "validation-failed"
    assert answer.json["errors"][0]["pointer"] == "/expression"
    assert answer.json["line"] == 1 and answer.json["column"] >= 1


@pytest.mark.parametrize("change", [
    {"groupId": "nope"}, {"configurationId": "nope"}, {"version": 9},
    {"policyId": "nope", "expression": None}, {"groupId": "x" * 64},
], ids=["group", "configuration", "version", "policy", "long group"])
def test_unknown_targets_are_404(api: Api, fleet, change: dict[str, Any]) -> None:
    body = {"expression": "true", "groupId": fleet["group"],
            "configurationId": fleet["config"], "version": 1, **change}
    answer = evaluate(api, **{k: v for k, v in body.items() if v is not None})
    assert answer.status == 404 and answer.json["type"] == DOCS + "not-found", answer.json


def test_asking_for_a_revision_the_policy_lacks_is_404(api: Api, fleet) -> None:
    created = api.post("/api/policies", {"name": "p", "expression": "true",
                                         "scope": "rollout"}).json
    answer = evaluate(api, policyId=created["id"], revision="approved", groupId=fleet["group"],
                      configurationId=fleet["config"], version=1)
    assert answer.status == 404 and "no approved revision" in answer.json["detail"]


def test_viewers_cannot_dry_run(api: Api, fleet) -> None:
    answer = evaluate(api, expression="true", groupId=fleet["group"],
                      configurationId=fleet["config"], version=1, role="Viewer")
    assert answer.status == 403


def test_another_tenants_group_and_configuration_are_404(api: Api, fleet) -> None:
    mine = configuration(api, tenant="globex")
    answer = evaluate(api, expression="true", groupId=fleet["group"], configurationId=mine,
                      version=1, tenant="globex")
    assert answer.status == 404 and "group" in answer.json["detail"]
    theirs = evaluate(api, expression="true", scope="publish", configurationId=fleet["config"],
                      version=1, tenant="globex")
    assert theirs.status == 404


# --- enforce_rollout: what starting a rollout calls -------------------------------------------

def views(api: Api, ids: list[str]) -> list[dict[str, Any]]:
    return [api.get(f"/api/agents/{agent}").json for agent in ids]


def approve_policy(api: Api, name: str, expression: str, mode: str = "enforce") -> str:
    created = api.post("/api/policies", {"name": name, "expression": expression,
                                         "scope": "rollout", "mode": mode}, sub="olivia").json
    assert api.post(f"/api/policies/{created['id']}/approve", sub="adam").status == 200
    return str(created["id"])


def test_enforce_rollout_denies_naming_the_first_agent(api: Api, fleet) -> None:
    from chalicelib.core.problems import AmporaError
    from chalicelib.policies import service

    # Given an approved rollout policy that only the prod agents satisfy
    policy_id = approve_policy(api, "prod-only", PROD_ONLY)
    config = service.config_facts("acme", fleet["config"], 1)
    # When a rollout to every agent of the group is checked / Then it is the denial
    with pytest.raises(AmporaError) as denied:
        service.enforce_rollout("acme", views(api, fleet["all"]), config, {})
    problem = denied.value
    [staging] = fleet["staging"]
    assert problem.slug == "policy-denied" and problem.status == 422
    assert problem.detail == f"Policy 'prod-only' returned false for agent {staging}"
    assert problem.extensions == {
        "violations": [{"policy": "prod-only", "policyId": policy_id, "revision": 1,
                        "agent": staging, "message": "returned false"}],
        "total": 1}
    # And a rollout to the prod agents alone goes ahead
    report = service.enforce_rollout("acme", views(api, fleet["prod"]), config, {})
    assert not report.denied and report.evaluations == 2


def test_enforce_rollout_lists_the_first_hundred_violations_and_the_total(api: Api,
                                                                         fleet) -> None:
    from chalicelib.core.problems import AmporaError
    from chalicelib.policies import service

    approve_policy(api, "never", "false")
    [template] = views(api, fleet["staging"])
    agents = [{**template, "id": f"{index:032x}"} for index in range(150)]
    with pytest.raises(AmporaError) as denied:
        service.enforce_rollout("acme", agents, service.config_facts("acme", fleet["config"], 1),
                                {})
    found = denied.value.extensions
    assert found["total"] == 150 and len(found["violations"]) == 100
    assert [v["agent"] for v in found["violations"]] == [a["id"] for a in agents[:100]]


def test_enforce_rollout_fails_closed_and_reports_warnings(api: Api, fleet) -> None:
    from chalicelib.core.problems import AmporaError
    from chalicelib.policies import service

    # Given a warn policy the staging agent breaks, and an enforce policy nobody can satisfy
    approve_policy(api, "a-prod-preferred", PROD_ONLY, mode="warn")
    approve_policy(api, "b-needs-tier", NEEDS_TIER)
    config = service.config_facts("acme", fleet["config"], 1)
    with pytest.raises(AmporaError) as denied:
        service.enforce_rollout("acme", views(api, fleet["all"]), config, {})
    problem = denied.value
    first = fleet["all"][0]
    assert problem.detail.startswith(f"Policy 'b-needs-tier' could not be evaluated for agent "
                                     f"{first}: ")
    assert problem.extensions["total"] == 3 and problem.extensions["warningsTotal"] == 1
    assert [w["agent"] for w in problem.extensions["warnings"]] == fleet["staging"]


def test_warn_policies_alone_never_deny_a_rollout(api: Api, fleet) -> None:
    from chalicelib.policies import service

    approve_policy(api, "prod-preferred", PROD_ONLY, mode="warn")
    report = service.enforce_rollout("acme", views(api, fleet["all"]),
                                     service.config_facts("acme", fleet["config"], 1), {})
    assert not report.denied and report.warnings_total == 1
    assert [w.agent for w in report.warnings] == fleet["staging"]


def test_an_agent_whose_input_cannot_be_built_is_denied(api: Api, fleet) -> None:
    from chalicelib.configurations.content import MAX_VALUES
    from chalicelib.core.problems import AmporaError
    from chalicelib.policies import service

    # Given an always-true policy, and an agent describing itself with too many attributes
    approve_policy(api, "anything", "true")
    [agent] = views(api, fleet["staging"])
    flood = {f"k{index}": "v" for index in range(MAX_VALUES + 1)}
    agent["description"]["nonIdentifyingAttributes"] = flood
    # Then that agent is denied (failing closed), saying why
    with pytest.raises(AmporaError) as denied:
        service.enforce_rollout("acme", [agent], service.config_facts("acme", fleet["config"], 1),
                                {})
    assert denied.value.detail.startswith(
        f"Policy 'anything' could not be evaluated for agent {agent['id']}: the agent's input "
        "is not usable")


def test_the_rollout_variable_defaults_to_the_target_and_takes_the_strategy(api: Api,
                                                                          fleet) -> None:
    expression = ('rollout.groupId == agent.groupId && rollout.configurationVersion == 1 '
                  '&& rollout.strategy == "canary" && rollout.waves == 3')
    body = {"expression": expression, "groupId": fleet["group"],
            "configurationId": fleet["config"], "version": 1}
    allowed = evaluate(api, **body, rollout={"strategy": {"name": "canary", "waves": 3}})
    assert allowed.status == 200 and allowed.json["counts"]["allowed"] == 3, allowed.json
    assert evaluate(api, **body).json["counts"]["denied"] == 3
