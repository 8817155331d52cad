"""The agents API: list with filters and paging, read one, move between groups, tenancy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.opamp.proto import opamp_pb2
from tests.support.api import Api
from tests.support.opamp import Agent, post


@pytest.fixture(autouse=True)
def fresh_caches(aws: None) -> Iterator[None]:
    from chalicelib.agents import service as agents
    from chalicelib.groups import service as groups

    agents.forget_cached()
    groups.forget_known()
    yield
    agents.forget_cached()


def _app() -> Any:
    import app

    return app.app


def token(api: Api, tenant: str = "acme", **body: Any) -> str:
    answer = api.post("/api/tokens", {"name": "fleet", "maxUses": 50, **body}, tenant=tenant)
    assert answer.status == 201, answer.json
    return str(answer.json["token"])


def enroll(secret: str, *, healthy: bool = True, **attributes: Any) -> Agent:
    agent = Agent()
    agent.identifying.update({k.replace("_", "."): v for k, v in attributes.items()
                              if k.startswith("service")})
    agent.non_identifying.update({k.replace("_", "."): v for k, v in attributes.items()
                                  if k.startswith("host")})
    message = agent.message(describe=True, health=opamp_pb2.ComponentHealth(healthy=healthy))
    assert post(_app(), message.SerializeToString(), token=secret).status == 200
    return agent


def ids(api: Api, query: str = "", **kwargs: Any) -> set[str]:
    answer = api.get(f"/api/agents{query}", role="Viewer", **kwargs)
    assert answer.status == 200, answer.json
    return {a["id"] for a in answer.json}


@pytest.fixture
def fleet(api: Api) -> dict[str, Agent]:
    """Four agents: prod/edge/staging labels, two types, one unhealthy, one in group 'edge'."""
    edge = api.post("/api/groups", {"name": "edge"}).json["id"]
    prod = token(api, labels={"env": "prod", "tier": "core"})
    prod_edge = token(api, labels={"env": "prod", "tier": "edge"}, groupId=edge)
    staging = token(api, labels={"env": "staging"})
    return {
        "web": enroll(prod, host_name="web-1"),
        "db": enroll(prod, healthy=False, host_name="db-1", service_version="0.121.0"),
        "cdn": enroll(prod_edge, host_name="cdn-1", service_name="com.example.agent"),
        "test": enroll(staging, host_name="web-test"),
        "edge": edge,  # type: ignore[dict-item]
    }


@pytest.mark.parametrize(("query", "expected"), [
    ("", {"web", "db", "cdn", "test"}),
    ("?labels=env=prod", {"web", "db", "cdn"}),
    ("?labels=env=prod,tier!=edge", {"web", "db"}),
    ("?labels=tier!=edge", {"web", "db", "test"}),
    ("?labels=env%20in%20(prod,staging),!tier", {"test"}),
    ("?labels=tier", {"web", "db", "cdn"}),
    ("?name=web", {"web", "test"}),
    ("?name=com.example", {"cdn"}),
    ("?type=com.example.agent", {"cdn"}),
    ("?type=io.opentelemetry.collector&version=0.121.0", {"db"}),
    ("?health=unhealthy", {"db"}),
    ("?health=healthy&labels=env=prod", {"web", "cdn"}),
    ("?status=online", {"web", "db", "cdn", "test"}),
    ("?status=offline", set()),
    ("?status=revoked", set()),
])
def test_filters(api: Api, fleet: dict[str, Agent], query: str, expected: set[str]) -> None:
    assert ids(api, query) == {fleet[name].id for name in expected}


def test_group_filter(api: Api, fleet: dict[str, Agent]) -> None:
    assert ids(api, f"?group={fleet['edge']}") == {fleet["cdn"].id}
    assert ids(api, "?group=default") == {fleet[n].id for n in ("web", "db", "test")}


def test_offline_filter_follows_the_clock(api: Api, fleet: dict[str, Agent], clock) -> None:
    clock.advance(seconds=120)
    assert ids(api, "?status=offline") == {fleet[n].id for n in ("web", "db", "cdn", "test")}
    assert ids(api, "?status=online") == set()


@pytest.mark.parametrize("query", ["?labels=%3Dprod", "?labels=,", "?labels=a%20in%20()",
                                   "?status=sleeping", "?health=meh", "?colour=red"])
def test_bad_filters_are_400(api: Api, query: str) -> None:
    answer = api.get(f"/api/agents{query}")
    assert answer.status == 400
    assert answer.json["type"].endswith("/errors/invalid-query")


def test_list_is_paged_with_total_and_next_link(api: Api, fleet: dict[str, Agent]) -> None:
    first = api.get("/api/agents?limit=3")
    assert first.header("X-Total-Count") == "4" and len(first.json) == 3
    link = first.header("Link")
    assert link is not None and 'rel="next"' in link
    following = link[link.index("/api/agents"):link.index(">")]
    second = api.get(following)
    assert len(second.json) == 1
    assert {a["id"] for a in first.json + second.json} == {fleet[n].id for n in
                                                           ("web", "db", "cdn", "test")}


def test_read_one_agent(api: Api, fleet: dict[str, Agent]) -> None:
    shown = api.get(f"/api/agents/{fleet['db'].id}", role="Viewer").json
    assert shown["name"] == "db-1" and shown["hostName"] == "db-1"
    assert shown["health"]["healthy"] is False
    assert shown["lastSeenAt"] == "2026-01-05T09:00:00Z"
    assert shown["certificate"] is None and shown["effectiveConfigHash"] is None
    assert api.get("/api/agents/0000", role="Viewer").status == 404


def test_move_to_another_group(api: Api, fleet: dict[str, Agent]) -> None:
    from chalicelib.core.events import EventRecord

    web = fleet["web"].id
    # When an Operator moves an agent to the edge group
    moved = api.post(f"/api/agents/{web}/move", {"groupId": fleet["edge"]}, role="Operator")
    # Then it belongs there, and an event records the move
    assert moved.status == 200 and moved.json["groupId"] == fleet["edge"]
    assert ids(api, f"?group={fleet['edge']}") == {web, fleet["cdn"].id}
    changes = [r.envelope["data"]["changed"] for r in EventRecord.query("acme")
               if r.envelope["type"] == "agent.updated"]
    assert {"group": {"from": "default", "to": fleet["edge"]}} in changes
    from chalicelib.agents import service

    assert service.count_in_group("acme", fleet["edge"]) == 2
    assert service.count_in_group("acme", "default") == 2


def test_move_refusals(api: Api, fleet: dict[str, Agent]) -> None:
    web = fleet["web"].id
    assert api.post(f"/api/agents/{web}/move", {"groupId": "nope"}).status == 404
    assert api.post(f"/api/agents/{web}/move", {"groupId": fleet["edge"]},
                    role="Viewer").status == 403
    assert api.post(f"/api/agents/{web}/move", {}).status == 422
    assert api.post("/api/agents/ffff/move", {"groupId": "default"}).status == 404


def test_tenant_b_sees_and_moves_none_of_tenant_a(api: Api, fleet: dict[str, Agent]) -> None:
    assert ids(api, tenant="globex") == set()
    for agent in ("web", "cdn"):
        assert api.get(f"/api/agents/{fleet[agent].id}", tenant="globex").status == 404
        moved = api.post(f"/api/agents/{fleet[agent].id}/move", {"groupId": "default"},
                         tenant="globex")
        assert moved.status == 404
    assert api.get(f"/api/agents/{fleet['web'].id}").json["groupId"] == "default"
