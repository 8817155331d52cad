"""Delivery of a group's desired configuration version to its agents over OpAMP.

Agents are the project's simulated agent (``ampora simulate``'s), which applies
what it receives (or fails to, if told to) and reports back, posting through the
same API Gateway events the local stack builds.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from chalicelib.cli.sim_agent import SimulatedAgent
from chalicelib.core.problems import Conflict, NotFound
from chalicelib.opamp.proto import opamp_pb2
from tests.support.api import Api
from tests.support.opamp import post

YAML_V1 = "receivers:\n  otlp: {}\nexporters:\n  debug: {}\n"
YAML_V2 = "receivers:\n  otlp: {}\nexporters:\n  otlphttp:\n    endpoint: https://x\n"


def _app() -> Any:
    import app

    return app.app


class Fleet:
    """A tenant's configuration, a group on it, and agents enrolled into that group."""

    def __init__(self, api: Api, tenant: str = "acme") -> None:
        self.api, self.tenant = api, tenant
        self.group = api.post("/api/groups", {"name": f"edge-{uuid.uuid4().hex[:6]}"},
                              tenant=tenant).json["id"]
        created = api.post("/api/configurations", {
            "name": f"collector-{uuid.uuid4().hex[:6]}", "contentType": "application/yaml",
            "fileName": "collector.yaml"}, tenant=tenant)
        assert created.status == 201, created.json
        self.configuration = created.json["id"]
        self.token = api.post("/api/tokens", {"name": "edge", "groupId": self.group,
                                              "maxUses": 10}, tenant=tenant).json["token"]

    def publish(self, content: str) -> int:
        base = f"/api/configurations/{self.configuration}"
        saved = self.api.post(f"{base}/versions", {"content": content, "message": "m"},
                              tenant=self.tenant)
        assert saved.status == 201, saved.json
        version = int(saved.json["version"])
        etag = self.api.get(base, tenant=self.tenant).header("ETag")
        published = self.api.post(f"{base}/versions/{version}/publish",
                                  headers={"If-Match": str(etag)}, tenant=self.tenant)
        assert published.status == 200, published.json
        return version

    def desire(self, version: int) -> None:
        from chalicelib.groups import service as groups

        groups.set_desired_configuration(self.tenant, self.group, self.configuration, version)

    def agent(self, *, fail: bool = False) -> SimulatedAgent:
        return SimulatedAgent(instance_uid=uuid.uuid4().bytes, name="edge-1",
                              fail_applies=fail)

    def exchange(self, agent: SimulatedAgent) -> opamp_pb2.ServerToAgent:
        reply = post(_app(), agent.next_message(), token=self.token)
        assert reply.status == 200, reply.body
        agent.receive(reply.body)
        return reply.message

    def view(self, agent: SimulatedAgent) -> dict[str, Any]:
        found = self.api.get(f"/api/agents/{agent.instance_uid.hex()}", tenant=self.tenant)
        assert found.status == 200, found.json
        return dict(found.json)


def _events(tenant: str, kind: str) -> list[dict[str, Any]]:
    from chalicelib.core.events import EventRecord

    return [record.envelope["data"] for record in EventRecord.query(tenant)
            if record.envelope["type"] == kind]


def test_an_agent_receives_its_groups_version_and_reports_it_applied(api: Api) -> None:
    # Given a group on published version 1 of a YAML configuration
    fleet = Fleet(api)
    fleet.desire(fleet.publish(YAML_V1))
    agent = fleet.agent()
    # When an agent of that group talks for the first time
    reply = fleet.exchange(agent)
    # Then it receives the file, its content type and the version's hash
    files = reply.remote_config.config.config_map
    assert list(files) == ["collector.yaml"]
    assert files["collector.yaml"].body == YAML_V1.encode()
    assert files["collector.yaml"].content_type == "application/yaml"
    assert reply.remote_config.config_hash == hashlib.sha256(YAML_V1.encode()).digest()
    assert fleet.view(agent)["configuration"]["status"] == "pending"
    # And once it reports APPLIED, the API shows it on that version
    assert not fleet.exchange(agent).HasField("remote_config")
    shown = fleet.view(agent)["configuration"]
    assert shown == {"configurationId": fleet.configuration, "version": 1,
                     "appliedVersion": 1, "status": "applied", "error": None,
                     "drifted": False}
    assert [e["version"] for e in _events("acme", "agent.config.applied")] == [1]
    # And its steady heartbeats are not sent the configuration again
    for _ in range(3):
        assert not fleet.exchange(agent).HasField("remote_config")
    listed = api.get(f"/api/agents?configStatus=applied&group={fleet.group}").json
    assert [a["id"] for a in listed] == [agent.instance_uid.hex()]


def test_a_new_version_reaches_agents_already_on_the_previous_one(api: Api) -> None:
    fleet = Fleet(api)
    fleet.desire(fleet.publish(YAML_V1))
    agent = fleet.agent()
    fleet.exchange(agent)
    fleet.exchange(agent)
    # When the group moves to version 2
    fleet.desire(fleet.publish(YAML_V2))
    reply = fleet.exchange(agent)
    # Then the next exchange carries version 2, and the agent ends up on it
    assert reply.remote_config.config.config_map["collector.yaml"].body == YAML_V2.encode()
    assert fleet.view(agent)["configuration"]["appliedVersion"] == 1
    fleet.exchange(agent)
    assert fleet.view(agent)["configuration"]["appliedVersion"] == 2


def test_an_agent_that_fails_to_apply_shows_failed_with_its_message(api: Api) -> None:
    fleet = Fleet(api)
    fleet.desire(fleet.publish(YAML_V1))
    good, bad = fleet.agent(), fleet.agent(fail=True)
    for agent in (good, bad, good, bad):
        fleet.exchange(agent)
    shown = fleet.view(bad)["configuration"]
    assert (shown["status"], shown["error"], shown["appliedVersion"]) == (
        "failed", "simulated failure to apply", None)
    # And the failure is not retried in a loop, and can be found by filter
    assert not fleet.exchange(bad).HasField("remote_config")
    failed = api.get("/api/agents?configStatus=failed").json
    assert [a["id"] for a in failed] == [bad.instance_uid.hex()]
    assert [e["error"] for e in _events("acme", "agent.config.failed")] == [
        "simulated failure to apply"]


def test_an_effective_config_changed_after_the_apply_is_drift(api: Api) -> None:
    fleet = Fleet(api)
    fleet.desire(fleet.publish(YAML_V1))
    agent = fleet.agent()
    fleet.exchange(agent)
    fleet.exchange(agent)
    assert api.get("/api/agents?drifted=true").json == []
    # When someone edits the agent's config by hand and it reports its effective config
    agent.effective = {"collector.yaml": (b"receivers: {}\n", "application/yaml")}
    agent.status_due = True
    fleet.exchange(agent)
    # Then the agent shows as drifted (still applied), and the filter finds it
    shown = fleet.view(agent)["configuration"]
    assert (shown["status"], shown["drifted"]) == ("applied", True)
    assert [a["id"] for a in api.get("/api/agents?drifted=true").json] == [
        agent.instance_uid.hex()]
    assert len(_events("acme", "agent.config.drifted")) == 1


def test_an_agent_in_a_group_without_a_configuration_is_sent_none(api: Api) -> None:
    fleet = Fleet(api)
    agent = fleet.agent()
    assert not fleet.exchange(agent).HasField("remote_config")
    assert fleet.view(agent)["configuration"] is None


@pytest.mark.parametrize(("version", "error"), [(2, Conflict), (9, NotFound)])
def test_a_group_goes_only_on_a_published_version(api: Api, version: int,
                                                  error: type[Exception]) -> None:
    # Given version 1 published and version 2 a draft
    fleet = Fleet(api)
    fleet.publish(YAML_V1)
    api.post(f"/api/configurations/{fleet.configuration}/versions",
             {"content": YAML_V2, "message": "draft"})
    # When the group is put on a draft or an unknown version, it is refused
    with pytest.raises(error):
        fleet.desire(version)
    assert api.get(f"/api/groups/{fleet.group}").json["desiredConfiguration"] is None


def test_a_group_cannot_go_on_another_tenants_configuration(api: Api) -> None:
    theirs = Fleet(api, tenant="globex")
    theirs.publish(YAML_V1)
    ours = Fleet(api)
    from chalicelib.groups import service as groups

    with pytest.raises(NotFound):
        groups.set_desired_configuration("acme", ours.group, theirs.configuration, 1)


def test_a_configuration_in_use_by_a_group_cannot_be_deleted(api: Api) -> None:
    fleet = Fleet(api)
    fleet.desire(fleet.publish(YAML_V1))
    path = f"/api/configurations/{fleet.configuration}"
    etag = str(api.get(path).header("ETag"))
    refused = api.call("DELETE", path, headers={"If-Match": etag})
    assert refused.status == 409
    assert api.get(path).status == 200
    group = api.get(f"/api/groups/{fleet.group}").json
    assert group["desiredConfiguration"] == {"configurationId": fleet.configuration,
                                             "version": 1}
