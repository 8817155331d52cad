"""What a dry run sees of a group's agents: their roster kept current by every change an
agent makes or is made to, and where they stand now when a rule reads it."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.test_policies_evaluate import configuration, evaluate, group
from tests.support import opamp
from tests.support.api import Api


def token(api: Api, group_id: str, uses: int = 10) -> str:
    issued = api.post("/api/tokens", {"name": "fleet", "maxUses": uses, "groupId": group_id,
                                      "labels": {"env": "prod"}})
    assert issued.status == 201, issued.json
    return str(issued.json["token"])


def send(agent: opamp.Agent, secret: str) -> None:
    import app

    reply = opamp.post(app.app, agent.full_state(), token=secret)
    assert reply.status == 200, reply.body[:300]


def verdicts(api: Api, group_id: str, config: str, expression: str) -> dict[str, bool]:
    answer = evaluate(api, expression=expression, groupId=group_id, configurationId=config,
                      version=1, show="all")
    assert answer.status == 200, answer.json
    return {v["agent"]: v["allowed"] for v in answer.json["verdicts"]}


def test_a_moved_agent_is_evaluated_in_its_new_group_only(api: Api) -> None:
    web, db, config = group(api, "web"), group(api, "db"), configuration(api)
    secret = token(api, web)
    agents = [opamp.Agent() for _ in range(3)]
    for agent in agents:
        send(agent, secret)
    moved = api.post(f"/api/groups/{db}/members", {"agentIds": [agents[0].id]})
    assert moved.status == 200, moved.json
    assert set(verdicts(api, web, config, "true")) == {agents[1].id, agents[2].id}
    assert set(verdicts(api, db, config, "true")) == {agents[0].id}


def test_what_an_agent_reports_is_seen_by_the_next_dry_run(api: Api) -> None:
    web, config = group(api), configuration(api)
    agent = opamp.Agent()
    secret = token(api, web)
    send(agent, secret)
    rule = 'agent.attributes["os.type"] == "linux"'
    assert verdicts(api, web, config, rule) == {agent.id: True}
    agent.non_identifying = {**agent.non_identifying, "os.type": "windows"}
    send(agent, secret)
    assert verdicts(api, web, config, rule) == {agent.id: False}


def test_a_rule_reading_presence_sees_where_agents_stand_now(api: Api, clock: Any) -> None:
    web, config = group(api), configuration(api)
    agent = opamp.Agent()
    send(agent, token(api, web))
    assert verdicts(api, web, config, "agent.online") == {agent.id: True}
    assert verdicts(api, web, config, 'agent.status == "online"') == {agent.id: True}
    clock.advance(hours=1)
    assert verdicts(api, web, config, "agent.online") == {agent.id: False}
    assert verdicts(api, web, config, 'agent.status == "offline"') == {agent.id: True}


def test_an_agent_describing_itself_at_length_is_evaluated_whole(api: Api) -> None:
    # Given an agent whose attributes are far larger than a roster entry holds
    web, config = group(api), configuration(api)
    agent = opamp.Agent()
    agent.non_identifying = {f"k{index}": "v" * 100 for index in range(200)}
    send(agent, token(api, web))
    # Then rules still see every attribute
    assert verdicts(api, web, config, 'agent.attributes["k199"] == "' + "v" * 100 + '"') \
        == {agent.id: True}
    assert verdicts(api, web, config, 'agent.labels["env"] == "prod"') == {agent.id: True}


def one_shard_pair() -> tuple[opamp.Agent, opamp.Agent]:
    """Two agents whose roster entries share a shard."""
    from chalicelib.agents.roster import shard_of

    seen: dict[int, uuid.UUID] = {}
    for number in range(1, 100_000):
        uid = uuid.UUID(int=number)
        shard = shard_of(uid.bytes.hex())
        if shard in seen:
            return opamp.Agent(uid=seen[shard].bytes), opamp.Agent(uid=uid.bytes)
        seen[shard] = uid
    raise AssertionError("no two agents share a shard")


def test_writes_racing_on_one_roster_shard_are_all_kept(api: Api, monkeypatch: Any) -> None:
    # Given an agent, and a second one whose entry goes in the same shard
    from chalicelib.agents import service

    web, config = group(api), configuration(api)
    first, second = one_shard_pair()
    secret = token(api, web)
    send(first, secret)
    # When the first agent's report changes the shard while the second one enrolls
    read = service.find_shard
    raced: list[bool] = []

    def racing(key: str, shard: int) -> Any:
        found = read(key, shard)
        if not raced:
            raced.append(True)
            first.non_identifying = {**first.non_identifying, "os.type": "windows"}
            send(first, secret)
        return found

    monkeypatch.setattr(service, "find_shard", racing)
    send(second, secret)
    # Then both writes are in the roster
    assert raced
    assert verdicts(api, web, config, 'agent.attributes["os.type"] == "linux"') \
        == {first.id: False, second.id: True}
