"""Group membership through HTTP: agents enrolled over OpAMP are moved in; deletion waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import opamp
from tests.support.api import Api

DOCS = "https://docs.ampora.io/errors/"
UNKNOWN = "0" * 32


@pytest.fixture(autouse=True)
def fresh_defaults() -> Iterator[None]:
    """Each test has fresh tables, so the process must forget which default groups exist."""
    from chalicelib.groups import service

    service.forget_known()
    yield
    service.forget_known()


def enroll(api: Api, count: int, tenant: str = "acme") -> list[str]:
    """Enroll ``count`` agents over OpAMP with one bootstrap token; their ids."""
    import app

    issued = api.post("/api/tokens", {"name": "fleet", "maxUses": count}, tenant=tenant)
    assert issued.status == 201, issued.json
    ids = []
    for _ in range(count):
        agent = opamp.Agent()
        reply = opamp.post(app.app, agent.full_state(), token=issued.json["token"])
        assert reply.status == 200, reply.body[:300]
        ids.append(agent.id)
    return ids


def group_of(api: Api, agent_id: str, tenant: str = "acme") -> str:
    answer = api.get(f"/api/agents/{agent_id}", tenant=tenant)
    assert answer.status == 200, answer.json
    return str(answer.json["groupId"])


def create(api: Api, name: str) -> dict:
    answer = api.post("/api/groups", {"name": name})
    assert answer.status == 201, answer.json
    return answer.json


def test_members_are_moved_and_unknown_ids_reported(api: Api) -> None:
    # Given two agents enrolled into the default group, and a group "web"
    agents = enroll(api, 2)
    web = create(api, "web")
    etag = api.get(f"/api/groups/{web['id']}").header("ETag")
    # When an Operator adds both agents and an unknown id, honouring the group's ETag
    answer = api.post(f"/api/groups/{web['id']}/members",
                      {"agentIds": [*agents, UNKNOWN, agents[0]]}, role="Operator",
                      headers={"If-Match": etag})
    # Then the known agents moved, the unknown one is reported, and the group's ETag stays
    assert answer.status == 200, answer.json
    assert answer.json == {"groupId": web["id"], "moved": agents, "notFound": [UNKNOWN]}
    assert answer.header("ETag") == etag
    assert [group_of(api, a) for a in agents] == [web["id"], web["id"]]
    # And the change is an event
    from chalicelib.core.events import EventRecord

    added = [e.envelope["data"] for e in EventRecord.query("acme")
             if e.envelope["type"] == "group.members-added"]
    assert added == [{"id": web["id"], "agentIds": agents}]


def test_stale_if_match_moves_nobody(api: Api) -> None:
    # Given an agent and a group whose ETag went stale
    [agent] = enroll(api, 1)
    web = create(api, "web")
    stale = api.get(f"/api/groups/{web['id']}").header("ETag")
    api.call("PATCH", f"/api/groups/{web['id']}", {"description": "changed"})
    # When the agent is added with the stale ETag / Then 412 and the agent stays put
    answer = api.post(f"/api/groups/{web['id']}/members", {"agentIds": [agent]},
                      headers={"If-Match": stale})
    assert answer.status == 412
    assert group_of(api, agent) == "default"


def test_group_with_members_cannot_be_deleted_until_empty(api: Api) -> None:
    # Given a group with one agent
    [agent] = enroll(api, 1)
    web = create(api, "web")
    api.post(f"/api/groups/{web['id']}/members", {"agentIds": [agent]})
    # When it is deleted / Then it is a conflict and the group stays
    answer = api.call("DELETE", f"/api/groups/{web['id']}")
    assert answer.status == 409 and answer.json["type"] == DOCS + "conflict"
    assert "1 agent" in answer.json["detail"]
    assert api.get(f"/api/groups/{web['id']}").status == 200
    # When the agent moves back to the default group / Then the group can be deleted
    assert api.post("/api/groups/default/members", {"agentIds": [agent]}).json["moved"] == [agent]
    assert api.call("DELETE", f"/api/groups/{web['id']}").status == 204


def test_agents_of_another_tenant_are_not_found(api: Api) -> None:
    # Given an agent of tenant globex
    [theirs] = enroll(api, 1, tenant="globex")
    web = create(api, "web")
    # When acme adds it to its group / Then it is not found, and it stays where it was
    answer = api.post(f"/api/groups/{web['id']}/members", {"agentIds": [theirs]})
    assert answer.json == {"groupId": web["id"], "moved": [], "notFound": [theirs]}
    assert group_of(api, theirs, tenant="globex") == "default"
