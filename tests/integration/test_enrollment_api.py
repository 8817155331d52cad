"""Bootstrap tokens and token pools through the HTTP surface."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.api import Api

TOKEN_SHAPE = re.compile(r"^amp-bt\.[A-Z2-7]{32}\.[A-Z2-7]{7}$")
DOCS = "https://docs.ampora.io/errors/"
AGENT = "0123456789abcdef0123456789abcdef"


def issue(api: Api, **body: Any) -> dict[str, Any]:
    answer = api.post("/api/tokens", {"name": "fleet", **body}, role="Operator")
    assert answer.status == 201, answer.json
    return answer.json  # type: ignore[no-any-return]


def make_pool(api: Api, **body: Any) -> dict[str, Any]:
    answer = api.post("/api/tokens/pools", {"name": "asg", "quotaPerHour": 5, **body})
    assert answer.status == 201, answer.json
    return answer.json  # type: ignore[no-any-return]


def make_group(api: Api, name: str = "edge", tenant: str = "acme") -> str:
    answer = api.post("/api/groups", {"name": name}, tenant=tenant)
    assert answer.status == 201, answer.json
    return answer.json["id"]  # type: ignore[no-any-return]


def redeem(token: str, agent: str = AGENT) -> Any:
    from chalicelib.enrollment import service

    return service.redeem(token, agent)


def total(api: Api, path: str, **kwargs: Any) -> int:
    return int(api.get(path, **kwargs).header("X-Total-Count") or -1)


# --- issuing ----------------------------------------------------------------------------------

def test_issued_token_is_shown_once_with_defaults(api: Api, clock) -> None:
    # Given an Operator issues a token naming only its name
    answer = api.post("/api/tokens", {"name": "fleet"}, role="Operator")
    # Then it is shown in the documented format, once, with the defaults
    assert answer.status == 201
    created = answer.json
    assert TOKEN_SHAPE.match(created["token"])
    assert created["hint"] == created["token"][:11]
    assert answer.header("Location") == f"/api/tokens/{created['id']}"
    assert answer.header("Cache-Control") == "no-store"
    assert (created["groupId"], created["maxUses"], created["uses"]) == ("default", 1, 0)
    assert created["status"] == "active" and created["labels"] == {}
    assert created["expiresAt"] == "2026-01-06T09:00:00Z"
    assert created["createdBy"] == {"type": "user", "id": "alice", "name": "alice"}
    # And reading or listing it never shows the token again
    again = api.get(f"/api/tokens/{created['id']}", role="Viewer")
    assert again.status == 200 and "token" not in again.json
    assert again.json["id"] == created["id"]
    assert all("token" not in t for t in api.get("/api/tokens", role="Viewer").json)


def test_token_names_its_group_labels_lifetime_and_uses(api: Api) -> None:
    group = make_group(api)
    created = issue(api, groupId=group, labels={"env": "prod", "team/owner": "sre"},
                    ttlSeconds=3600, maxUses=25)
    assert created["groupId"] == group
    assert created["labels"] == {"env": "prod", "team/owner": "sre"}
    assert created["expiresAt"] == "2026-01-05T10:00:00Z" and created["maxUses"] == 25


def test_the_longest_lifetime_is_the_setting(api: Api) -> None:
    created = issue(api, ttlSeconds=30 * 86_400)
    assert created["expiresAt"] == "2026-02-04T09:00:00Z"


@pytest.mark.parametrize(("body", "pointer"), [
    ({}, "/name"),
    ({"name": ""}, "/name"),
    ({"name": "x", "ttlSeconds": 0}, "/ttlSeconds"),
    ({"name": "x", "ttlSeconds": -5}, "/ttlSeconds"),
    ({"name": "x", "ttlSeconds": 30 * 86_400 + 1}, "/ttlSeconds"),
    ({"name": "x", "ttlSeconds": "3600"}, "/ttlSeconds"),
    ({"name": "x", "maxUses": 0}, "/maxUses"),
    ({"name": "x", "maxUses": 100_001}, "/maxUses"),
    ({"name": "x", "maxUses": True}, "/maxUses"),
    ({"name": "x", "labels": {"bad key": "v"}}, "/labels/bad key/[key]"),
    ({"name": "x", "labels": {"env": 3}}, "/labels/env"),
    ({"name": "x", "groupId": ""}, "/groupId"),
    ({"name": "x", "colour": "red"}, "/colour"),
    ({"name": "x", "token": "amp-bt.chosen"}, "/token"),
])
def test_invalid_issue_is_422_and_issues_nothing(api: Api, body: dict[str, Any],
                                                 pointer: str) -> None:
    answer = api.post("/api/tokens", body)
    assert answer.status == 422, answer.json
    assert answer.json["type"] == DOCS + "validation-failed"
    assert pointer in [e["pointer"] for e in answer.json["errors"]]
    assert total(api, "/api/tokens") == 0


def test_unknown_group_is_422_on_group_id(api: Api) -> None:
    answer = api.post("/api/tokens", {"name": "x", "groupId": "nope"})
    assert answer.status == 422
    assert answer.json["errors"] == [{"pointer": "/groupId", "detail": "no active group 'nope'"}]
    assert total(api, "/api/tokens") == 0


def test_deleted_group_is_422_on_group_id(api: Api) -> None:
    group = make_group(api)
    assert api.call("DELETE", f"/api/groups/{group}").status == 204
    answer = api.post("/api/tokens", {"name": "x", "groupId": group})
    assert answer.status == 422
    assert answer.json["errors"][0]["pointer"] == "/groupId"


def test_another_tenants_group_is_unknown(api: Api) -> None:
    group = make_group(api, tenant="beta")
    answer = api.post("/api/tokens", {"name": "x", "groupId": group})
    assert answer.status == 422 and answer.json["errors"][0]["pointer"] == "/groupId"


# --- roles ------------------------------------------------------------------------------------

def test_viewer_reads_but_cannot_issue_or_revoke(api: Api) -> None:
    created = issue(api)
    assert api.get("/api/tokens", role="Viewer").status == 200
    refused = api.post("/api/tokens", {"name": "x"}, role="Viewer")
    assert refused.status == 403 and refused.json["type"] == DOCS + "forbidden"
    assert api.post(f"/api/tokens/{created['id']}/revoke", role="Viewer").status == 403
    assert total(api, "/api/tokens") == 1


def test_pools_are_created_by_admins_and_used_by_operators(api: Api) -> None:
    body = {"name": "asg", "quotaPerHour": 5}
    assert api.post("/api/tokens/pools", body, role="Operator").status == 403
    pool = make_pool(api)
    assert api.post(f"/api/tokens/pools/{pool['id']}/issue", role="Viewer").status == 403
    assert api.post(f"/api/tokens/pools/{pool['id']}/issue", role="Operator").status == 201
    assert api.get("/api/tokens/pools", role="Viewer").status == 200


# --- revoking and status ----------------------------------------------------------------------

def test_revoke_is_for_good_and_idempotent(api: Api, clock) -> None:
    created = issue(api)
    revoked = api.post(f"/api/tokens/{created['id']}/revoke", role="Operator")
    assert revoked.status == 200
    assert revoked.json["status"] == "revoked" and revoked.json["revokedAt"] is not None
    assert revoked.json["revokedBy"]["id"] == "alice"
    clock.advance(minutes=1)
    again = api.post(f"/api/tokens/{created['id']}/revoke", role="Operator", sub="bob")
    assert again.status == 200 and again.json["revokedAt"] == revoked.json["revokedAt"]


def test_unknown_token_is_404(api: Api) -> None:
    assert api.get("/api/tokens/nope").status == 404
    answer = api.post("/api/tokens/nope/revoke")
    assert answer.status == 404 and answer.json["instance"] == "/api/tokens/nope/revoke"


def test_list_filters_by_status_and_group(api: Api, clock) -> None:
    group = make_group(api)
    active = issue(api, maxUses=2)
    in_group = issue(api, groupId=group)
    revoked = issue(api)
    api.post(f"/api/tokens/{revoked['id']}/revoke")
    exhausted = issue(api)
    redeem(exhausted["token"])
    expiring = issue(api, ttlSeconds=60, maxUses=3)
    clock.advance(seconds=60)

    def ids(query: str) -> list[str]:
        answer = api.get(f"/api/tokens?{query}")
        assert answer.status == 200, answer.json
        assert answer.header("X-Total-Count") == str(len(answer.json))
        return [t["id"] for t in answer.json]

    assert ids("status=active") == [active["id"], in_group["id"]]
    assert ids("status=revoked") == [revoked["id"]]
    assert ids("status=exhausted") == [exhausted["id"]]
    assert ids("status=expired") == [expiring["id"]]
    assert ids(f"group={group}") == [in_group["id"]]
    assert ids(f"group={group}&status=revoked") == []
    assert len(ids("")) == 5
    statuses = {t["id"]: t["status"] for t in api.get("/api/tokens").json}
    assert statuses[exhausted["id"]] == "exhausted" and statuses[expiring["id"]] == "expired"


def test_unknown_status_filter_is_400(api: Api) -> None:
    answer = api.get("/api/tokens?status=used")
    assert answer.status == 400 and answer.json["type"] == DOCS + "invalid-query"


def test_tokens_page(api: Api) -> None:
    ids = [issue(api, name=f"t{i}")["id"] for i in range(3)]
    first = api.get("/api/tokens?limit=2")
    assert [t["id"] for t in first.json] == ids[:2] and first.header("X-Total-Count") == "3"
    assert 'rel="next"' in (first.header("Link") or "")


# --- events and audit -------------------------------------------------------------------------

def events(tenant: str = "acme") -> list[dict[str, Any]]:
    from chalicelib.core.events import EventRecord

    return [dict(e.envelope) for e in EventRecord.query(tenant)]


def test_changes_emit_events_and_are_audited(api: Api, clock) -> None:
    created = issue(api)
    clock.advance(seconds=1)
    api.post(f"/api/tokens/{created['id']}/revoke", role="Operator")
    clock.advance(seconds=1)
    pool = make_pool(api)
    clock.advance(seconds=1)
    issued = api.post(f"/api/tokens/pools/{pool['id']}/issue", role="Operator").json
    mine = ("bootstrap-token.", "token-pool.")
    kinds = [(e["type"], e["data"]["id"]) for e in events() if e["type"].startswith(mine)]
    assert kinds == [("bootstrap-token.issued", created["id"]),
                     ("bootstrap-token.revoked", created["id"]),
                     ("token-pool.created", pool["id"]),
                     ("bootstrap-token.issued", issued["id"])]
    assert all("token" not in e["data"] for e in events())
    audit = api.get("/api/audit/events").json
    actions = [(a["action"], a["resourceId"]) for a in audit]
    assert ("bootstrapTokens.create", created["id"]) in actions
    assert ("bootstrapTokens.revoke", created["id"]) in actions
    assert ("tokenPools.create", pool["id"]) in actions
    assert ("tokenPools.issue", issued["id"]) in actions


# --- pools ------------------------------------------------------------------------------------

def test_pool_issues_tokens_from_its_template(api: Api) -> None:
    group = make_group(api)
    pool = make_pool(api, groupId=group, labels={"asg": "web"}, ttlSeconds=600,
                     usesPerToken=3)
    assert (pool["groupId"], pool["ttlSeconds"], pool["usesPerToken"]) == (group, 600, 3)
    answer = api.post(f"/api/tokens/pools/{pool['id']}/issue", role="Operator")
    assert answer.status == 201 and answer.header("Cache-Control") == "no-store"
    token = answer.json
    assert TOKEN_SHAPE.match(token["token"])
    assert (token["poolId"], token["groupId"], token["labels"]) == (pool["id"], group,
                                                                    {"asg": "web"})
    assert (token["maxUses"], token["expiresAt"], token["name"]) == (
        3, "2026-01-05T09:10:00Z", "asg")
    named = api.post(f"/api/tokens/pools/{pool['id']}/issue", {"name": "i-0abc"}).json
    assert named["name"] == "i-0abc"


def test_pool_defaults(api: Api) -> None:
    pool = make_pool(api)
    assert (pool["groupId"], pool["ttlSeconds"], pool["usesPerToken"], pool["labels"]) == (
        "default", 86_400, 1, {})


def test_pools_list_and_read_beside_tokens(api: Api) -> None:
    # /api/tokens/pools is a literal route next to /api/tokens/{id}
    pool = make_pool(api)
    issue(api)
    listed = api.get("/api/tokens/pools")
    assert listed.status == 200 and [p["id"] for p in listed.json] == [pool["id"]]
    assert listed.header("X-Total-Count") == "1"
    assert api.get(f"/api/tokens/pools/{pool['id']}").json == pool
    assert api.get("/api/tokens/pools/nope").status == 404
    assert api.post("/api/tokens/pools/nope/issue").status == 404
    assert [t["name"] for t in api.get("/api/tokens").json] == ["fleet"]


@pytest.mark.parametrize(("body", "pointer"), [
    ({"name": "p"}, "/quotaPerHour"),
    ({"name": "p", "quotaPerHour": 0}, "/quotaPerHour"),
    ({"name": "p", "quotaPerHour": 100_001}, "/quotaPerHour"),
    ({"name": "p", "quotaPerHour": 5, "usesPerToken": 0}, "/usesPerToken"),
    ({"name": "p", "quotaPerHour": 5, "ttlSeconds": 0}, "/ttlSeconds"),
    ({"name": "p", "quotaPerHour": 5, "ttlSeconds": 30 * 86_400 + 1}, "/ttlSeconds"),
    ({"name": "p", "quotaPerHour": 5, "groupId": "nope"}, "/groupId"),
    ({"name": "p", "quotaPerHour": 5, "maxUses": 2}, "/maxUses"),
])
def test_invalid_pool_is_422(api: Api, body: dict[str, Any], pointer: str) -> None:
    answer = api.post("/api/tokens/pools", body)
    assert answer.status == 422, answer.json
    assert pointer in [e["pointer"] for e in answer.json["errors"]]
    assert total(api, "/api/tokens/pools") == 0


def test_issue_body_rejects_unknown_fields(api: Api) -> None:
    pool = make_pool(api)
    answer = api.post(f"/api/tokens/pools/{pool['id']}/issue", {"maxUses": 100})
    assert answer.status == 422 and answer.json["errors"][0]["pointer"] == "/maxUses"


def test_pool_quota_is_per_hour_and_429_beyond(api: Api, clock) -> None:
    pool = make_pool(api, quotaPerHour=2)
    path = f"/api/tokens/pools/{pool['id']}/issue"
    clock.advance(minutes=39)
    assert [api.post(path).status for _ in range(2)] == [201, 201]
    # When the pool is asked for a third token within the hour
    refused = api.post(path)
    # Then it is refused with a problem saying when to come back, and nothing is issued
    assert refused.status == 429
    assert refused.json["type"] == DOCS + "quota-exceeded"
    assert refused.header("Retry-After") == str(21 * 60)
    assert total(api, "/api/tokens") == 2
    # And the next hour has a fresh quota
    clock.advance(minutes=21)
    assert api.post(path).status == 201


def test_quota_is_per_pool(api: Api) -> None:
    first, second = make_pool(api, quotaPerHour=1), make_pool(api, name="b", quotaPerHour=1)
    assert api.post(f"/api/tokens/pools/{first['id']}/issue").status == 201
    assert api.post(f"/api/tokens/pools/{first['id']}/issue").status == 429
    assert api.post(f"/api/tokens/pools/{second['id']}/issue").status == 201


def test_pool_whose_group_was_deleted_issues_nothing(api: Api) -> None:
    group = make_group(api)
    pool = make_pool(api, groupId=group)
    assert api.call("DELETE", f"/api/groups/{group}").status == 204
    answer = api.post(f"/api/tokens/pools/{pool['id']}/issue")
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert total(api, "/api/tokens") == 0


def test_pat_restricted_to_pool_issue_can_issue_and_nothing_else(api: Api) -> None:
    # Given an autoscaling hook's PAT allowed exactly the pool issue endpoint
    pool = make_pool(api)
    pat = api.post("/api/api-tokens", {
        "name": "asg-hook", "role": "Operator",
        "allowedEndpoints": ["POST /api/tokens/pools/{id}/issue"]}).json["token"]
    # When it issues from the pool, it gets a token (audited under the PAT's name)
    issued = api.post(f"/api/tokens/pools/{pool['id']}/issue", token=pat)
    assert issued.status == 201 and TOKEN_SHAPE.match(issued.json["token"])
    assert issued.json["createdBy"] == {"type": "pat", "id": issued.json["createdBy"]["id"],
                                        "name": "asg-hook"}
    # And every other call is refused
    for method, path in [("GET", "/api/tokens"), ("POST", "/api/tokens"),
                         ("GET", "/api/tokens/pools"), ("POST", "/api/tokens/pools"),
                         ("GET", f"/api/tokens/pools/{pool['id']}"),
                         ("GET", f"/api/tokens/{issued.json['id']}"),
                         ("POST", f"/api/tokens/{issued.json['id']}/revoke")]:
        body = {"name": "x", "quotaPerHour": 1} if method == "POST" else None
        refused = api.call(method, path, body, token=pat)
        assert refused.status == 403, (method, path)
        # (creating a pool needs Admin: the Operator PAT is refused for its role first)
        slug = "forbidden" if path == "/api/tokens/pools" and method == "POST" else (
            "endpoint-not-allowed")
        assert refused.json["type"] == DOCS + slug


# --- tenancy ----------------------------------------------------------------------------------

def test_tenant_b_cannot_see_or_touch_tenant_a_tokens_or_pools(api: Api) -> None:
    created = issue(api)
    pool = make_pool(api)
    for method, path in [("GET", f"/api/tokens/{created['id']}"),
                         ("POST", f"/api/tokens/{created['id']}/revoke"),
                         ("GET", f"/api/tokens/pools/{pool['id']}"),
                         ("POST", f"/api/tokens/pools/{pool['id']}/issue")]:
        assert api.call(method, path, tenant="beta").status == 404, (method, path)
    assert api.get("/api/tokens", tenant="beta").json == []
    assert api.get("/api/tokens/pools", tenant="beta").json == []
    assert api.get(f"/api/tokens/{created['id']}").json["status"] == "active"
    assert total(api, "/api/tokens") == 1
