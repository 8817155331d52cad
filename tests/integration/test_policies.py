"""Policies through the HTTP surface: resources, the draft → approval lifecycle, enforcement
on publish, and tenancy."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.support.api import Answer, Api

DOCS = "https://docs.ampora.io/errors/"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
#: Publish-scope rules over the configuration's text.
NO_DEBUG = '!config.text.contains("debug")'
NO_VERBOSE = '!config.text.contains("verbose")'
#: Fails to evaluate (no such key) for any configuration: must deny, failing closed.
MISSING_KEY = 'config.parsed["no-such-section"] == "x"'
#: Does not compile: the position of the error is reported.
BROKEN = "config.text.contains("
CLEAN = "receivers:\n  otlp: {}\nexporters:\n  otlphttp:\n    endpoint: https://x\n"
DEBUG = "receivers:\n  otlp: {}\nexporters:\n  debug:\n    verbosity: detailed\n"
_numbers = itertools.count(1)


def base(policy_id: str) -> str:
    return f"/api/policies/{policy_id}"


def create(api: Api, name: str = "no-debug", expression: str = NO_DEBUG,
           scope: str = "publish", **body: Any) -> dict[str, Any]:
    caller = {key: body.pop(key) for key in ("tenant", "role", "sub") if key in body}
    caller.setdefault("role", "Operator")
    caller.setdefault("sub", "olivia")
    answer = api.post("/api/policies", {"name": name, "expression": expression,
                                        "scope": scope, **body}, **caller)
    assert answer.status == 201, answer.json
    return dict(answer.json)


def etag_of(api: Api, policy_id: str, **kwargs: Any) -> str:
    tag = api.get(base(policy_id), **kwargs).header("ETag")
    assert tag is not None
    return tag


def approve(api: Api, policy_id: str, sub: str = "adam", **kwargs: Any) -> Answer:
    return api.post(f"{base(policy_id)}/approve", sub=sub, **kwargs)


def approved(api: Api, name: str = "no-debug", expression: str = NO_DEBUG,
             scope: str = "publish", **body: Any) -> dict[str, Any]:
    """A policy an Operator wrote and an Admin approved."""
    created = create(api, name, expression, scope, **body)
    answer = approve(api, created["id"], tenant=body.get("tenant", "acme"))
    assert answer.status == 200, answer.json
    return dict(answer.json)


def patch(api: Api, policy_id: str, body: dict[str, Any], **kwargs: Any) -> Answer:
    headers = {**MERGE_PATCH, **kwargs.pop("headers", {})}
    kwargs.setdefault("role", "Operator")
    return api.call("PATCH", base(policy_id), body, headers=headers, **kwargs)


def configuration(api: Api, content: str, tenant: str = "acme") -> str:
    """A YAML configuration with ``content`` saved as draft version 1."""
    created = api.post("/api/configurations", {"name": f"collector-{next(_numbers)}",
                                               "contentType": "application/yaml"},
                       tenant=tenant)
    assert created.status == 201, created.json
    saved = api.post(f"/api/configurations/{created.json['id']}/versions",
                     {"content": content}, tenant=tenant)
    assert saved.status == 201, saved.json
    return str(created.json["id"])


def publish(api: Api, configuration_id: str, version: int = 1, **kwargs: Any) -> Answer:
    return api.post(f"/api/configurations/{configuration_id}/versions/{version}/publish",
                    **kwargs)


def published_version(api: Api, configuration_id: str) -> int | None:
    found = api.get(f"/api/configurations/{configuration_id}")
    return found.json["publishedVersion"]  # type: ignore[no-any-return]


def policy_events(tenant: str = "acme") -> list[tuple[str, str]]:
    """The policy events (type, state of the policy), ordered by time (and randomly within
    one millisecond)."""
    from chalicelib.core.events import EventRecord

    return [(r.envelope["type"], r.envelope["data"]["state"]) for r in EventRecord.query(tenant)
            if r.envelope["type"].startswith("policy.")]


def names(api: Api, query: str = "", **kwargs: Any) -> list[str]:
    answer = api.get(f"/api/policies{query}", **kwargs)
    assert answer.status == 200, answer.json
    return sorted(p["name"] for p in answer.json)


# --- resources --------------------------------------------------------------------------------

def test_a_created_policy_is_a_draft_readable_with_its_etag(api: Api) -> None:
    # When an Operator creates a policy
    answer = api.post("/api/policies", {
        "name": "no-debug", "description": "no debug exporter in production",
        "expression": NO_DEBUG, "scope": "publish"}, role="Operator", sub="olivia")
    # Then it is 201 with its location; its rule is draft revision 1 by her, nothing in force
    assert answer.status == 201, answer.json
    created = answer.json
    assert answer.header("Location") == f"/api/policies/{created['id']}"
    olivia = {"type": "user", "id": "olivia", "name": "olivia"}
    assert created["name"] == "no-debug" and created["scope"] == "publish"
    assert created["description"] == "no debug exporter in production"
    assert created["state"] == "draft" and created["approved"] is None
    assert created["draft"] == {
        "number": 1, "expression": NO_DEBUG, "mode": "enforce", "authors": [olivia],
        "createdAt": "2026-01-05T09:00:00Z", "approvedBy": None, "approvedAt": None}
    assert created["createdBy"] == olivia and created["disabledAt"] is None
    # And a Viewer reads the same, with a strong ETag
    read = api.get(base(created["id"]), role="Viewer")
    assert read.status == 200 and read.json == created
    assert read.header("ETag").startswith('"')
    # And the creation is an event
    assert policy_events() == [("policy.created", "draft")]


def test_duplicate_name_is_409_case_insensitively_but_fine_in_another_tenant(api: Api) -> None:
    create(api, "no-debug")
    answer = api.post("/api/policies", {"name": "NO-DEBUG", "expression": "true",
                                        "scope": "rollout"})
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert names(api) == ["no-debug"]
    create(api, "no-debug", tenant="globex")


@pytest.mark.parametrize(("body", "pointer"), [
    ({"expression": "true", "scope": "publish"}, "/name"),
    ({"name": " padded", "expression": "true", "scope": "publish"}, "/name"),
    ({"name": "p", "scope": "publish"}, "/expression"),
    ({"name": "p", "expression": "", "scope": "publish"}, "/expression"),
    ({"name": "p", "expression": "true"}, "/scope"),
    ({"name": "p", "expression": "true", "scope": "deploy"}, "/scope"),
    ({"name": "p", "expression": "true", "scope": "publish", "mode": "audit"}, "/mode"),
    ({"name": "p", "expression": "true", "scope": "publish", "state": "approved"}, "/state"),
    ({"name": "p", "expression": "true", "scope": "publish", "description": "d" * 1001},
     "/description"),
])
def test_invalid_policy_is_422_with_pointer_and_creates_nothing(api: Api, body: Any,
                                                                pointer: str) -> None:
    answer = api.post("/api/policies", body)
    assert answer.status == 422 and answer.json["type"] == DOCS + "validation-failed"
    assert pointer in [e["pointer"] for e in answer.json["errors"]], answer.json
    assert names(api) == []


def test_an_expression_that_does_not_compile_is_422_naming_its_position(api: Api) -> None:
    # When a policy is created with an expression that does not parse
    answer = api.post("/api/policies", {"name": "p", "expression": BROKEN, "scope": "publish"})
    # Then it is 422 pointing at the expression, with the line and column, and nothing exists
    assert answer.status == 422, answer.json
    problem = answer.json
    assert problem["type"] == DOCS + "validation-failed"
    [error] = problem["errors"]
    assert error["pointer"] == "/expression"
    assert problem["line"] == 1 and problem["column"] >= 1
    assert f"line 1, column {problem['column']}" in error["detail"]
    assert names(api) == []


def test_an_expression_using_a_variable_outside_its_scope_is_refused(api: Api) -> None:
    # A publish-scope rule sees only config: agent is unknown there
    answer = api.post("/api/policies", {"name": "p", "expression": 'agent.id != ""',
                                        "scope": "publish"})
    assert answer.status == 422 and answer.json["errors"][0]["pointer"] == "/expression"
    assert api.post("/api/policies", {"name": "p", "expression": 'agent.id != ""',
                                      "scope": "rollout"}).status == 201


def test_list_filters_by_name_prefix_scope_state_and_pending(api: Api) -> None:
    # Given a draft, an approved policy with a pending edit, an approved one, a disabled one
    create(api, "edge-draft", "true", "rollout")
    pending = approved(api, "Edge-pending", NO_DEBUG)
    assert patch(api, pending["id"], {"expression": NO_VERBOSE}).status == 200
    approved(api, "steady", NO_VERBOSE)
    off = approved(api, "off", "true", "rollout")
    assert api.post(f"{base(off['id'])}/disable").status == 200
    # Then each filter selects what it says
    assert names(api, "?name=EDGE") == ["Edge-pending", "edge-draft"]
    assert names(api, "?scope=rollout") == ["edge-draft", "off"]
    assert names(api, "?state=draft") == ["edge-draft"]
    assert names(api, "?state=approved") == ["Edge-pending", "steady"]
    assert names(api, "?state=disabled") == ["off"]
    assert names(api, "?pending=true") == ["Edge-pending", "edge-draft"]
    assert names(api, "?state=approved&pending=false") == ["steady"]


@pytest.mark.parametrize("query", ["?state=gone", "?scope=x", "?pending=maybe", "?colour=red"])
def test_bad_list_filters_are_400(api: Api, query: str) -> None:
    answer = api.get(f"/api/policies{query}")
    assert answer.status == 400 and answer.json["type"] == DOCS + "invalid-query"


def test_the_list_is_paged(api: Api) -> None:
    for index in range(3):
        create(api, f"p{index}", "true", "rollout")
    first = api.get("/api/policies?limit=2")
    assert first.status == 200 and len(first.json) == 2
    assert first.header("X-Total-Count") == "3" and 'rel="next"' in first.header("Link")


def test_unknown_policy_is_404(api: Api) -> None:
    for path in ("/api/policies/nope", "/api/policies/" + "x" * 300):
        answer = api.get(path)
        assert answer.status == 404 and answer.json["type"] == DOCS + "not-found", path
    assert approve(api, "nope").status == 404
    assert patch(api, "nope", {"description": "x"}).status == 404


# --- roles --------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "call", "status"), [
    ("Viewer", lambda api, pid: api.post("/api/policies", {
        "name": "v", "expression": "true", "scope": "rollout"}, role="Viewer"), 403),
    ("Viewer", lambda api, pid: patch(api, pid, {"description": "x"}, role="Viewer"), 403),
    ("Operator", lambda api, pid: approve(api, pid, role="Operator"), 403),
    ("Operator", lambda api, pid: api.post(f"{base(pid)}/disable", role="Operator"), 403),
    ("Operator", lambda api, pid: api.post(f"{base(pid)}/enable", role="Operator"), 403),
    ("Viewer", lambda api, pid: api.get(base(pid), role="Viewer"), 200),
])
def test_operators_write_drafts_and_only_admins_approve_or_switch(api: Api, role: str, call,
                                                                  status: int) -> None:
    created = create(api)
    answer = call(api, created["id"])
    assert answer.status == status, answer.json
    if status == 403:
        assert answer.json["type"] == DOCS + "forbidden"
        assert api.get(base(created["id"])).json == created


# --- the lifecycle -------------------------------------------------------------------------

def test_the_author_cannot_approve_her_own_draft(api: Api) -> None:
    # Given a draft written by the Admin alice
    created = create(api, role="Admin", sub="alice")
    path = f"{base(created['id'])}/approve"
    # When she approves it herself
    answer = approve(api, created["id"], sub="alice")
    # Then it is exactly this problem, and nothing changed
    assert answer.status == 403
    assert answer.header("Content-Type") == "application/problem+json"
    assert answer.json == {
        "type": DOCS + "self-approval", "title": "Self-approval not allowed", "status": 403,
        "detail": "you wrote (part of) revision 1 of policy 'no-debug'; another Admin must "
                  "approve it",
        "instance": path,
    }
    assert api.get(base(created["id"])).json == created


def test_whoever_edited_a_draft_cannot_approve_it(api: Api) -> None:
    # Given olivia's draft, edited by the Admin alice
    created = create(api)
    assert patch(api, created["id"], {"expression": NO_VERBOSE}, role="Admin",
                 sub="alice").status == 200
    # Then neither alice nor olivia (were she an Admin) may approve it, but adam may
    assert approve(api, created["id"], sub="alice").json["type"] == DOCS + "self-approval"
    assert approve(api, created["id"], sub="olivia").json["type"] == DOCS + "self-approval"
    answer = approve(api, created["id"], sub="adam")
    assert answer.status == 200 and answer.json["approved"]["number"] == 2


def test_a_token_cannot_approve_its_creators_draft(api: Api) -> None:
    # Given alice's draft, and an Admin token alice created
    created = create(api, role="Admin", sub="alice")
    token = api.post("/api/api-tokens", {"name": "ci", "role": "Admin"}, sub="alice").json
    # When the token approves the draft / Then it is self-approval too
    answer = approve(api, created["id"], token=token["token"])
    assert answer.status == 403 and answer.json["type"] == DOCS + "self-approval"
    # But a token of another Admin may
    other = api.post("/api/api-tokens", {"name": "ops", "role": "Admin"}, sub="adam").json
    assert approve(api, created["id"], token=other["token"]).status == 200


def test_approval_by_another_admin_puts_the_draft_in_force(api: Api, clock) -> None:
    # Given olivia's draft
    created = create(api)
    before = etag_of(api, created["id"])
    clock.advance(hours=1)
    # When the Admin adam approves it, honouring its ETag
    answer = approve(api, created["id"], headers={"If-Match": before})
    # Then it is approved by him, in force, with no draft left, and a new ETag
    assert answer.status == 200, answer.json
    policy = answer.json
    assert policy["state"] == "approved" and policy["draft"] is None
    assert policy["approved"]["number"] == 1 and policy["approved"]["expression"] == NO_DEBUG
    assert policy["approved"]["approvedBy"] == {"type": "user", "id": "adam", "name": "adam"}
    assert policy["approved"]["approvedAt"] == "2026-01-05T10:00:00Z"
    assert answer.header("ETag") not in (None, before)
    assert policy_events() == [("policy.created", "draft"), ("policy.approved", "approved")]


def test_approving_without_a_draft_is_409(api: Api) -> None:
    policy = approved(api)
    answer = approve(api, policy["id"], sub="carol")
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"


def test_drafts_are_not_enforced(api: Api) -> None:
    # Given a draft that would deny, not yet approved
    create(api, expression="false")
    # Then publishing goes through
    config = configuration(api, CLEAN)
    assert publish(api, config).status == 200


def test_an_edit_while_approved_is_a_draft_and_the_approved_revision_still_enforces(
        api: Api) -> None:
    # Given an approved policy that forbids "debug", and a configuration with "verbose"
    policy = approved(api, expression=NO_DEBUG)
    config = configuration(api, "exporters:\n  otlp:\n    verbose: true\n")
    # When an Operator edits it to forbid "verbose" instead
    edited = patch(api, policy["id"], {"expression": NO_VERBOSE})
    # Then the edit is draft revision 2 and revision 1 stays approved
    assert edited.status == 200, edited.json
    assert edited.json["state"] == "approved"
    assert edited.json["approved"]["number"] == 1
    assert edited.json["approved"]["expression"] == NO_DEBUG
    assert edited.json["draft"]["number"] == 2
    assert edited.json["draft"]["expression"] == NO_VERBOSE
    # And revision 1 is what is enforced: the "verbose" configuration may still be published
    assert publish(api, config).status == 200
    # When the draft is approved / Then revision 2 is enforced from now on
    second = api.post(f"/api/configurations/{config}/versions",
                      {"content": "exporters:\n  otlp:\n    verbose: false\n"})
    assert second.status == 201
    assert approve(api, policy["id"], sub="adam").status == 200
    denied = publish(api, config, 2)
    assert denied.status == 422 and denied.json["type"] == DOCS + "policy-denied"
    assert denied.json["violations"][0]["revision"] == 2


def test_name_and_description_change_at_once_without_a_draft(api: Api) -> None:
    policy = approved(api)
    answer = patch(api, policy["id"], {"name": "no-debug-in-prod", "description": "why"})
    assert answer.status == 200, answer.json
    assert answer.json["name"] == "no-debug-in-prod" and answer.json["description"] == "why"
    assert answer.json["draft"] is None and answer.json["state"] == "approved"
    # And the old name is free again
    create(api, "no-debug")


def test_an_empty_patch_changes_nothing(api: Api) -> None:
    policy = approved(api)
    before = etag_of(api, policy["id"])
    answer = patch(api, policy["id"], {"expression": NO_DEBUG})
    assert answer.status == 200 and answer.header("ETag") == before
    assert answer.json == api.get(base(policy["id"])).json == policy


@pytest.mark.parametrize(("body", "pointer"), [
    ({"name": None}, "/name"), ({"expression": None}, "/expression"),
    ({"mode": None}, "/mode"), ({"scope": "rollout"}, "/scope"), ({"mode": "loud"}, "/mode"),
    ({"expression": BROKEN}, "/expression"),
])
def test_invalid_patch_is_422_and_changes_nothing(api: Api, body: Any, pointer: str) -> None:
    policy = approved(api)
    answer = patch(api, policy["id"], body)
    assert answer.status == 422 and answer.json["type"] == DOCS + "validation-failed"
    assert pointer in [e["pointer"] for e in answer.json["errors"]]
    assert api.get(base(policy["id"])).json == policy


def test_renaming_to_a_taken_name_is_409(api: Api) -> None:
    create(api, "first")
    second = create(api, "second", "true", "rollout")
    answer = patch(api, second["id"], {"name": "FIRST"})
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert api.get(base(second["id"])).json["name"] == "second"


def test_a_disabled_policy_is_never_evaluated_until_enabled(api: Api) -> None:
    # Given an approved policy that denies a configuration with "debug"
    policy = approved(api)
    config = configuration(api, DEBUG)
    assert publish(api, config).status == 422
    # When an Admin disables it / Then it shows, and the publish goes through
    disabled = api.post(f"{base(policy['id'])}/disable", sub="adam")
    assert disabled.status == 200, disabled.json
    assert disabled.json["state"] == "disabled"
    assert disabled.json["disabledBy"] == {"type": "user", "id": "adam", "name": "adam"}
    assert disabled.json["approved"] == policy["approved"]
    assert publish(api, config).status == 200
    # When it is enabled again / Then it denies again
    enabled = api.post(f"{base(policy['id'])}/enable")
    assert enabled.status == 200 and enabled.json["state"] == "approved"
    assert enabled.json["disabledAt"] is None
    second = api.post(f"/api/configurations/{config}/versions", {"content": DEBUG + "# 2\n"})
    assert publish(api, config, second.json["version"]).status == 422
    assert sorted(kind for kind, _ in policy_events()) == [
        "policy.approved", "policy.created", "policy.disabled", "policy.enabled"]


def test_disabling_twice_changes_nothing(api: Api) -> None:
    policy = approved(api)
    first = api.post(f"{base(policy['id'])}/disable")
    again = api.post(f"{base(policy['id'])}/disable")
    assert again.status == 200 and again.header("ETag") == first.header("ETag")
    assert [kind for kind, _ in policy_events()].count("policy.disabled") == 1


@pytest.mark.parametrize("mutation", [
    lambda api, pid, h: patch(api, pid, {"expression": NO_VERBOSE}, headers=h),
    lambda api, pid, h: approve(api, pid, headers=h),
    lambda api, pid, h: api.post(f"{base(pid)}/disable", headers=h),
    lambda api, pid, h: api.post(f"{base(pid)}/enable", headers=h),
], ids=["patch", "approve", "disable", "enable"])
def test_stale_if_match_is_412_with_the_current_etag_and_changes_nothing(api: Api,
                                                                          mutation) -> None:
    # Given a draft (disabled, so that enable has work to do) whose ETag went stale
    created = create(api)
    stale = etag_of(api, created["id"])
    assert api.post(f"{base(created['id'])}/disable").status == 200
    current = api.get(base(created["id"]))
    # When it is changed with the stale ETag
    answer = mutation(api, created["id"], {"If-Match": stale})
    # Then 412 with the current ETag, and nothing changed
    assert answer.status == 412 and answer.json["type"] == DOCS + "precondition-failed"
    assert answer.header("ETag") == current.header("ETag")
    assert api.get(base(created["id"])).json == current.json


def test_every_step_is_audited_with_its_actor(api: Api) -> None:
    # Given a policy taken through its lifecycle, with one refused approval
    policy = create(api, sub="olivia")
    approve(api, policy["id"], sub="olivia", role="Admin")
    approve(api, policy["id"], sub="adam")
    patch(api, policy["id"], {"mode": "warn"}, sub="olivia")
    api.post(f"{base(policy['id'])}/disable", sub="adam")
    api.post(f"{base(policy['id'])}/enable", sub="adam")
    # When the audit log is read
    answer = api.get(f"/api/audit/events?resourceType=policy&resourceId={policy['id']}")
    found = sorted((e["action"], e["outcome"], e["status"], e["actor"]["id"])
                   for e in answer.json)
    # Then each call is there with its outcome and actor
    assert found == [
        ("policies.approve", "refused", 403, "olivia"),
        ("policies.approve", "success", 200, "adam"),
        ("policies.create", "success", 201, "olivia"),
        ("policies.disable", "success", 200, "adam"),
        ("policies.enable", "success", 200, "adam"),
        ("policies.update", "success", 200, "olivia"),
    ]
    assert sorted(kind for kind, _ in policy_events()) == [
        "policy.approved", "policy.created", "policy.disabled", "policy.enabled",
        "policy.updated"]


# --- enforcement on publish -------------------------------------------------------------------

def test_a_denied_publish_is_exactly_the_policy_denied_problem_and_publishes_nothing(
        api: Api) -> None:
    # Given an approved publish-scope policy, and a draft configuration it objects to
    policy = approved(api, "no-debug-in-prod")
    config = configuration(api, DEBUG)
    path = f"/api/configurations/{config}/versions/1/publish"
    # When the version is published
    answer = publish(api, config)
    # Then it is exactly the spec's problem, naming the configuration version
    assert answer.status == 422
    assert answer.header("Content-Type") == "application/problem+json"
    assert answer.json == {
        "type": DOCS + "policy-denied", "title": "Policy denied the push", "status": 422,
        "detail": f"Policy 'no-debug-in-prod' returned false for configuration {config} "
                  "version 1",
        "instance": path,
        "violations": [{"policy": "no-debug-in-prod", "policyId": policy["id"],
                        "revision": 1, "agent": None, "message": "returned false"}],
        "total": 1,
    }
    # And nothing was published
    assert published_version(api, config) is None
    versions = api.get(f"/api/configurations/{config}/versions").json
    assert [v["status"] for v in versions] == ["draft"]


def test_an_allowed_publish_goes_through(api: Api) -> None:
    approved(api)
    config = configuration(api, CLEAN)
    assert publish(api, config).status == 200
    assert published_version(api, config) == 1


def test_an_evaluation_error_denies_failing_closed_with_its_own_message(api: Api) -> None:
    # Given an approved policy that cannot be evaluated against this configuration
    approved(api, "needs-section", MISSING_KEY)
    config = configuration(api, CLEAN)
    # When it is published / Then it is denied, saying the policy could not be evaluated
    answer = publish(api, config)
    assert answer.status == 422 and answer.json["type"] == DOCS + "policy-denied"
    prefix = f"Policy 'needs-section' could not be evaluated for configuration {config} " \
             "version 1: "
    assert answer.json["detail"].startswith(prefix)
    [violation] = answer.json["violations"]
    assert violation["message"].startswith("could not be evaluated: ")
    assert published_version(api, config) is None


def test_warn_policies_report_without_denying(api: Api) -> None:
    # Given an approved warn-mode policy that objects to the configuration
    warn = approved(api, "prefer-no-debug", NO_DEBUG, mode="warn")
    config = configuration(api, DEBUG)
    # Then the publish goes through, and its answer says what the policy objected to
    answer = publish(api, config)
    assert answer.status == 200
    assert answer.json["status"] == "published"
    assert answer.json["policyWarnings"] == [{"policy": "prefer-no-debug",
                                              "policyId": warn["id"], "revision": 1,
                                              "message": "returned false"}]
    assert answer.json["policyWarningsTotal"] == 1


def test_a_denial_also_lists_warnings(api: Api) -> None:
    # Given a warn-mode and an enforce-mode policy that both object
    warn = approved(api, "a-warning", NO_DEBUG, mode="warn")
    approved(api, "b-enforced", '!config.text.contains("detailed")')
    config = configuration(api, DEBUG)
    answer = publish(api, config)
    assert answer.status == 422
    assert answer.json["detail"].startswith("Policy 'b-enforced' returned false")
    assert answer.json["total"] == 1 and answer.json["warningsTotal"] == 1
    assert answer.json["warnings"] == [{"policy": "a-warning", "policyId": warn["id"],
                                        "revision": 1, "agent": None,
                                        "message": "returned false"}]


def test_rollout_scope_policies_do_not_gate_publishing(api: Api) -> None:
    approved(api, "rollout-only", "false", "rollout")
    config = configuration(api, DEBUG)
    assert publish(api, config).status == 200


# --- tenancy ------------------------------------------------------------------------------

def test_another_tenant_can_neither_see_nor_change_nor_approve_nor_evaluate(api: Api) -> None:
    # Given a draft of tenant acme
    policy = create(api)
    config = configuration(api, CLEAN, tenant="globex")
    path = base(policy["id"])
    # Then globex sees nothing of it
    assert names(api, tenant="globex") == []
    for answer in (api.get(path, tenant="globex"),
                   patch(api, policy["id"], {"description": "x"}, tenant="globex"),
                   approve(api, policy["id"], tenant="globex"),
                   api.post(f"{path}/disable", tenant="globex"),
                   api.post("/api/policies/evaluate", {
                       "policyId": policy["id"], "configurationId": config, "version": 1},
                       tenant="globex")):
        assert answer.status == 404 and answer.json["type"] == DOCS + "not-found"
    assert api.get(path).json == policy
    # And acme's policies do not gate globex's publishes
    approve(api, policy["id"])
    denied = configuration(api, DEBUG, tenant="globex")
    assert publish(api, denied, tenant="globex").status == 200
