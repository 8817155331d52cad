"""Groups through the HTTP surface: default group, create, list, read, merge-patch, delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import Answer, Api

DOCS = "https://docs.ampora.io/errors/"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(autouse=True)
def fresh_defaults() -> Iterator[None]:
    """Each test has fresh tables, so the process must forget which default groups exist."""
    from chalicelib.groups import service

    service.forget_known()
    yield
    service.forget_known()


def create(api: Api, name: str = "web", **body: Any) -> dict:
    caller = _caller(body)
    answer = api.post("/api/groups", {"name": name, **body}, **caller)
    assert answer.status == 201, answer.json
    return answer.json


def _caller(body: dict[str, Any]) -> dict[str, Any]:
    return {key: body.pop(key) for key in ("tenant", "role") if key in body}


def patch(api: Api, group_id: str, body: Any, **kwargs: Any) -> Answer:
    return api.call("PATCH", f"/api/groups/{group_id}", body, **kwargs)


def delete(api: Api, group_id: str, **kwargs: Any) -> Answer:
    return api.call("DELETE", f"/api/groups/{group_id}", **kwargs)


def names(api: Api, query: str = "", **kwargs: Any) -> list[str]:
    answer = api.get(f"/api/groups{query}", **kwargs)
    assert answer.status == 200, answer.json
    return [g["name"] for g in answer.json]


def etag_of(api: Api, group_id: str) -> str:
    tag = api.get(f"/api/groups/{group_id}").header("ETag")
    assert tag is not None
    return tag


# --- the default group ------------------------------------------------------------------------

def test_every_tenant_has_a_default_group(api: Api) -> None:
    # Given a tenant that never created a group / When it lists its groups
    answer = api.get("/api/groups")
    # Then the default group is there
    assert answer.status == 200 and answer.header("X-Total-Count") == "1"
    [group] = answer.json
    assert group["id"] == "default" and group["name"] == "default" and group["isDefault"]
    # And it can be read by its id, with an ETag
    read = api.get("/api/groups/default")
    assert read.status == 200 and read.header("ETag")


def test_default_group_cannot_be_deleted(api: Api) -> None:
    # Given the default group / When an Operator deletes it
    answer = delete(api, "default", role="Operator")
    # Then it is refused as a conflict and the group stays
    assert answer.status == 409
    assert answer.json["type"] == DOCS + "conflict"
    assert "default" in names(api)


def test_default_group_is_there_even_if_the_process_remembers_it(api: Api) -> None:
    # Given this process already made the default group of another tenant's first request
    from chalicelib.groups import service

    assert service.ensure_default("acme") == "default"
    # When it is read / Then it exists
    assert api.get("/api/groups/default").status == 200


# --- create, read, list -----------------------------------------------------------------------

def test_created_group_can_be_read_with_its_etag(api: Api) -> None:
    # Given an Operator creates a group
    answer = api.post("/api/groups", {"name": "Edge EU", "description": "edge nodes",
                                      "labels": {"env": "prod", "region": "eu-west-1"}},
                      role="Operator")
    # Then it is 201 with its location and body
    assert answer.status == 201, answer.json
    created = answer.json
    assert answer.header("Location") == f"/api/groups/{created['id']}"
    assert created["name"] == "Edge EU" and created["description"] == "edge nodes"
    assert created["labels"] == {"env": "prod", "region": "eu-west-1"}
    assert created["isDefault"] is False and created["deletedAt"] is None
    assert created["createdAt"] == created["updatedAt"] == "2026-01-05T09:00:00Z"
    # When it is read back / Then it is the same, with an ETag
    read = api.get(f"/api/groups/{created['id']}", role="Viewer")
    assert read.status == 200 and read.json == created
    assert read.header("ETag").startswith('"')


def test_unknown_group_is_404(api: Api) -> None:
    answer = api.get("/api/groups/nope")
    assert answer.status == 404 and answer.json["type"] == DOCS + "not-found"


def test_list_filters_by_name_prefix_case_insensitively(api: Api) -> None:
    # Given three groups
    for name in ("web-eu", "Web-us", "db"):
        create(api, name)
    # When listing with a name prefix / Then only the matching ones, whatever their case
    assert sorted(names(api, "?name=WEB")) == ["Web-us", "web-eu"]
    assert names(api, "?name=d") == ["db", "default"]


def test_list_is_paged(api: Api) -> None:
    # Given four groups besides the default one
    for name in ("a", "b", "c", "d"):
        create(api, name)
    # When listing two at a time
    first = api.get("/api/groups?limit=2")
    # Then the total counts all five and a next link continues the list
    assert first.header("X-Total-Count") == "5" and len(first.json) == 2
    link = first.header("Link")
    assert link is not None and link.endswith('rel="next"')
    seen = [g["name"] for g in first.json]
    path: str | None = link[link.index("/api/"): link.index(">")]
    while path:
        page = api.get(path)
        seen += [g["name"] for g in page.json]
        link = page.header("Link")
        path = link[link.index("/api/"): link.index(">")] if link else None
    assert sorted(seen) == ["a", "b", "c", "d", "default"]


# --- uniqueness -------------------------------------------------------------------------------

def test_duplicate_name_is_409_case_insensitively(api: Api) -> None:
    # Given a group "web"
    create(api, "web")
    # When another group is created as "WEB"
    answer = api.post("/api/groups", {"name": "WEB"})
    # Then it is a conflict and nothing was created
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert names(api) == ["web", "default"]


def test_nobody_can_take_the_default_groups_name(api: Api) -> None:
    assert api.post("/api/groups", {"name": "Default"}).status == 409


def test_rename_to_a_taken_name_is_409_and_changes_nothing(api: Api) -> None:
    # Given groups "web" and "db"
    create(api, "web")
    db = create(api, "db")
    before = etag_of(api, db["id"])
    # When "db" is renamed to "Web"
    answer = patch(api, db["id"], {"name": "Web"})
    # Then it is a conflict and "db" is unchanged
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert etag_of(api, db["id"]) == before
    assert sorted(names(api)) == ["db", "default", "web"]


def test_rename_frees_the_old_name(api: Api) -> None:
    # Given "web" renamed to "frontend"
    web = create(api, "web")
    assert patch(api, web["id"], {"name": "frontend"}).status == 200
    # When a new group takes the old name / Then it may, and the new name stays taken
    assert api.post("/api/groups", {"name": "web"}).status == 201
    assert api.post("/api/groups", {"name": "FRONTEND"}).status == 409


def test_changing_only_the_case_of_a_name_is_allowed(api: Api) -> None:
    web = create(api, "web")
    answer = patch(api, web["id"], {"name": "WEB"})
    assert answer.status == 200 and answer.json["name"] == "WEB"
    assert api.post("/api/groups", {"name": "Web"}).status == 409


# --- merge-patch and If-Match -----------------------------------------------------------------

def test_patch_merges_fields_and_labels(api: Api, clock) -> None:
    # Given a group with a description and two labels
    group = create(api, "web", description="old", labels={"env": "prod", "tier": "edge"})
    before = etag_of(api, group["id"])
    clock.advance(minutes=5)
    # When a merge patch removes one label, adds one and removes the description
    answer = patch(api, group["id"], {"labels": {"tier": None, "team": "sre"},
                                      "description": None},
                   role="Operator", headers={**MERGE_PATCH, "If-Match": before})
    # Then only those fields change, with a new ETag
    assert answer.status == 200, answer.json
    assert answer.json["labels"] == {"env": "prod", "team": "sre"}
    assert answer.json["description"] is None and answer.json["name"] == "web"
    assert answer.json["updatedAt"] == "2026-01-05T09:05:00Z"
    assert answer.header("ETag") not in (None, before)
    assert api.get(f"/api/groups/{group['id']}").json == answer.json


def test_null_labels_removes_them_all(api: Api) -> None:
    group = create(api, "web", labels={"env": "prod"})
    assert patch(api, group["id"], {"labels": None}).json["labels"] == {}


def test_empty_patch_changes_nothing(api: Api) -> None:
    group = create(api, "web")
    before = etag_of(api, group["id"])
    answer = patch(api, group["id"], {})
    assert answer.status == 200 and answer.header("ETag") == before


@pytest.mark.parametrize("mutation", [
    lambda api, gid, h: patch(api, gid, {"name": "changed"}, headers=h),
    lambda api, gid, h: delete(api, gid, headers=h),
    lambda api, gid, h: api.post(f"/api/groups/{gid}/members", {"agentIds": ["ab" * 16]},
                                 headers=h),
], ids=["patch", "delete", "members"])
def test_stale_if_match_is_412_with_the_current_etag(api: Api, mutation) -> None:
    # Given a group read, then changed by someone else
    group = create(api, "web")
    stale = etag_of(api, group["id"])
    patch(api, group["id"], {"description": "someone else"})
    current = etag_of(api, group["id"])
    # When a mutation carries the stale ETag
    answer = mutation(api, group["id"], {"If-Match": stale})
    # Then it is 412 with the current ETag, and nothing changed
    assert answer.status == 412 and answer.json["type"] == DOCS + "precondition-failed"
    assert answer.header("ETag") == current
    assert etag_of(api, group["id"]) == current
    assert names(api) == ["web", "default"]


def test_matching_if_match_is_accepted(api: Api) -> None:
    group = create(api, "web")
    answer = patch(api, group["id"], {"name": "www"}, headers={"If-Match": etag_of(api, group["id"])})
    assert answer.status == 200 and answer.json["name"] == "www"


@pytest.mark.parametrize("mutation", [
    lambda api, gid: patch(api, gid, {"name": "changed"}),
    lambda api, gid: delete(api, gid),
    lambda api, gid: api.post(f"/api/groups/{gid}/members", {"agentIds": ["ab" * 16]}),
], ids=["patch", "delete", "members"])
def test_tenant_requiring_if_match_refuses_without_it(api: Api, mutation) -> None:
    # Given a tenant that requires If-Match
    group = create(api, "web")
    assert api.put("/api/tenant", {"requireIfMatch": True}).status == 200
    # When a group is changed without If-Match / Then it is 428 and nothing changed
    before = etag_of(api, group["id"])
    answer = mutation(api, group["id"])
    assert answer.status == 428 and answer.json["type"] == DOCS + "precondition-required"
    assert etag_of(api, group["id"]) == before
    # And with If-Match the change goes through
    assert patch(api, group["id"], {"name": "changed"}, headers={"If-Match": before}).status == 200


def test_creation_needs_no_if_match_even_when_required(api: Api) -> None:
    api.put("/api/tenant", {"requireIfMatch": True})
    assert api.post("/api/groups", {"name": "web"}).status == 201


# --- soft delete ------------------------------------------------------------------------------

def test_deleted_group_is_gone_unless_deleted_ones_are_asked_for(api: Api, clock) -> None:
    # Given groups "web" and "db"
    web = create(api, "web")
    create(api, "db")
    clock.advance(hours=1)
    # When "web" is deleted with its current ETag
    answer = delete(api, web["id"], role="Operator", headers={"If-Match": etag_of(api, web["id"])})
    # Then it is 204 and the group is gone from the list and from reads
    assert answer.status == 204 and answer.body == b""
    assert names(api) == ["db", "default"]
    assert api.get("/api/groups").header("X-Total-Count") == "2"
    assert api.get(f"/api/groups/{web['id']}").status == 404
    # But it is still there when deleted groups are asked for
    assert sorted(names(api, "?includeDeleted=true")) == ["db", "default", "web"]
    kept = api.get(f"/api/groups/{web['id']}?includeDeleted=true")
    assert kept.status == 200 and kept.json["deletedAt"] == "2026-01-05T10:00:00Z"


def test_deleted_group_cannot_be_changed_or_deleted_again(api: Api) -> None:
    web = create(api, "web")
    assert delete(api, web["id"]).status == 204
    assert delete(api, web["id"]).status == 404
    assert patch(api, web["id"], {"name": "x"}).status == 404
    assert api.post(f"/api/groups/{web['id']}/members", {"agentIds": ["ab" * 16]}).status == 404


def test_deleting_a_group_frees_its_name(api: Api) -> None:
    web = create(api, "web")
    delete(api, web["id"])
    again = create(api, "web")
    assert again["id"] != web["id"]
    assert names(api, "?includeDeleted=true&name=web") == ["web", "web"]


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "pointer"), [
    ({}, "/name"),
    ({"name": ""}, "/name"),
    ({"name": "x" * 101}, "/name"),
    ({"name": " padded"}, "/name"),
    ({"name": "tab\tinside"}, "/name"),
    ({"name": 7}, "/name"),
    ({"name": "ok", "description": "d" * 1001}, "/description"),
    ({"name": "ok", "labels": ["env"]}, "/labels"),
    ({"name": "ok", "labels": {"env": 1}}, "/labels/env"),
    ({"name": "ok", "labels": {"env": "x" * 257}}, "/labels/env"),
    ({"name": "ok", "labels": {"bad key!": "x"}}, "/labels/bad key!"),
    ({"name": "ok", "labels": {f"k{i}": "v" for i in range(65)}}, "/labels"),
    ({"name": "ok", "colour": "red"}, "/colour"),
])
def test_invalid_group_is_422_with_pointer_and_creates_nothing(api: Api, body, pointer) -> None:
    answer = api.post("/api/groups", body)
    assert answer.status == 422, answer.json
    assert answer.json["type"] == DOCS + "validation-failed"
    pointers = [e["pointer"] for e in answer.json["errors"]]
    assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), pointers
    assert names(api) == ["default"]


@pytest.mark.parametrize(("body", "pointer"), [
    ({"name": None}, "/name"),
    ({"name": ""}, "/name"),
    ({"labels": {"env": ["prod"]}}, "/labels/env"),
    ({"id": "other"}, "/id"),
])
def test_invalid_patch_is_422_with_pointer_and_changes_nothing(api: Api, body, pointer) -> None:
    group = create(api, "web")
    before = etag_of(api, group["id"])
    answer = patch(api, group["id"], body)
    assert answer.status == 422, answer.json
    assert pointer in [e["pointer"] for e in answer.json["errors"]]
    assert etag_of(api, group["id"]) == before


def test_patch_beyond_the_label_limit_is_422(api: Api) -> None:
    group = create(api, "web", labels={f"a{i}": "v" for i in range(40)})
    answer = patch(api, group["id"], {"labels": {f"b{i}": "v" for i in range(40)}})
    assert answer.status == 422
    assert answer.json["errors"] == [{"pointer": "/labels",
                                      "detail": "a group has at most 64 labels"}]


@pytest.mark.parametrize("body", [{}, {"agentIds": []}, {"agentIds": ["not-hex"]},
                                  {"agentIds": ["ab" * 16] * 1001}])
def test_invalid_members_body_is_422(api: Api, body) -> None:
    answer = api.post("/api/groups/default/members", body)
    assert answer.status == 422 and answer.json["errors"][0]["pointer"].startswith("/agentIds")


def test_bad_list_filters_are_400(api: Api) -> None:
    assert api.get("/api/groups?includeDeleted=maybe").status == 400
    assert api.get("/api/groups?label=x").status == 400


# --- roles and tenants ------------------------------------------------------------------------

@pytest.mark.parametrize("mutation", [
    lambda api, gid: api.post("/api/groups", {"name": "new"}, role="Viewer"),
    lambda api, gid: patch(api, gid, {"name": "changed"}, role="Viewer"),
    lambda api, gid: delete(api, gid, role="Viewer"),
    lambda api, gid: api.post(f"/api/groups/{gid}/members", {"agentIds": ["ab" * 16]},
                              role="Viewer"),
], ids=["create", "patch", "delete", "members"])
def test_viewer_cannot_change_groups(api: Api, mutation) -> None:
    # Given a group / When a Viewer tries to change it / Then 403 and nothing changed
    group = create(api, "web")
    before = etag_of(api, group["id"])
    answer = mutation(api, group["id"])
    assert answer.status == 403 and answer.json["type"] == DOCS + "forbidden"
    assert etag_of(api, group["id"]) == before and names(api, role="Viewer") == ["web", "default"]


@pytest.mark.parametrize("call", [
    lambda api, gid: api.get(f"/api/groups/{gid}", tenant="globex"),
    lambda api, gid: api.get(f"/api/groups/{gid}?includeDeleted=true", tenant="globex"),
    lambda api, gid: patch(api, gid, {"name": "mine"}, tenant="globex"),
    lambda api, gid: delete(api, gid, tenant="globex"),
    lambda api, gid: api.post(f"/api/groups/{gid}/members", {"agentIds": ["ab" * 16]},
                              tenant="globex"),
], ids=["get", "get-deleted", "patch", "delete", "members"])
def test_another_tenant_cannot_see_or_touch_a_group(api: Api, call) -> None:
    # Given tenant acme's group
    group = create(api, "web")
    before = etag_of(api, group["id"])
    # When tenant globex acts on it by id / Then it does not exist for globex
    assert call(api, group["id"]).status == 404
    # And acme's group is unchanged
    assert etag_of(api, group["id"]) == before


def test_tenants_have_separate_lists_and_names(api: Api) -> None:
    create(api, "web")
    assert names(api, tenant="globex") == ["default"]
    assert api.post("/api/groups", {"name": "web"}, tenant="globex").status == 201


def test_changes_are_audited(api: Api) -> None:
    group = create(api, "web", role="Operator")
    patch(api, group["id"], {"name": "www"})
    delete(api, group["id"])
    records = api.get("/api/audit/events?resourceType=group").json
    assert sorted(r["action"] for r in records) == ["groups.create", "groups.delete",
                                                     "groups.update"]
    assert {r["resourceId"] for r in records} == {group["id"]}


def test_each_change_emits_its_event(api: Api, clock) -> None:
    # Given a group created, renamed and deleted
    group = create(api, "web")
    clock.advance(seconds=1)
    patch(api, group["id"], {"name": "www"})
    clock.advance(seconds=1)
    delete(api, group["id"])
    # Then the tenant's events tell that story, in order
    from chalicelib.core.events import EventRecord

    envelopes = [e.envelope for e in EventRecord.query("acme")]
    mine = [(e["type"], e["data"]["name"]) for e in envelopes
            if e["subject"] == f"groups/{group['id']}"]
    assert mine == [("group.created", "web"), ("group.updated", "www"), ("group.deleted", "www")]
    assert ("group.created", "groups/default") in [(e["type"], e["subject"]) for e in envelopes]
