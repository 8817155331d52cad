"""End-to-end: agents enroll over OpAMP against the local stack, over real HTTP.

The real ``opentelemetry-opamp-client`` (its own protos, its own requests-based
transport) is given only the endpoint and a bootstrap token; ``ampora simulate``
runs a small fleet as a subprocess; and a second tenant's admin sees none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2 as client_pb2

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e

IDENTIFYING = {"service.name": "checkout", "service.version": "1.4.2"}
NON_IDENTIFYING = {"host.name": "pod-7", "deployment.environment": "prod"}
SIMULATED = 5


@dataclass
class Fleet:
    """What tenant A built: a group, a bootstrap token, and the agents it enrolled."""

    admin: str
    group_id: str
    token_id: str
    client_agent: str
    simulated: list[dict[str, Any]]


def _created(stack: LocalStack, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = stack.call("POST", path, token=token, body=body)
    assert reply.status == 201, (path, reply.status, reply.body)
    return dict(reply.json())


def _agents(stack: LocalStack, token: str, query: str = "") -> list[dict[str, Any]]:
    reply = stack.call("GET", f"/api/agents?limit=1000{query}", token=token)
    assert reply.status == 200, reply.body
    assert int(reply.headers["X-Total-Count"]) == len(reply.json())
    return list(reply.json())


@pytest.fixture(scope="module")
def fleet(stack: LocalStack) -> Fleet:
    """Tenant A (the dev tenant): a group, a token into it, one real client, five simulated."""
    admin = stack.dev_token("Admin")
    group = _created(stack, "/api/groups", admin, {"name": "e2e-shop"})
    created = _created(stack, "/api/tokens", admin, {
        "name": "e2e-fleet", "maxUses": 1 + SIMULATED, "groupId": group["id"],
        "labels": {"team": "shop"}})
    secret = created["token"]
    assert secret.startswith("amp-bt")

    # The real OpAMP client, with nothing but the endpoint and the Authorization header.
    client = OpAMPClient(
        endpoint=f"{stack.url}/v1/opamp",
        headers={"Authorization": f"Bearer {secret}"},
        agent_identifying_attributes=IDENTIFYING,
        agent_non_identifying_attributes=NON_IDENTIFYING,
        timeout_millis=15_000,  # the first request creates the tenant's state
    )
    first: Any = client.send(client.build_full_state_message())
    assert not first.HasField("error_response"), first.error_response
    assert first.connection_settings.opamp.heartbeat_interval_seconds > 0
    assert not first.flags & client_pb2.ServerToAgentFlags_ReportFullState
    beat: Any = client.send(client.build_heartbeat_message())
    assert not beat.HasField("error_response") and not beat.flags

    # The simulator, as a subprocess, on the same token.
    done = stack.cli("simulate", "--agents", str(SIMULATED), "--token", secret,
                     "--url", f"{stack.url}/v1/opamp", "--rounds", "2", "--interval", "0.1")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert f"{SIMULATED} agents" in done.stdout and "refused: none" in done.stdout, done.stdout

    client_agent = client._instance_uid.hex()
    simulated = [a for a in _agents(stack, admin, f"&group={group['id']}")
                 if a["id"] != client_agent]
    return Fleet(admin=admin, group_id=group["id"], token_id=created["id"],
                 client_agent=client_agent, simulated=simulated)


def test_the_real_opamp_client_enrolls_and_is_listed_online(
        stack: LocalStack, fleet: Fleet) -> None:
    viewer = stack.dev_token("Viewer")
    [shown] = [a for a in _agents(stack, viewer) if a["id"] == fleet.client_agent]
    assert shown["status"] == "online" and shown["online"] is True
    assert shown["groupId"] == fleet.group_id
    assert shown["labels"] == {"team": "shop"}
    assert (shown["type"], shown["version"]) == ("checkout", "1.4.2")
    assert shown["name"] == "pod-7"
    assert shown["enrolledByToken"] == fleet.token_id
    assert shown["description"]["identifyingAttributes"] == IDENTIFYING
    assert shown["description"]["nonIdentifyingAttributes"] == NON_IDENTIFYING
    assert {"ReportsStatus", "ReportsHeartbeat"} <= set(shown["capabilities"])
    # And by id, with the same story
    one = stack.call("GET", f"/api/agents/{fleet.client_agent}", token=viewer)
    assert one.status == 200, one.body
    assert one.json()["status"] == "online"
    assert one.json()["lastSeenAt"] is not None


def test_the_simulator_enrolls_five_agents_in_the_tokens_group(
        stack: LocalStack, fleet: Fleet) -> None:
    assert len(fleet.simulated) == SIMULATED
    assert {a["type"] for a in fleet.simulated} == {"ampora-simulated-agent"}
    assert {a["status"] for a in fleet.simulated} == {"online"}
    assert all(a["labels"] == {"team": "shop"} for a in fleet.simulated)
    assert all(a["enrolledByToken"] == fleet.token_id for a in fleet.simulated)
    # The token counts every enrollment and has none left
    tokens = stack.call("GET", "/api/tokens", token=fleet.admin)
    assert tokens.status == 200, tokens.body
    [token] = [t for t in tokens.json() if t["id"] == fleet.token_id]
    assert token["uses"] == token["maxUses"] == 1 + SIMULATED


def test_another_tenant_sees_and_touches_none_of_it(stack: LocalStack, fleet: Fleet) -> None:
    # Given an admin of tenant B on the same stack
    other = stack.dev_token("Admin", "--tenant", "e2e-beta", "--sub", "bob")
    mine = [fleet.client_agent, *(a["id"] for a in fleet.simulated)]
    # Then B's lists hold none of A's agents, groups or tokens
    assert not {a["id"] for a in _agents(stack, other)} & set(mine)
    groups = stack.call("GET", "/api/groups?includeDeleted=true", token=other)
    assert groups.status == 200, groups.body
    assert fleet.group_id not in {g["id"] for g in groups.json()}
    assert "e2e-shop" not in {g["name"] for g in groups.json()}
    tokens = stack.call("GET", "/api/tokens", token=other)
    assert tokens.status == 200, tokens.body
    assert fleet.token_id not in {t["id"] for t in tokens.json()}
    # And by id, A's things do not exist for B
    for agent in mine:
        assert stack.call("GET", f"/api/agents/{agent}", token=other).status == 404
    assert stack.call("GET", f"/api/groups/{fleet.group_id}", token=other).status == 404
    own_group = _created(stack, "/api/groups", other, {"name": "beta-group"})
    moved = stack.call("POST", f"/api/agents/{fleet.client_agent}/move", token=other,
                       body={"groupId": own_group["id"]})
    assert moved.status == 404, moved.body
    revoked = stack.call("POST", f"/api/tokens/{fleet.token_id}/revoke", token=other)
    assert revoked.status == 404, revoked.body
    # And A's agent is untouched
    still = stack.call("GET", f"/api/agents/{fleet.client_agent}", token=fleet.admin)
    assert still.json()["groupId"] == fleet.group_id
