"""The audit trail: every state-changing request that reaches a principal is recorded."""

from __future__ import annotations

import pytest

from tests.support.api import Api


def events(api: Api, query: str = "", tenant: str = "acme") -> list[dict]:
    answer = api.get(f"/api/audit/events{query}", tenant=tenant)
    assert answer.status == 200, answer.json
    return answer.json


def test_successful_changes_are_recorded_with_actor_and_request(api: Api) -> None:
    created = api.post("/api/api-tokens", {"name": "ci", "role": "Viewer"}, sub="carol").json
    [record] = events(api, "?action=apiTokens.create")
    assert record["actor"] == {"type": "user", "id": "carol", "name": "carol"}
    assert record["resourceType"] == "api-token" and record["resourceId"] == created["id"]
    assert record["outcome"] == "success" and record["status"] == 201
    assert record["method"] == "POST" and record["path"] == "/api/api-tokens"
    assert record["sourceIp"] == "127.0.0.1"


def test_pat_calls_are_recorded_with_the_pat_name(api: Api) -> None:
    created = api.post("/api/api-tokens", {"name": "deployer", "role": "Admin"}).json
    api.put("/api/tenant", {"displayName": "x"}, token=created["token"])
    [record] = events(api, "?action=tenant.update")
    assert record["actor"] == {"type": "pat", "id": created["id"], "name": "deployer"}
    assert events(api, "?actor=deployer") == [record]


@pytest.mark.parametrize(("call", "status"), [
    (lambda api: api.put("/api/tenant", {}, role="Operator"), 403),
    (lambda api: api.put("/api/tenant", {}, headers={"If-Match": '"old"'}), 412),
    (lambda api: api.put("/api/tenant", {"heartbeatIntervalSeconds": 0}), 422),
])
def test_refused_changes_are_recorded(api: Api, call, status: int) -> None:
    assert call(api).status == status
    [record] = events(api, "?action=tenant.update")
    assert record["outcome"] == "refused" and record["status"] == status


def test_reads_and_unauthenticated_calls_are_not_audited(api: Api) -> None:
    api.get("/api/tenant")
    api.call("PUT", "/api/tenant", {}, token="")
    assert events(api) == []


def test_filters_combine(api: Api, clock) -> None:
    first = api.post("/api/api-tokens", {"name": "a", "role": "Viewer"}).json
    clock.advance(hours=1)
    api.post(f"/api/api-tokens/{first['id']}/revoke")
    clock.advance(hours=1)
    api.put("/api/tenant", {}, role="Operator")
    assert [e["action"] for e in events(api)] == [
        "tenant.update", "apiTokens.revoke", "apiTokens.create"]  # newest first
    assert len(events(api, f"?resourceType=api-token&resourceId={first['id']}")) == 2
    assert [e["action"] for e in events(api, "?outcome=refused")] == ["tenant.update"]
    window = "?since=2026-01-05T09:30:00Z&until=2026-01-05T10:30:00Z"
    assert [e["action"] for e in events(api, window)] == ["apiTokens.revoke"]


def test_audit_is_admin_only_and_tenant_isolated(api: Api) -> None:
    api.post("/api/api-tokens", {"name": "a", "role": "Viewer"})
    assert api.get("/api/audit/events", role="Operator").status == 403
    assert events(api, tenant="other") == []


def test_records_expire_by_ttl(api: Api) -> None:
    from chalicelib.audit.models import AuditItem

    api.post("/api/api-tokens", {"name": "a", "role": "Viewer"})
    [item] = list(AuditItem.query("acme"))
    assert (item.expires_at - item.at).days == 400
