"""The conventions every endpoint shares: problems, paging, ETags, tenancy."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.api import Api

DOCS = "https://docs.ampora.io/errors/"


def make_tokens(api: Api, count: int, tenant: str = "acme") -> list[str]:
    ids = []
    for i in range(count):
        answer = api.post("/api/api-tokens", {"name": f"t{i}", "role": "Viewer"}, tenant=tenant)
        ids.append(answer.json["id"])
    return ids


def next_link(answer) -> str | None:
    link = answer.header("Link")
    if link is None:
        return None
    assert link.endswith('>; rel="next"')
    return link[1: link.index(">")]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- problems -------------------------------------------------------------------------------

def test_malformed_json_is_400_problem(api: Api) -> None:
    answer = api.call("POST", "/api/api-tokens", raw=b'{"name": "x",')
    assert answer.status == 400
    assert answer.header("Content-Type") == "application/problem+json"
    assert answer.json["type"] == DOCS + "malformed-json"
    assert answer.json["instance"] == "/api/api-tokens"
    assert set(answer.json) >= {"type", "title", "status", "detail", "instance"}


def test_body_on_an_operation_without_one_is_refused(api: Api) -> None:
    token = api.post("/api/api-tokens", {"name": "x", "role": "Viewer"}).json
    answer = api.post(f"/api/api-tokens/{token['id']}/revoke", {"reason": "leaked"})
    assert answer.status == 422
    assert api.get(f"/api/api-tokens/{token['id']}").json["status"] == "active"


def test_oversized_body_is_413(api: Api) -> None:
    answer = api.call("POST", "/api/api-tokens", raw=b'{"name":"' + b"x" * 2_000_000 + b'"}')
    assert answer.status == 413
    assert answer.json["type"] == DOCS + "payload-too-large"


def test_unknown_query_parameter_is_400(api: Api) -> None:
    answer = api.get("/api/tenant?verbose=1")
    assert answer.status == 400
    assert answer.json["type"] == DOCS + "invalid-query"


def test_invalid_filter_value_is_400_with_pointer(api: Api) -> None:
    answer = api.get("/api/audit/events?since=yesterday")
    assert answer.status == 400
    assert answer.json["errors"][0]["pointer"] == "/since"


def test_unsupported_media_type_is_a_problem(api: Api) -> None:
    answer = api.call("POST", "/api/api-tokens", raw=b"name=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 415
    assert answer.header("Content-Type") == "application/problem+json"


def test_internal_errors_leak_nothing(api: Api, monkeypatch) -> None:
    from chalicelib.tenants import service

    def explode(tenant: str):
        raise RuntimeError("secret internal detail /var/task/chalicelib")

    monkeypatch.setattr(service, "get", explode)
    answer = api.get("/api/tenant")
    assert answer.status == 500
    assert answer.json["type"] == DOCS + "internal-error"
    assert "secret" not in answer.body.decode() and "Traceback" not in answer.body.decode()
    assert answer.json["requestId"] is not None


# --- paging ---------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=-1", "limit=ten",
                                   "offset=-3", "offset=1&cursor=abc"])
def test_bad_paging_is_400(api: Api, query: str) -> None:
    answer = api.get(f"/api/api-tokens?{query}")
    assert answer.status == 400
    assert answer.json["type"] == DOCS + "invalid-paging"


def test_cursor_paging_walks_every_item_once(api: Api) -> None:
    ids = make_tokens(api, 7)
    seen, path = [], "/api/api-tokens?limit=3"
    while path:
        answer = api.get(path)
        assert answer.header("X-Total-Count") == "7"
        seen += [t["id"] for t in answer.json]
        link = next_link(answer)
        if link:
            assert link.startswith("https://api.example.test/api/api-tokens?")
        path = path_of(link) if link else None
    assert seen == ids


def test_offset_paging(api: Api) -> None:
    ids = make_tokens(api, 5)
    answer = api.get("/api/api-tokens?limit=2&offset=2")
    assert [t["id"] for t in answer.json] == ids[2:4]
    assert parse_qs(urlsplit(next_link(answer)).query)["offset"] == ["4"]
    last = api.get("/api/api-tokens?limit=2&offset=4")
    assert [t["id"] for t in last.json] == ids[4:] and next_link(last) is None


def test_next_link_keeps_the_filters(api: Api) -> None:
    ids = make_tokens(api, 4)
    api.post(f"/api/api-tokens/{ids[0]}/revoke")
    answer = api.get("/api/api-tokens?status=active&limit=2")
    assert answer.header("X-Total-Count") == "3"
    query = parse_qs(urlsplit(next_link(answer)).query)
    assert query["status"] == ["active"] and query["limit"] == ["2"]
    rest = api.get(path_of(next_link(answer)))
    assert [t["id"] for t in answer.json + rest.json] == ids[1:]


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
    lambda c: "x" + c,
    lambda c: "garbage",
])
def test_tampered_cursor_is_400(api: Api, tamper) -> None:
    make_tokens(api, 3)
    cursor = parse_qs(urlsplit(next_link(api.get("/api/api-tokens?limit=1"))).query)["cursor"][0]
    answer = api.get(f"/api/api-tokens?limit=1&cursor={tamper(cursor)}")
    assert answer.status == 400
    assert answer.json["type"] == DOCS + "invalid-cursor"


def test_cursor_does_not_cross_filters_or_tenants(api: Api) -> None:
    make_tokens(api, 3)
    cursor = parse_qs(urlsplit(next_link(api.get("/api/api-tokens?limit=1"))).query)["cursor"][0]
    assert api.get(f"/api/api-tokens?limit=1&status=active&cursor={cursor}").status == 400
    make_tokens(api, 3, tenant="other")
    assert api.get(f"/api/api-tokens?limit=1&cursor={cursor}", tenant="other").status == 400


# --- ETags and tenant settings --------------------------------------------------------------

def test_tenant_exists_from_first_request_with_defaults(api: Api) -> None:
    answer = api.get("/api/tenant", tenant="newco")
    assert answer.status == 200
    assert answer.json["id"] == "newco" and answer.json["requireIfMatch"] is False
    assert answer.header("ETag").startswith('"') and answer.header("ETag").endswith('"')


def test_if_match_mismatch_is_412_with_current_etag(api: Api) -> None:
    current = api.get("/api/tenant").header("ETag")
    answer = api.put("/api/tenant", {"displayName": "Acme"}, headers={"If-Match": '"stale"'})
    assert answer.status == 412
    assert answer.header("ETag") == current
    assert api.get("/api/tenant").json["displayName"] is None


def test_if_match_match_updates_and_changes_etag(api: Api) -> None:
    current = api.get("/api/tenant").header("ETag")
    answer = api.put("/api/tenant", {"displayName": "Acme"}, headers={"If-Match": current})
    assert answer.status == 200 and answer.json["displayName"] == "Acme"
    assert answer.header("ETag") != current
    # the old ETag is now stale: a second writer with it loses
    again = api.put("/api/tenant", {"displayName": "Other"}, headers={"If-Match": current})
    assert again.status == 412


def test_weak_etag_never_matches(api: Api) -> None:
    current = api.get("/api/tenant").header("ETag")
    assert api.put("/api/tenant", {}, headers={"If-Match": f"W/{current}"}).status == 412


def test_require_if_match_makes_unconditional_mutations_428(api: Api) -> None:
    etag = api.get("/api/tenant").header("ETag")
    api.put("/api/tenant", {"requireIfMatch": True}, headers={"If-Match": etag})
    answer = api.put("/api/tenant", {"requireIfMatch": False})
    assert answer.status == 428
    assert answer.json["type"] == DOCS + "precondition-required"
    etag = api.get("/api/tenant").header("ETag")
    assert api.put("/api/tenant", {"requireIfMatch": False}, headers={"If-Match": etag}).status == 200


@pytest.mark.parametrize(("body", "pointer"), [
    ({"heartbeatIntervalSeconds": 1}, "/heartbeatIntervalSeconds"),
    ({"requireIfMatch": "sometimes"}, "/requireIfMatch"),
    ({"retention": 3}, "/retention"),
])
def test_bad_tenant_settings_are_422_and_change_nothing(api: Api, body, pointer) -> None:
    before = api.get("/api/tenant")
    answer = api.put("/api/tenant", body)
    assert answer.status == 422
    assert [e["pointer"] for e in answer.json["errors"]] == [pointer]
    assert api.get("/api/tenant").header("ETag") == before.header("ETag")


def test_only_admins_change_tenant_settings(api: Api) -> None:
    assert api.put("/api/tenant", {}, role="Operator").status == 403


def test_tenants_do_not_see_each_other(api: Api) -> None:
    api.put("/api/tenant", {"displayName": "Acme"})
    assert api.get("/api/tenant", tenant="other").json["displayName"] is None
