"""Pure kernel logic, table by table: roles, endpoints, paging, ETags, settings, problems."""

from __future__ import annotations

import pytest

from chalicelib.core import access, concurrency, paging, problems
from chalicelib.core.access import Principal, Role
from chalicelib.core.settings import Settings, SettingsError


@pytest.mark.parametrize(("entry", "expected"), [
    ("GET /api/agents", ("GET", "/api/agents")),
    ("POST /api/rollouts/{id}/start", ("POST", "/api/rollouts/{}/start")),
    ("DELETE /api/groups/{groupId}/", ("DELETE", "/api/groups/{}")),
])
def test_parse_endpoint(entry: str, expected: tuple[str, str]) -> None:
    assert access.parse_endpoint(entry) == expected


@pytest.mark.parametrize("entry", ["get /api/agents", "FETCH /api/x", "GET /other", "GET",
                                   "GET /api/agents extra", "/api/agents"])
def test_parse_endpoint_refuses(entry: str) -> None:
    with pytest.raises(ValueError):
        access.parse_endpoint(entry)


def principal(role: Role, allowed: tuple[str, ...] | None = None) -> Principal:
    return Principal(tenant="t", subject="s", role=role, allowed_endpoints=allowed)


@pytest.mark.parametrize(("role", "needed", "allowed", "slug"), [
    (Role.ADMIN, Role.ADMIN, None, None),
    (Role.OPERATOR, Role.VIEWER, None, None),
    (Role.VIEWER, Role.OPERATOR, None, "forbidden"),
    (Role.OPERATOR, Role.ADMIN, None, "forbidden"),
    (Role.ADMIN, Role.VIEWER, ("POST /api/rollouts/{rid}/start",), None),
    (Role.ADMIN, Role.VIEWER, ("GET /api/agents",), "endpoint-not-allowed"),
    (Role.VIEWER, Role.ADMIN, ("POST /api/rollouts/{id}/start",), "forbidden"),
])
def test_authorize(role: Role, needed: Role, allowed, slug: str | None) -> None:
    call = {"method": "POST", "path_template": "/api/rollouts/{id}/start", "role": needed}
    if slug is None:
        access.authorize(principal(role, allowed), **call)
    else:
        with pytest.raises(problems.AmporaError) as caught:
            access.authorize(principal(role, allowed), **call)
        assert caught.value.slug == slug


@pytest.mark.parametrize(("query", "expected"), [
    ({}, paging.PageRequest(50, 0, None)),
    ({"limit": "1"}, paging.PageRequest(1, 0, None)),
    ({"limit": "1000", "offset": "20"}, paging.PageRequest(1000, 20, None)),
    ({"cursor": "abc"}, paging.PageRequest(50, 0, "abc")),
])
def test_parse_page(query: dict[str, str], expected: paging.PageRequest) -> None:
    assert paging.parse_page(query) == expected


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1001"}, {"limit": "x"},
                                   {"offset": "-1"}, {"offset": "1", "cursor": "c"},
                                   {"cursor": ""}])
def test_parse_page_refuses(query: dict[str, str]) -> None:
    with pytest.raises(problems.AmporaError) as caught:
        paging.parse_page(query)
    assert caught.value.status == 400


def test_cursor_round_trip_and_tamper_evidence() -> None:
    cursor = paging.encode_cursor({"k": 1}, scope="a", secret=b"s")
    assert paging.decode_cursor(cursor, scope="a", secret=b"s") == {"k": 1}
    for scope, secret in (("b", b"s"), ("a", b"other")):
        with pytest.raises(problems.AmporaError):
            paging.decode_cursor(cursor, scope=scope, secret=secret)
    _, tag = cursor.split(".")
    forged = paging.encode_cursor({"k": 2}, scope="a", secret=b"guess").split(".")[0]
    with pytest.raises(problems.AmporaError):
        paging.decode_cursor(f"{forged}.{tag}", scope="a", secret=b"s")


def test_page_of_list_walks_everything_once() -> None:
    values, seen = list(range(10)), []
    page = paging.PageRequest(limit=4, scope="x", secret=b"s")
    while True:
        got = paging.page_of_list(values, page, key=lambda v: v)
        assert got.total == 10
        seen += got.items
        if got.next_cursor is None:
            break
        page = paging.PageRequest(limit=4, cursor=got.next_cursor, scope="x", secret=b"s")
    assert seen == values


@pytest.mark.parametrize(("header", "accepted", "refused"), [
    ('"abc"', ["abc"], ["abd"]),
    ('"a", "b"', ["a", "b"], ["c"]),
    ('W/"abc"', [], ["abc"]),
    ("*", ["anything"], []),
])
def test_if_match(header: str, accepted: list[str], refused: list[str]) -> None:
    parsed = concurrency.parse_if_match(header)
    assert parsed is not None
    assert all(parsed.accepts(r) for r in accepted)
    assert not any(parsed.accepts(r) for r in refused)


@pytest.mark.parametrize("header", ["abc", '"unterminated', "W/abc"])
def test_if_match_refuses_garbage(header: str) -> None:
    with pytest.raises(problems.BadRequest):
        concurrency.parse_if_match(header)


def test_etag_is_strong_and_quoted() -> None:
    assert concurrency.etag("abc") == '"abc"'
    assert concurrency.parse_if_match(None) is None


def test_settings_defaults_and_overrides() -> None:
    config = Settings.from_env({"AMPORA_OIDC_LEEWAY_SECONDS": "45", "AMPORA_LOCAL": "true",
                                "AMPORA_DOCS_URL": "https://docs.example/"})
    assert (config.oidc_leeway_seconds, config.local, config.docs_url) == (
        45, True, "https://docs.example")
    assert Settings.from_env({}).audit_retention_days == 400


@pytest.mark.parametrize("env", [{"AMPORA_OIDC_LEEWAY_SECONDS": "61"},
                                 {"AMPORA_AUDIT_RETENTION_DAYS": "forever"}])
def test_settings_refuse_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_problem_body_follows_rfc_9457() -> None:
    error = problems.ValidationFailed([{"pointer": "/name", "detail": "required"}])
    body = problems.to_problem(error, instance="/api/x", docs_url="https://d.example")
    assert body == {"type": "https://d.example/errors/validation-failed",
                    "title": "Validation failed", "status": 422,
                    "detail": "1 field(s) failed validation", "instance": "/api/x",
                    "errors": [{"pointer": "/name", "detail": "required"}]}


def test_unknown_problem_slug_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        problems.AmporaError("x", slug="no-such-slug")
