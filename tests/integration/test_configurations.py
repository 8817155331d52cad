"""Configurations through the HTTP surface: containers, draft versions, publish, compare."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Answer, Api

DOCS = "https://docs.ampora.io/errors/"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
YAML_V1 = "receivers:\n  otlp:\n    protocols:\n      grpc: {}\nexporters:\n  debug: {}\n"
YAML_V2 = ("receivers:\n  otlp:\n    protocols:\n      grpc: {}\n      http: {}\n"
           "exporters:\n  otlphttp:\n    endpoint: https://x\n")


@pytest.fixture
def group_uses(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The configurations the groups room says a group is on (none until a test adds one)."""
    from chalicelib.groups import service as groups

    used: set[str] = set()
    monkeypatch.setattr(groups, "uses_configuration",
                        lambda tenant, configuration_id: configuration_id in used, raising=False)
    return used


def create(api: Api, name: str = "collector", **body: Any) -> dict[str, Any]:
    caller = {key: body.pop(key) for key in ("tenant", "role") if key in body}
    spec = {"name": name, "contentType": "application/yaml", **body}
    answer = api.post("/api/configurations", spec, **caller)
    assert answer.status == 201, answer.json
    return dict(answer.json)


def base(configuration_id: str) -> str:
    return f"/api/configurations/{configuration_id}"


def save(api: Api, configuration_id: str, content: str, message: str | None = "m",
         **kwargs: Any) -> Answer:
    body: dict[str, Any] = {"content": content}
    if message is not None:
        body["message"] = message
    return api.post(f"{base(configuration_id)}/versions", body, **kwargs)


def saved(api: Api, configuration_id: str, content: str, **kwargs: Any) -> int:
    answer = save(api, configuration_id, content, **kwargs)
    assert answer.status == 201, answer.json
    return int(answer.json["version"])


def etag_of(api: Api, configuration_id: str, **kwargs: Any) -> str:
    tag = api.get(base(configuration_id), **kwargs).header("ETag")
    assert tag is not None
    return tag


def publish(api: Api, configuration_id: str, version: int | str, etag: str | None = None,
            **kwargs: Any) -> Answer:
    headers = {"If-Match": etag} if etag is not None else {}
    return api.post(f"{base(configuration_id)}/versions/{version}/publish",
                    headers=headers, **kwargs)


def versions(api: Api, configuration_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"{base(configuration_id)}/versions?limit=1000")
    assert answer.status == 200, answer.json
    return list(answer.json)


def names(api: Api, query: str = "", **kwargs: Any) -> list[str]:
    answer = api.get(f"/api/configurations{query}", **kwargs)
    assert answer.status == 200, answer.json
    return [c["name"] for c in answer.json]


def event_types(tenant: str = "acme") -> list[str]:
    from chalicelib.core.events import EventRecord

    return [r.envelope["type"] for r in EventRecord.query(tenant)
            if r.envelope["type"].startswith("configuration.")]


def events_of(kind: str, tenant: str = "acme") -> list[dict[str, Any]]:
    from chalicelib.core.events import EventRecord

    return [r.envelope for r in EventRecord.query(tenant) if r.envelope["type"] == kind]


def compare(api: Api, configuration_id: str, query: str, **kwargs: Any) -> Answer:
    return api.get(f"{base(configuration_id)}/versions/compare?{query}", **kwargs)


# --- containers -------------------------------------------------------------------------------

def test_created_configuration_can_be_read_with_its_etag(api: Api) -> None:
    # Given an Operator creates a configuration
    answer = api.post("/api/configurations", {
        "name": "Edge collector", "description": "the edge pipeline",
        "contentType": "application/yaml", "fileName": "collector.yaml",
        "labels": {"env": "prod"}}, role="Operator", sub="bob")
    # Then it is 201 with its location and body
    assert answer.status == 201, answer.json
    created = answer.json
    assert answer.header("Location") == f"/api/configurations/{created['id']}"
    assert created["name"] == "Edge collector" and created["description"] == "the edge pipeline"
    assert created["contentType"] == "application/yaml"
    assert created["fileName"] == "collector.yaml" and created["labels"] == {"env": "prod"}
    assert created["publishedVersion"] is None and created["publishedAt"] is None
    assert created["createdBy"] == {"type": "user", "id": "bob", "name": "bob"}
    assert created["createdAt"] == created["updatedAt"] == "2026-01-05T09:00:00Z"
    # When it is read back by a Viewer / Then it is the same, with a strong ETag
    read = api.get(base(created["id"]), role="Viewer")
    assert read.status == 200 and read.json == created
    assert read.header("ETag").startswith('"')
    # And its creation is an event
    assert event_types() == ["configuration.created"]


@pytest.mark.parametrize(("content_type", "file_name"), [
    ("application/yaml", "config.yaml"), ("application/json", "config.json"),
    ("text/plain", "config.txt"),
])
def test_file_name_defaults_by_content_type(api: Api, content_type: str, file_name: str) -> None:
    created = create(api, "c", contentType=content_type)
    assert created["fileName"] == file_name


def test_unknown_configuration_is_404(api: Api) -> None:
    for path in ("/api/configurations/nope", "/api/configurations/nope/versions",
                 "/api/configurations/nope/versions/1",
                 "/api/configurations/" + "x" * 300):
        answer = api.get(path)
        assert answer.status == 404 and answer.json["type"] == DOCS + "not-found", path


def test_duplicate_name_is_409_case_insensitively_and_creates_nothing(api: Api) -> None:
    # Given a configuration "collector"
    create(api, "collector")
    # When another one is created as "COLLECTOR"
    answer = api.post("/api/configurations", {"name": "COLLECTOR",
                                              "contentType": "text/plain"})
    # Then it is a conflict and nothing was created
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert names(api) == ["collector"]
    # But another tenant may use the name
    create(api, "collector", tenant="globex")


@pytest.mark.parametrize(("body", "pointer"), [
    ({"name": "c"}, "/contentType"),
    ({"name": "c", "contentType": "application/xml"}, "/contentType"),
    ({"name": "c", "contentType": "yaml"}, "/contentType"),
    ({"contentType": "text/plain"}, "/name"),
    ({"name": "", "contentType": "text/plain"}, "/name"),
    ({"name": " padded", "contentType": "text/plain"}, "/name"),
    ({"name": "c", "contentType": "text/plain", "fileName": "../etc/passwd"}, "/fileName"),
    ({"name": "c", "contentType": "text/plain", "fileName": "a/b.yaml"}, "/fileName"),
    ({"name": "c", "contentType": "text/plain", "fileName": ""}, "/fileName"),
    ({"name": "c", "contentType": "text/plain", "description": "d" * 1001}, "/description"),
    ({"name": "c", "contentType": "text/plain", "labels": {"env": "has space"}}, "/labels/env"),
    ({"name": "c", "contentType": "text/plain", "labels": {"bad key!": "x"}},
     "/labels/bad key!"),
    ({"name": "c", "contentType": "text/plain",
      "labels": {f"k{i}": "v" for i in range(65)}}, "/labels"),
    ({"name": "c", "contentType": "text/plain", "colour": "red"}, "/colour"),
])
def test_invalid_configuration_is_422_with_pointer_and_creates_nothing(api: Api, body: Any,
                                                                       pointer: str) -> None:
    answer = api.post("/api/configurations", body)
    assert answer.status == 422, answer.json
    assert answer.json["type"] == DOCS + "validation-failed"
    pointers = [e["pointer"] for e in answer.json["errors"]]
    assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), pointers
    assert names(api) == []


def test_list_filters_by_name_prefix_and_label_selector(api: Api) -> None:
    # Given four configurations with labels
    create(api, "edge-eu", labels={"env": "prod", "tier": "edge"})
    create(api, "Edge-us", labels={"env": "staging", "tier": "edge"})
    create(api, "gateway", labels={"env": "prod"})
    create(api, "scratch", labels={"app.kubernetes.io/part-of": "otel"})
    # When listing by name prefix / Then case-insensitively matching names only
    assert sorted(names(api, "?name=EDGE")) == ["Edge-us", "edge-eu"]
    # When listing by label selector / Then only those whose labels satisfy it
    assert sorted(names(api, "?labels=env=prod")) == ["edge-eu", "gateway"]
    assert sorted(names(api, "?labels=env=prod,tier")) == ["edge-eu"]
    assert sorted(names(api, "?labels=env!=prod")) == ["Edge-us", "scratch"]
    assert sorted(names(api, "?labels=env%20in%20(staging,dev)")) == ["Edge-us"]
    assert sorted(names(api, "?labels=!tier")) == ["gateway", "scratch"]
    assert names(api, "?labels=app.kubernetes.io/part-of=otel") == ["scratch"]
    # And both filters at once
    assert names(api, "?name=edge&labels=env=prod") == ["edge-eu"]
    answer = api.get("/api/configurations?labels=env=prod")
    assert answer.header("X-Total-Count") == "2"


@pytest.mark.parametrize("query", ["?labels=env%3D%3D%3D", "?labels=a,,b", "?name=",
                                   "?colour=red"])
def test_bad_list_filters_are_400(api: Api, query: str) -> None:
    answer = api.get(f"/api/configurations{query}")
    assert answer.status == 400 and answer.json["type"] == DOCS + "invalid-query"


def test_list_is_paged(api: Api) -> None:
    # Given five configurations
    for name in ("a", "b", "c", "d", "e"):
        create(api, name)
    # When listing two at a time, following the next links
    first = api.get("/api/configurations?limit=2")
    assert first.header("X-Total-Count") == "5" and len(first.json) == 2
    seen = [c["name"] for c in first.json]
    link = first.header("Link")
    while link:
        page = api.get(link[link.index("/api/"): link.index(">")])
        seen += [c["name"] for c in page.json]
        link = page.header("Link")
    # Then every configuration is seen once
    assert sorted(seen) == ["a", "b", "c", "d", "e"]


def test_patch_merges_metadata_with_if_match(api: Api, clock) -> None:
    # Given a configuration with a description and two labels
    created = create(api, "collector", description="old", labels={"env": "prod", "tier": "x"})
    before = etag_of(api, created["id"])
    clock.advance(minutes=5)
    # When a merge patch renames it, changes the file name, drops a label and the description
    answer = api.call("PATCH", base(created["id"]),
                      {"name": "gateway", "fileName": "gw.yaml", "description": None,
                       "labels": {"tier": None, "team": "sre"}},
                      role="Operator", headers={**MERGE_PATCH, "If-Match": before})
    # Then only those change, with a new ETag, and it is an event
    assert answer.status == 200, answer.json
    assert answer.json["name"] == "gateway" and answer.json["fileName"] == "gw.yaml"
    assert answer.json["description"] is None
    assert answer.json["labels"] == {"env": "prod", "team": "sre"}
    assert answer.json["updatedAt"] == "2026-01-05T09:05:00Z"
    assert answer.json["contentType"] == "application/yaml"
    assert answer.header("ETag") not in (None, before)
    assert api.get(base(created["id"])).json == answer.json
    assert event_types() == ["configuration.created", "configuration.updated"]
    # And the old name is free again, the new one taken
    assert api.post("/api/configurations", {"name": "collector",
                                            "contentType": "text/plain"}).status == 201
    assert api.post("/api/configurations", {"name": "GATEWAY",
                                            "contentType": "text/plain"}).status == 409


def test_empty_patch_changes_nothing(api: Api) -> None:
    created = create(api)
    before = etag_of(api, created["id"])
    answer = api.call("PATCH", base(created["id"]), {})
    assert answer.status == 200 and answer.header("ETag") == before
    assert event_types() == ["configuration.created"]


@pytest.mark.parametrize(("body", "pointer"), [
    ({"contentType": "application/json"}, "/contentType"),
    ({"name": None}, "/name"),
    ({"fileName": None}, "/fileName"),
    ({"labels": {"env": ["prod"]}}, "/labels/env"),
])
def test_invalid_patch_is_422_and_changes_nothing(api: Api, body: Any, pointer: str) -> None:
    created = create(api)
    before = etag_of(api, created["id"])
    answer = api.call("PATCH", base(created["id"]), body)
    assert answer.status == 422, answer.json
    assert pointer in [e["pointer"] for e in answer.json["errors"]]
    assert etag_of(api, created["id"]) == before


def test_rename_to_a_taken_name_is_409_and_changes_nothing(api: Api) -> None:
    create(api, "collector")
    other = create(api, "gateway")
    before = etag_of(api, other["id"])
    answer = api.call("PATCH", base(other["id"]), {"name": "Collector"})
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert etag_of(api, other["id"]) == before


@pytest.mark.parametrize("mutation", [
    lambda api, cid, h: api.call("PATCH", base(cid), {"name": "changed"}, headers=h),
    lambda api, cid, h: api.call("DELETE", base(cid), headers=h),
    lambda api, cid, h: publish(api, cid, 1, h.get("If-Match")),
], ids=["patch", "delete", "publish"])
def test_stale_if_match_is_412_with_the_current_etag_and_changes_nothing(
        api: Api, group_uses: set[str], mutation: Any) -> None:
    # Given a configuration with a draft, read, then changed by someone else
    created = create(api)
    saved(api, created["id"], YAML_V1)
    stale = etag_of(api, created["id"])
    api.call("PATCH", base(created["id"]), {"description": "someone else"})
    current = etag_of(api, created["id"])
    # When a mutation carries the stale ETag
    answer = mutation(api, created["id"], {"If-Match": stale})
    # Then it is 412 with the current ETag, and nothing changed (nothing published)
    assert answer.status == 412 and answer.json["type"] == DOCS + "precondition-failed"
    assert answer.header("ETag") == current
    read = api.get(base(created["id"]))
    assert read.status == 200 and read.header("ETag") == current
    assert read.json["name"] == "collector" and read.json["publishedVersion"] is None
    assert [v["status"] for v in versions(api, created["id"])] == ["draft"]
    assert "configuration.version.published" not in event_types()


@pytest.mark.parametrize("mutation", [
    lambda api, cid: api.call("PATCH", base(cid), {"name": "changed"}),
    lambda api, cid: api.call("DELETE", base(cid)),
    lambda api, cid: publish(api, cid, 1),
], ids=["patch", "delete", "publish"])
def test_tenant_requiring_if_match_refuses_without_it(api: Api, group_uses: set[str],
                                                      mutation: Any) -> None:
    # Given a tenant that requires If-Match, and a configuration with a draft
    created = create(api)
    saved(api, created["id"], YAML_V1)
    assert api.put("/api/tenant", {"requireIfMatch": True}).status == 200
    before = etag_of(api, created["id"])
    # When it is changed without If-Match / Then 428 and nothing changed
    answer = mutation(api, created["id"])
    assert answer.status == 428 and answer.json["type"] == DOCS + "precondition-required"
    assert etag_of(api, created["id"]) == before
    assert [v["status"] for v in versions(api, created["id"])] == ["draft"]
    # And with If-Match the publish goes through
    assert publish(api, created["id"], 1, before).status == 200


def test_creating_and_saving_need_no_if_match_even_when_required(api: Api) -> None:
    api.put("/api/tenant", {"requireIfMatch": True})
    created = create(api)
    assert save(api, created["id"], YAML_V1).status == 201


def test_delete_frees_the_name_and_hides_the_configuration(api: Api, group_uses: set[str],
                                                           clock) -> None:
    # Given a configuration with a published version
    created = create(api, "collector")
    saved(api, created["id"], YAML_V1)
    publish(api, created["id"], 1)
    # When it is deleted with its current ETag
    answer = api.call("DELETE", base(created["id"]), role="Operator",
                      headers={"If-Match": etag_of(api, created["id"])})
    # Then it is 204 and it is gone: read, list, versions, new versions, publish
    assert answer.status == 204 and answer.body == b""
    assert api.get(base(created["id"])).status == 404
    assert names(api) == []
    assert api.get(f"{base(created['id'])}/versions").status == 404
    assert api.get(f"{base(created['id'])}/versions/1").status == 404
    assert save(api, created["id"], YAML_V1).status == 404
    assert publish(api, created["id"], 1).status == 404
    assert api.call("DELETE", base(created["id"])).status == 404
    # And its name can be taken again, and the deletion is an event
    assert create(api, "collector")["id"] != created["id"]
    assert "configuration.deleted" in event_types()


def test_delete_is_409_while_a_group_is_on_one_of_its_versions(api: Api,
                                                              group_uses: set[str]) -> None:
    # Given a configuration a group is on
    created = create(api)
    group_uses.add(created["id"])
    before = etag_of(api, created["id"])
    # When it is deleted / Then it is a conflict and it stays
    answer = api.call("DELETE", base(created["id"]), headers={"If-Match": before})
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert "group" in answer.json["detail"]
    assert api.get(base(created["id"])).header("ETag") == before
    # And once no group is on it, it can be deleted
    group_uses.clear()
    assert api.call("DELETE", base(created["id"]), headers={"If-Match": before}).status == 204


def test_delete_asks_the_groups_room_about_a_real_group(api: Api) -> None:
    # Given the default group put on a published version
    from chalicelib.groups import service as groups

    created = create(api)
    saved(api, created["id"], YAML_V1)
    assert publish(api, created["id"], 1).status == 200
    groups.set_desired_configuration("acme", "default", created["id"], 1)
    # When the configuration is deleted / Then it is refused
    assert api.call("DELETE", base(created["id"])).status == 409
    assert api.get(base(created["id"])).status == 200


# --- versions ---------------------------------------------------------------------------------

def test_drafts_get_the_next_version_number_and_record_who_when_what(api: Api, clock) -> None:
    # Given a configuration
    created = create(api, fileName="collector.yaml")
    # When two drafts are saved
    first = save(api, created["id"], YAML_V1, "first", role="Operator", sub="carol")
    clock.advance(minutes=1)
    second = save(api, created["id"], YAML_V2, None)
    # Then they are versions 1 and 2, with location, author, time, size and hash
    assert first.status == 201, first.json
    assert first.header("Location") == f"{base(created['id'])}/versions/1"
    assert first.json == {
        "configurationId": created["id"], "version": 1, "status": "draft",
        "contentType": "application/yaml", "fileName": "collector.yaml", "message": "first",
        "size": len(YAML_V1.encode()), "sha256": _sha256(YAML_V1),
        "author": {"type": "user", "id": "carol", "name": "carol"},
        "createdAt": "2026-01-05T09:00:00Z", "publishedAt": None, "publishedBy": None,
    }
    assert second.json["version"] == 2 and second.json["message"] is None
    assert second.json["createdAt"] == "2026-01-05T09:01:00Z"
    # And each can be read with its content, and both are listed without it
    read = api.get(f"{base(created['id'])}/versions/1", role="Viewer")
    assert read.status == 200 and read.json == {**first.json, "content": YAML_V1}
    assert api.get(f"{base(created['id'])}/versions/2").json["content"] == YAML_V2
    listed = versions(api, created["id"])
    assert listed == [first.json, second.json]
    # And each save is an event, which carries no content
    saves = events_of("configuration.version.saved")
    assert [e["data"]["version"] for e in saves] == [1, 2]
    assert all("content" not in e["data"] for e in saves)
    assert saves[0]["subject"] == f"configurations/{created['id']}/versions/1"


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_saving_a_draft_does_not_change_the_configurations_etag(api: Api) -> None:
    # Given a configuration read with its ETag
    created = create(api)
    before = etag_of(api, created["id"])
    # When drafts are saved / Then the ETag a publish needs still holds
    saved(api, created["id"], YAML_V1)
    assert etag_of(api, created["id"]) == before
    assert publish(api, created["id"], 1, before).status == 200


def test_versions_are_listed_oldest_first_and_paged(api: Api) -> None:
    created = create(api, contentType="text/plain")
    for n in range(5):
        saved(api, created["id"], f"v{n}")
    first = api.get(f"{base(created['id'])}/versions?limit=2")
    assert first.header("X-Total-Count") == "5"
    seen = [v["version"] for v in first.json]
    link = first.header("Link")
    while link:
        page = api.get(link[link.index("/api/"): link.index(">")])
        seen += [v["version"] for v in page.json]
        link = page.header("Link")
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("content_type", "text", "line", "column"), [
    ("application/yaml", "receivers:\n  otlp: {}\n   bad: [1, 2\n", 3, 4),
    ("application/yaml", "receivers:\n  otlp:\n    endpoint: a: b\n", 3, 16),
    ("application/yaml", "a: 1\nb: *undefined\n", 2, 4),
    ("application/yaml", "a: 1\n---\nb: 2\n", 2, 1),
    ("application/json", '{"receivers": {\n  "otlp": {},\n}', 3, 1),
    ("application/json", "", 1, 1),
    ("application/json", '{"a": NaN}', 1, 7),
])
def test_unparseable_content_is_422_with_line_and_column_and_saves_nothing(
        api: Api, content_type: str, text: str, line: int, column: int) -> None:
    # Given a configuration of a content type
    created = create(api, contentType=content_type)
    # When a draft that does not parse as it is saved
    answer = save(api, created["id"], text)
    # Then it is 422 naming the line and column, and nothing was saved
    assert answer.status == 422, answer.json
    problem = answer.json
    assert problem["type"] == DOCS + "validation-failed"
    assert (problem["line"], problem["column"]) == (line, column), problem
    assert problem["contentType"] == content_type
    assert problem["errors"][0]["pointer"] == "/content"
    assert f"line {line}, column {column}" in problem["errors"][0]["detail"]
    assert versions(api, created["id"]) == []
    assert "configuration.version.saved" not in event_types()


def test_any_text_is_valid_plain_text(api: Api) -> None:
    created = create(api, contentType="text/plain")
    assert save(api, created["id"], "not: [yaml\n{not json").status == 201


def test_content_larger_than_the_limit_is_413_and_saves_nothing(api: Api) -> None:
    # Given a plain-text configuration and the default limit of 256 KiB
    created = create(api, contentType="text/plain")
    # When a draft one byte over it is saved (multi-byte characters count as their bytes)
    answer = save(api, created["id"], "é" * (128 * 1024) + "x")
    # Then it is 413 with the size and limit, and nothing was saved
    assert answer.status == 413, answer.json
    assert answer.json["type"] == DOCS + "payload-too-large"
    assert (answer.json["size"], answer.json["limit"]) == (262_145, 262_144)
    assert versions(api, created["id"]) == []
    # But content of exactly the limit is saved
    assert save(api, created["id"], "é" * (128 * 1024)).status == 201


@pytest.mark.parametrize(("body", "pointer"), [
    ({}, "/content"),
    ({"content": 7}, "/content"),
    ({"content": "a", "message": "m" * 1001}, "/message"),
    ({"content": "a", "version": 3}, "/version"),
])
def test_invalid_draft_body_is_422(api: Api, body: Any, pointer: str) -> None:
    created = create(api, contentType="text/plain")
    answer = api.post(f"{base(created['id'])}/versions", body)
    assert answer.status == 422 and pointer in [e["pointer"] for e in answer.json["errors"]]
    assert versions(api, created["id"]) == []


@pytest.mark.parametrize("version", ["abc", "0", "-1", "1.5", "9999999999"])
def test_a_bad_version_number_in_the_path_is_400(api: Api, version: str) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    for answer in (api.get(f"{base(created['id'])}/versions/{version}"),
                   publish(api, created["id"], version)):
        assert answer.status == 400, answer.json
        assert answer.json["type"] == DOCS + "bad-request"
        assert "version" in answer.json["detail"]


def test_an_unknown_version_is_404(api: Api) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    for answer in (api.get(f"{base(created['id'])}/versions/2"),
                   publish(api, created["id"], 2)):
        assert answer.status == 404 and answer.json["type"] == DOCS + "not-found"


def test_concurrent_saves_get_different_numbers(api: Api, monkeypatch) -> None:
    # Given a save that reads the last number, and another save that lands right after that
    from chalicelib.configurations import service

    created = create(api, contentType="text/plain")
    real = service._last_number
    raced: list[int] = []

    def last_number_then_race(tenant: str, configuration_id: str) -> int:
        number = real(tenant, configuration_id)
        if not raced:
            raced.append(0)
            raced[0] = saved(api, configuration_id, "the other one")
        return number

    monkeypatch.setattr(service, "_last_number", last_number_then_race)
    # When the first save writes / Then it does not overwrite the other: each has its number
    mine = save(api, created["id"], "mine")
    assert mine.status == 201 and (raced, mine.json["version"]) == ([1], 2)
    contents = [api.get(f"{base(created['id'])}/versions/{n}").json["content"] for n in (1, 2)]
    assert contents == ["the other one", "mine"]


# --- publish ----------------------------------------------------------------------------------

def test_publish_records_who_and_when_and_changes_the_etag(api: Api, clock) -> None:
    # Given a configuration with two drafts
    created = create(api)
    saved(api, created["id"], YAML_V1)
    saved(api, created["id"], YAML_V2)
    before = etag_of(api, created["id"])
    clock.advance(hours=1)
    # When an Operator publishes version 2 with the configuration's ETag
    answer = publish(api, created["id"], 2, before, role="Operator", sub="dave")
    # Then the version is published by them, now, and the configuration has a new ETag
    assert answer.status == 200, answer.json
    assert answer.json["status"] == "published" and answer.json["version"] == 2
    assert answer.json["publishedBy"] == {"type": "user", "id": "dave", "name": "dave"}
    assert answer.json["publishedAt"] == "2026-01-05T10:00:00Z"
    after = etag_of(api, created["id"])
    assert after != before and answer.header("ETag") == after
    read = api.get(base(created["id"])).json
    assert read["publishedVersion"] == 2 and read["publishedAt"] == "2026-01-05T10:00:00Z"
    assert [v["status"] for v in versions(api, created["id"])] == ["draft", "published"]
    # And it is one event
    published = events_of("configuration.version.published")
    assert [e["data"]["version"] for e in published] == [2]


def test_saves_and_publishes_are_audited_with_their_actor(api: Api) -> None:
    # Given a draft saved and a stale publish refused, then a publish by erin
    created = create(api)
    saved(api, created["id"], YAML_V1, sub="erin")
    publish(api, created["id"], 1, '"stale"', sub="erin")
    publish(api, created["id"], 1, sub="erin")
    # When the audit log is read / Then each call is there, with its outcome and actor
    answer = api.get(f"/api/audit/events?resourceId={created['id']}&actor=erin")
    found = sorted((e["action"], e["outcome"], e["status"]) for e in answer.json)
    assert found == [("configurations.publish", "refused", 412),
                     ("configurations.publish", "success", 200),
                     ("configurations.saveVersion", "success", 201)]


def test_publishing_a_published_version_is_idempotent(api: Api, clock) -> None:
    # Given version 1 published
    created = create(api)
    saved(api, created["id"], YAML_V1)
    first = publish(api, created["id"], 1, etag_of(api, created["id"]))
    assert first.status == 200
    etag = etag_of(api, created["id"])
    clock.advance(hours=1)
    # When it is published again, even with the ETag from before the first publish
    again = publish(api, created["id"], 1, '"long-gone"', sub="someone-else")
    # Then it is 200 as it was, the ETag is unchanged and there is no second event
    assert again.status == 200 and again.json == first.json
    assert etag_of(api, created["id"]) == etag
    assert len(events_of("configuration.version.published")) == 1


def test_publishing_an_older_version_makes_it_the_published_one(api: Api) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    saved(api, created["id"], YAML_V2)
    assert publish(api, created["id"], 2).status == 200
    assert publish(api, created["id"], 1).status == 200
    assert api.get(base(created["id"])).json["publishedVersion"] == 1
    assert [v["status"] for v in versions(api, created["id"])] == ["published", "published"]


def test_concurrent_publishes_of_different_drafts_leave_exactly_one_outcome(api: Api,
                                                                         monkeypatch) -> None:
    # Given two drafts, and two operators holding the same ETag
    from chalicelib.configurations import service

    created = create(api)
    saved(api, created["id"], YAML_V1)
    saved(api, created["id"], YAML_V2)
    etag = etag_of(api, created["id"])
    real = service._publish_checks
    other: list[Answer] = []

    racing: list[bool] = []

    def checks_then_race(container: Any, item: Any) -> Any:
        report = real(container, item)
        if not racing:  # the other publish lands between our read and our write
            racing.append(True)
            other.append(publish(api, created["id"], 2, etag))
        return report

    monkeypatch.setattr(service, "_publish_checks", checks_then_race)
    # When one publishes version 1 while the other publishes version 2
    mine = publish(api, created["id"], 1, etag)
    # Then exactly one wins: the other publish; ours is 412 and published nothing
    assert other[0].status == 200, other[0].json
    assert mine.status == 412 and mine.json["type"] == DOCS + "precondition-failed"
    assert mine.header("ETag") == etag_of(api, created["id"])
    assert api.get(base(created["id"])).json["publishedVersion"] == 2
    assert [v["status"] for v in versions(api, created["id"])] == ["draft", "published"]
    assert [e["data"]["version"] for e in events_of("configuration.version.published")] == [2]


def test_publish_reruns_the_size_check(api: Api, monkeypatch) -> None:
    # Given a draft saved under a larger limit than the deployment now has
    from chalicelib.core import settings as settings_module

    created = create(api, contentType="text/plain")
    saved(api, created["id"], "x" * 2048)
    smaller = settings_module.Settings.from_env({"AMPORA_MAX_CONFIGURATION_BYTES": "1024",
                                                 "AMPORA_CURSOR_SECRET": "x"})
    monkeypatch.setattr("chalicelib.configurations.service.settings", lambda: smaller)
    # When it is published / Then it is 413 and nothing is published
    answer = publish(api, created["id"], 1, etag_of(api, created["id"]))
    assert answer.status == 413 and answer.json["type"] == DOCS + "payload-too-large"
    assert api.get(base(created["id"])).json["publishedVersion"] is None
    assert versions(api, created["id"])[0]["status"] == "draft"


def test_published_content_cannot_change_nor_be_deleted(api: Api) -> None:
    # Given version 1 published
    created = create(api)
    saved(api, created["id"], YAML_V1)
    publish(api, created["id"], 1)
    path = f"{base(created['id'])}/versions/1"
    # When anyone tries to change or delete it / Then no such operation exists
    for method in ("PUT", "PATCH", "DELETE"):
        answer = api.call(method, path, {"content": YAML_V2})
        assert answer.status == 405, (method, answer.status)
    # And its content is as saved
    assert api.get(path).json["content"] == YAML_V1


def test_viewer_cannot_save_or_publish(api: Api) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    assert save(api, created["id"], YAML_V2, role="Viewer").status == 403
    assert publish(api, created["id"], 1, role="Viewer").status == 403
    assert [v["status"] for v in versions(api, created["id"])] == ["draft"]


# --- compare ----------------------------------------------------------------------------------

def test_compare_answers_the_unified_diff_and_the_changes_by_key_path(api: Api) -> None:
    # Given two YAML versions
    created = create(api, fileName="otel.yaml")
    saved(api, created["id"], YAML_V1)
    saved(api, created["id"], YAML_V2)
    # When they are compared
    answer = compare(api, created["id"], "from=1&to=2", role="Viewer")
    # Then the JSON holds both versions, the unified diff and the changes by key path
    assert answer.status == 200, answer.json
    found = answer.json
    assert (found["from"], found["to"]) == (1, 2)
    assert found["unifiedDiff"].startswith("--- a/otel.yaml\tversion 1\n+++ b/otel.yaml\t"
                                           "version 2\n")
    assert "+      http: {}\n" in found["unifiedDiff"]
    assert "-  debug: {}\n" in found["unifiedDiff"]
    assert found["changes"] == [
        {"path": "/receivers/otlp/protocols/http", "kind": "added", "old": None, "new": {}},
        {"path": "/exporters/debug", "kind": "removed", "old": {}, "new": None},
        {"path": "/exporters/otlphttp", "kind": "added", "old": None,
         "new": {"endpoint": "https://x"}},
    ]
    assert answer.header("Vary") == "Accept"


def test_compare_answers_text_x_diff_when_accepted(api: Api) -> None:
    created = create(api, fileName="otel.yaml")
    saved(api, created["id"], YAML_V1)
    saved(api, created["id"], YAML_V2)
    as_json = compare(api, created["id"], "from=1&to=2").json
    answer = compare(api, created["id"], "from=1&to=2", headers={"Accept": "text/x-diff"})
    assert answer.status == 200
    assert answer.header("Content-Type") == "text/x-diff"
    assert answer.body.decode() == as_json["unifiedDiff"]
    # And an Accept that prefers JSON gets JSON
    preferred = compare(api, created["id"], "from=1&to=2",
                        headers={"Accept": "text/x-diff;q=0.5, application/json"})
    assert preferred.header("Content-Type") == "application/json"


def test_compare_refuses_an_accept_it_cannot_answer(api: Api) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    answer = compare(api, created["id"], "from=1&to=1", headers={"Accept": "text/html"})
    assert answer.status == 406 and answer.json["type"] == DOCS + "not-acceptable"


def test_comparing_a_version_with_itself_is_empty(api: Api) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    answer = compare(api, created["id"], "from=1&to=1")
    assert answer.status == 200
    assert answer.json == {"from": 1, "to": 1, "unifiedDiff": "", "changes": []}
    as_text = compare(api, created["id"], "from=1&to=1", headers={"Accept": "text/x-diff"})
    assert as_text.status == 200 and as_text.body == b""


def test_compare_of_json_lists_changes_and_of_text_only_the_diff(api: Api) -> None:
    as_json = create(api, "j", contentType="application/json")
    saved(api, as_json["id"], '{"a": 1, "b": [1, 2]}')
    saved(api, as_json["id"], '{"a": true, "b": [1]}')
    assert compare(api, as_json["id"], "from=1&to=2").json["changes"] == [
        {"path": "/a", "kind": "changed", "old": 1, "new": True},
        {"path": "/b/1", "kind": "removed", "old": 2, "new": None},
    ]
    as_text = create(api, "t", contentType="text/plain")
    saved(api, as_text["id"], "one\n")
    saved(api, as_text["id"], "two\n")
    found = compare(api, as_text["id"], "from=2&to=1").json
    assert found["changes"] is None
    assert found["unifiedDiff"].endswith("-two\n+one\n")


@pytest.mark.parametrize("query", ["from=1&to=3", "from=3&to=1", "from=7&to=7"])
def test_compare_with_an_unknown_version_is_404(api: Api, query: str) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    answer = compare(api, created["id"], query)
    assert answer.status == 404 and answer.json["type"] == DOCS + "not-found"


@pytest.mark.parametrize("query", ["from=1", "to=1", "from=a&to=1", "from=0&to=1",
                                   "from=1&to=-2", "from=1&to=2&x=3"])
def test_compare_with_bad_version_numbers_is_400(api: Api, query: str) -> None:
    created = create(api)
    saved(api, created["id"], YAML_V1)
    answer = compare(api, created["id"], query)
    assert answer.status == 400 and answer.json["type"] == DOCS + "invalid-query"


def test_compare_is_routed_before_the_version_path(api: Api) -> None:
    # Given the app's routes / When the local gateway resolves the compare path
    import app
    from chalicelib.local.routing import RouteTable

    table = RouteTable({path: methods.keys() for path, methods in app.app.routes.items()})
    match = table.resolve("/api/configurations/abc/versions/compare")
    # Then it is the compare route, not a version called "compare"
    assert match is not None
    assert match.template == "/api/configurations/{id}/versions/compare"
    assert table.resolve("/api/configurations/abc/versions/3").template.endswith("{version}")


# --- delivery (for the OpAMP path) ------------------------------------------------------------

def test_delivery_gives_a_published_version_with_its_hash(api: Api) -> None:
    from chalicelib.configurations import delivery, service
    from chalicelib.core.problems import Conflict, NotFound

    created = create(api, fileName="otel.yaml")
    saved(api, created["id"], YAML_V1)
    saved(api, created["id"], YAML_V2)
    publish(api, created["id"], 1)
    # A published version: its file, content type, body and 32-byte hash
    found = delivery.delivery("acme", created["id"], 1)
    assert (found.file_name, found.content_type, found.body) == (
        "otel.yaml", "application/yaml", YAML_V1.encode())
    assert found.config_hash.hex() == _sha256(YAML_V1) and len(found.config_hash) == 32
    service.require_published("acme", created["id"], 1)
    # A draft is a conflict, an unknown version or configuration not found
    with pytest.raises(Conflict):
        delivery.delivery("acme", created["id"], 2)
    with pytest.raises(Conflict):
        service.require_published("acme", created["id"], 2)
    for call in (delivery.delivery, service.require_published):
        with pytest.raises(NotFound):
            call("acme", created["id"], 3)
        with pytest.raises(NotFound):
            call("globex", created["id"], 1)
        with pytest.raises(NotFound):
            call("acme", "nope", 1)


def test_delivery_remembers_published_versions(api: Api, monkeypatch) -> None:
    from chalicelib.configurations import delivery

    created = create(api)
    saved(api, created["id"], YAML_V1)
    publish(api, created["id"], 1)
    first = delivery.delivery("acme", created["id"], 1)
    # Once delivered, the version is not read again
    monkeypatch.setattr(delivery, "load_version", lambda *a: pytest.fail("read again"))
    assert delivery.delivery("acme", created["id"], 1) is first


def test_delivery_cache_is_bounded(api: Api, monkeypatch) -> None:
    from chalicelib.configurations import delivery

    monkeypatch.setattr(delivery, "DELIVERY_CACHE_SIZE", 2)
    created = create(api, contentType="text/plain")
    for n in (1, 2, 3):
        saved(api, created["id"], f"v{n}")
        publish(api, created["id"], n)
        delivery.delivery("acme", created["id"], n)
    assert list(delivery._deliveries) == [("acme", created["id"], 2), ("acme", created["id"], 3)]


# --- tenants ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda api, cid: api.get(base(cid), tenant="globex"),
    lambda api, cid: api.call("PATCH", base(cid), {"name": "mine"}, tenant="globex"),
    lambda api, cid: api.call("DELETE", base(cid), tenant="globex"),
    lambda api, cid: api.get(f"{base(cid)}/versions", tenant="globex"),
    lambda api, cid: api.get(f"{base(cid)}/versions/1", tenant="globex"),
    lambda api, cid: save(api, cid, YAML_V2, tenant="globex"),
    lambda api, cid: publish(api, cid, 1, tenant="globex"),
    lambda api, cid: compare(api, cid, "from=1&to=1", tenant="globex"),
], ids=["get", "patch", "delete", "versions", "version", "save", "publish", "compare"])
def test_another_tenant_cannot_see_or_touch_a_configuration(api: Api, group_uses: set[str],
                                                            call: Any) -> None:
    # Given tenant acme's configuration with a draft
    created = create(api)
    saved(api, created["id"], YAML_V1)
    before = etag_of(api, created["id"])
    # When tenant globex acts on it by id / Then it does not exist for globex
    answer = call(api, created["id"])
    assert answer.status == 404 and answer.json["type"] == DOCS + "not-found"
    assert names(api, tenant="globex") == []
    # And acme's configuration is unchanged
    assert etag_of(api, created["id"]) == before
    assert [v["status"] for v in versions(api, created["id"])] == ["draft"]
