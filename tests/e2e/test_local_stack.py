"""End-to-end: the local stack over real HTTP, as a new user drives it from the README."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import LocalStack, ampora_command

pytestmark = pytest.mark.e2e
PROBLEM = "application/problem+json"


def _create_pat(stack: LocalStack, admin: str, name: str = "ci") -> dict:
    created = stack.call("POST", "/api/api-tokens", token=admin,
                         body={"name": name, "role": "Operator"})
    assert created.status == 201, created.body
    return created.json()


def _audit(stack: LocalStack, admin: str, **filters: str) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    reply = stack.call("GET", f"/api/audit/events?{query}", token=admin)
    assert reply.status == 200, reply.body
    return reply.json()


def test_readme_flow_create_use_revoke_and_audit_a_pat(stack: LocalStack) -> None:
    # Given an Admin token from `ampora dev-token`
    admin = stack.dev_token("Admin")
    assert stack.call("GET", "/api/tenant", token=admin).status == 200

    # When the admin creates a PAT, uses it, then revokes it
    pat = _create_pat(stack, admin)
    assert pat["token"].startswith("amp-pat.")
    assert stack.call("GET", "/api/tenant", token=pat["token"]).status == 200
    revoked = stack.call("POST", f"/api/api-tokens/{pat['id']}/revoke", token=admin)
    assert revoked.status == 200, revoked.body

    # Then the PAT no longer works, and the audit log tells the story with its actor
    after = stack.call("GET", "/api/tenant", token=pat["token"])
    assert after.status == 401
    assert after.content_type == PROBLEM
    actions = {e["action"]: e for e in _audit(stack, admin, resourceId=pat["id"])}
    assert {"apiTokens.create", "apiTokens.revoke"} <= set(actions)
    for action in ("apiTokens.create", "apiTokens.revoke"):
        assert actions[action]["actor"]["id"] == "dev-user"
        assert actions[action]["outcome"] == "success"


def test_the_gateway_event_reaches_the_app_with_request_id_and_source_ip(
        stack: LocalStack) -> None:
    # Given an admin
    admin = stack.dev_token("Admin")

    # When they make a state-changing call
    created = stack.call("POST", "/api/api-tokens", token=admin,
                         body={"name": "event-shape", "role": "Viewer"})
    assert created.status == 201

    # Then its audit record carries API Gateway's request id and the caller's address
    record = _audit(stack, admin, resourceId=created.json()["id"])[0]
    assert record["requestId"] == created.headers["x-amzn-RequestId"]
    assert record["sourceIp"] == "127.0.0.1"
    assert record["path"] == "/api/api-tokens"


def test_unknown_route_is_a_404_problem(stack: LocalStack) -> None:
    reply = stack.call("GET", "/api/no-such-thing")
    assert reply.status == 404
    assert reply.content_type == PROBLEM
    assert reply.json()["type"].endswith("/errors/not-found")


def test_wrong_method_is_a_405_problem_with_allow(stack: LocalStack) -> None:
    reply = stack.call("DELETE", "/api/tenant", token=stack.dev_token("Admin"))
    assert reply.status == 405
    assert reply.content_type == PROBLEM
    assert reply.json()["type"].endswith("/errors/method-not-allowed")
    assert {m.strip() for m in reply.headers["Allow"].split(",")} == {"GET", "PUT"}


def test_malformed_json_is_a_400_problem(stack: LocalStack) -> None:
    reply = stack.call("POST", "/api/api-tokens", token=stack.dev_token("Admin"),
                       raw=b'{"name": "ci",', headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert reply.content_type == PROBLEM
    assert reply.json()["type"].endswith("/errors/malformed-json")


def test_a_token_signed_by_another_key_is_401(stack: LocalStack) -> None:
    # Given a token with the local issuer's kid and claims, but signed by a stranger's key
    from cryptography.hazmat.primitives.asymmetric import ec

    from chalicelib.local import oidc

    real = oidc.load_signing_key(stack.home)
    forged_key = oidc.SigningKey(private_key=ec.generate_private_key(ec.SECP256R1()),
                                 kid=real.kid)
    claims = oidc.dev_claims(authority=f"{stack.url}/local-oidc", audience="ampora",
                             role="Admin")

    # When it is presented, then it is refused as an invalid token
    reply = stack.call("GET", "/api/tenant", token=oidc.sign(forged_key, claims))
    assert reply.status == 401
    assert reply.content_type == PROBLEM
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]


def test_an_expired_dev_token_is_401(stack: LocalStack) -> None:
    # Given a token from the local issuer's own key that expired an hour ago
    from chalicelib.local import oidc

    claims = oidc.dev_claims(authority=f"{stack.url}/local-oidc", audience="ampora",
                             role="Admin", ttl=60, now=time.time() - 3600)
    token = oidc.sign(oidc.load_signing_key(stack.home), claims)

    # When it is presented, then it is refused
    reply = stack.call("GET", "/api/tenant", token=token)
    assert reply.status == 401
    assert reply.json()["type"].endswith("/errors/invalid-token")


def test_the_local_issuer_serves_discovery_and_jwks(stack: LocalStack) -> None:
    discovery = stack.call("GET", "/local-oidc/.well-known/openid-configuration").json()
    assert discovery["issuer"] == f"{stack.url}/local-oidc"
    keys = stack.call("GET", "/local-oidc/jwks.json").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kid"] and "d" not in keys[0]


def test_swagger_ui_is_served_locally(stack: LocalStack) -> None:
    page = stack.call("GET", "/swagger")
    assert page.status == 200
    assert b"/api/openapi.json" in page.body
    assert stack.call("GET", "/swagger/assets/swagger-ui-bundle.js").status == 200


def test_dev_token_rejects_bad_input_with_exit_2(stack: LocalStack) -> None:
    for args in (("--role", "Root"), ("--role", "Admin", "--ttl", "0")):
        done = stack.cli("dev-token", *args)
        assert done.returncode == 2
        assert "ampora dev-token" in done.stderr
        assert done.stdout == ""


def test_state_and_sign_in_survive_a_restart(fresh_home: Path) -> None:
    # Given a stack where an admin created a PAT
    stack = LocalStack(home=fresh_home).start()
    try:
        admin = stack.dev_token("Admin")
        pat = _create_pat(stack, admin, name="survivor")["token"]
    finally:
        assert stack.stop() == 0, stack.output()

    # When the stack is started again on the same state dir
    stack.start()
    try:
        # Then the PAT and the earlier dev token still work
        assert stack.call("GET", "/api/tenant", token=pat).status == 200
        assert stack.call("GET", "/api/tenant", token=admin).status == 200
    finally:
        assert stack.stop() == 0, stack.output()


def test_a_second_stack_on_the_same_state_dir_is_refused(stack: LocalStack) -> None:
    # Given a running stack, when another one starts on its state dir and another port
    env = {**stack.env(), "AMPORA_PORT": str(stack.port + 1)}
    done = subprocess.run([*ampora_command(), "dev"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)

    # Then it exits with a clear message, and the first one keeps serving
    assert done.returncode == 1
    assert "already" in done.stderr or "another" in done.stderr
    assert stack.call("GET", "/local-oidc/jwks.json").status == 200
