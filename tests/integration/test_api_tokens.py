"""Personal access tokens through the HTTP surface: create once, use, restrict, revoke."""

from __future__ import annotations

import re

import pytest

from tests.support.api import Api

TOKEN_SHAPE = re.compile(r"^amp-pat\.[A-Z2-7]{32}\.[A-Z2-7]{7}$")


def create(api: Api, **body: object) -> dict:
    answer = api.post("/api/api-tokens", {"name": "ci", "role": "Operator", **body})
    assert answer.status == 201, answer.json
    return answer.json


def test_created_token_is_shown_once_and_works(api: Api) -> None:
    # Given an Admin creates a PAT
    created = create(api)
    # Then the response carries the token in the documented format
    assert TOKEN_SHAPE.match(created["token"])
    assert created["role"] == "Operator" and created["status"] == "active"
    # And reading it again never shows the token
    again = api.get(f"/api/api-tokens/{created['id']}")
    assert again.status == 200 and "token" not in again.json
    assert all("token" not in t for t in api.get("/api/api-tokens").json)
    # When the PAT calls the API it acts within the creator's tenant
    assert api.get("/api/tenant", token=created["token"]).json["id"] == "acme"


def test_revoked_token_is_refused(api: Api) -> None:
    created = create(api)
    revoked = api.post(f"/api/api-tokens/{created['id']}/revoke")
    assert revoked.status == 200 and revoked.json["status"] == "revoked"
    answer = api.get("/api/tenant", token=created["token"])
    assert answer.status == 401
    assert answer.header("WWW-Authenticate") == 'Bearer error="invalid_token"'
    assert answer.header("Content-Type") == "application/problem+json"


def test_expired_token_is_refused(api: Api, clock) -> None:
    created = create(api, expiresAt="2026-01-05T10:00:00Z")
    assert api.get("/api/tenant", token=created["token"]).status == 200
    clock.advance(hours=2)
    assert api.get("/api/tenant", token=created["token"]).status == 401


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # CRC no longer matches
    lambda t: t.replace("amp-pat.", "amp-pet."),
    lambda t: t.lower(),
    lambda t: t + "A",
])
def test_malformed_tokens_are_refused_before_lookup(api: Api, mangle) -> None:
    token = create(api)["token"]
    answer = api.get("/api/tenant", token=mangle(token))
    assert answer.status == 401


def test_well_formed_but_unknown_token_is_refused(api: Api) -> None:
    from chalicelib.tokens.pat_format import mint

    assert api.get("/api/tenant", token=mint(b"\x01" * 20)).status == 401


def test_allowed_endpoints_restrict_the_token(api: Api) -> None:
    token = create(api, role="Admin", allowedEndpoints=["GET /api/tenant"])["token"]
    assert api.get("/api/tenant", token=token).status == 200
    denied = api.get("/api/api-tokens", token=token)
    assert denied.status == 403
    assert denied.json["type"].endswith("/errors/endpoint-not-allowed")


def test_token_role_cannot_exceed_creator(api: Api) -> None:
    admin_pat = create(api, role="Admin", allowedEndpoints=["POST /api/api-tokens"])["token"]
    # an Admin PAT may mint an Admin token; an Operator user cannot reach the endpoint at all
    assert api.post("/api/api-tokens", {"name": "x", "role": "Admin"}, token=admin_pat).status == 201
    assert api.post("/api/api-tokens", {"name": "x", "role": "Viewer"}, role="Operator").status == 403


def test_token_role_is_enforced(api: Api) -> None:
    viewer = create(api, role="Viewer")["token"]
    assert api.get("/api/tenant", token=viewer).status == 200
    assert api.put("/api/tenant", {}, token=viewer).status == 403


@pytest.mark.parametrize(("body", "pointer"), [
    ({"role": "Operator"}, "/name"),
    ({"name": "", "role": "Operator"}, "/name"),
    ({"name": "x", "role": "Root"}, "/role"),
    ({"name": "x", "role": "Viewer", "colour": "red"}, "/colour"),
    ({"name": "x", "role": "Viewer", "allowedEndpoints": ["FETCH /api/x"]}, "/allowedEndpoints/0"),
    ({"name": "x", "role": "Viewer", "allowedEndpoints": ["GET /elsewhere"]}, "/allowedEndpoints/0"),
    ({"name": "x", "role": "Viewer", "expiresAt": "2020-01-01T00:00:00Z"}, "/expiresAt"),
    ({"name": "x", "role": "Viewer", "expiresAt": "2030-01-01T00:00:00"}, "/expiresAt"),
])
def test_invalid_creation_is_422_and_creates_nothing(api: Api, body, pointer) -> None:
    answer = api.post("/api/api-tokens", body)
    assert answer.status == 422, answer.json
    assert answer.json["type"] == "https://docs.ampora.io/errors/validation-failed"
    assert pointer in [e["pointer"] for e in answer.json["errors"]]
    assert api.get("/api/api-tokens").header("X-Total-Count") == "0"


def test_last_used_is_written_at_most_once_a_minute(api: Api, clock) -> None:
    created = create(api)
    api.get("/api/tenant", token=created["token"])
    first = api.get(f"/api/api-tokens/{created['id']}").json["lastUsedAt"]
    clock.advance(seconds=30)
    api.get("/api/tenant", token=created["token"])
    assert api.get(f"/api/api-tokens/{created['id']}").json["lastUsedAt"] == first
    clock.advance(seconds=31)
    api.get("/api/tenant", token=created["token"])
    assert api.get(f"/api/api-tokens/{created['id']}").json["lastUsedAt"] != first


def test_tokens_are_tenant_isolated(api: Api) -> None:
    created = create(api)
    assert api.get(f"/api/api-tokens/{created['id']}", tenant="other").status == 404
    assert api.post(f"/api/api-tokens/{created['id']}/revoke", tenant="other").status == 404
    assert api.get("/api/api-tokens", tenant="other").json == []
    assert api.get("/api/tenant", token=created["token"]).status == 200


def test_only_admins_manage_tokens(api: Api) -> None:
    for role in ("Viewer", "Operator"):
        assert api.get("/api/api-tokens", role=role).status == 403
        assert api.post("/api/api-tokens", {"name": "x", "role": "Viewer"}, role=role).status == 403


def test_problem_instance_is_the_path_requested(api: Api) -> None:
    answer = api.get("/api/api-tokens/nope")
    assert answer.status == 404
    assert answer.json["instance"] == "/api/api-tokens/nope"


def test_service_refuses_a_token_stronger_than_its_creator(aws) -> None:
    from chalicelib.core.access import Principal, Role
    from chalicelib.core.problems import Forbidden
    from chalicelib.tokens import service
    from chalicelib.tokens.schemas import ApiTokenCreate

    operator = Principal(tenant="acme", subject="olivia", role=Role.OPERATOR)
    with pytest.raises(Forbidden):
        service.create(operator, ApiTokenCreate(name="x", role="Admin"))
    assert service.create(operator, ApiTokenCreate(name="x", role="Operator")).role == "Operator"
