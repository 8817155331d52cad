"""Wire compatibility: the real ``opentelemetry-opamp-client`` from PyPI enrolls and reports.

The client builds its messages with its own copy of the OpAMP protos; Ampora
decodes them with its own. Its transport here posts through the same API
Gateway event path as every other OpAMP test (no sockets, no sleeping).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry._opamp import messages
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2 as client_pb2
from opentelemetry._opamp.transport.base import HttpTransport

from tests.support.api import Api
from tests.support.opamp import post


class GatewayTransport(HttpTransport):
    """The client's transport interface, delivering to the app in-process."""

    def send(self, *, url: str, headers: Mapping[str, str], data: bytes, timeout_millis: int,
             tls_certificate: str | bool, tls_client_certificate: str | None = None,
             tls_client_key: str | None = None) -> client_pb2.ServerToAgent:
        import app

        assert url.endswith("/v1/opamp")
        token = headers["Authorization"].removeprefix("Bearer ")
        reply = post(app.app, data, token=token, content_type=headers["Content-Type"])
        assert reply.status == 200, reply.body
        return messages.decode_message(reply.body)


@pytest.fixture(autouse=True)
def fresh_caches(aws: None) -> Iterator[None]:
    from chalicelib.agents import service as agents

    agents.forget_cached()
    yield


def client(token: str) -> OpAMPClient:
    return OpAMPClient(
        endpoint="https://agents.example.test/v1/opamp",
        headers={"Authorization": f"Bearer {token}"},
        agent_identifying_attributes={"service.name": "checkout", "service.version": "1.4.2"},
        agent_non_identifying_attributes={"host.name": "pod-7", "deployment.environment": "prod"},
        transport=GatewayTransport(),
    )


def test_the_opamp_client_enrolls_and_shows_as_online(api: Api) -> None:
    # Given a bootstrap token and an agent built on the real OpAMP client library
    secret = api.post("/api/tokens", {"name": "python", "labels": {"team": "shop"}}).json["token"]
    agent = client(secret)
    # When it sends its full state, as OpAMPAgent.start() does first
    first: Any = agent.send(agent.build_full_state_message())
    # Then the client understands the answer: no error, and the server's heartbeat interval
    assert not first.HasField("error_response")
    assert first.connection_settings.opamp.heartbeat_interval_seconds == 30
    assert not first.flags & client_pb2.ServerToAgentFlags_ReportFullState
    # And the agent appears in the API with its attributes, labels and as online
    [shown] = api.get("/api/agents", role="Viewer").json
    assert shown["id"] == agent._instance_uid.hex()
    assert shown["type"] == "checkout" and shown["version"] == "1.4.2"
    assert shown["name"] == "pod-7" and shown["labels"] == {"team": "shop"}
    assert shown["description"]["nonIdentifyingAttributes"]["deployment.environment"] == "prod"
    assert shown["status"] == "online"
    assert {"ReportsStatus", "ReportsHeartbeat", "AcceptsRemoteConfig"} <= set(
        shown["capabilities"])


def test_the_opamp_client_heartbeats_reports_config_status_and_disconnects(api: Api) -> None:
    secret = api.post("/api/tokens", {"name": "python"}).json["token"]
    agent = client(secret)
    agent.send(agent.build_full_state_message())
    # Heartbeats are answered without asking for more
    beat: Any = agent.send(agent.build_heartbeat_message())
    assert not beat.HasField("error_response") and not beat.flags
    # A remote config status is stored
    status = agent.update_remote_config_status(
        b"\xab\xcd", client_pb2.RemoteConfigStatuses_APPLIED)
    assert status is not None
    agent.send(agent.build_remote_config_status_response_message(status))
    shown = api.get(f"/api/agents/{agent._instance_uid.hex()}").json
    assert shown["remoteConfigStatus"]["status"] == "APPLIED"
    assert shown["remoteConfigStatus"]["lastRemoteConfigHash"] == "abcd"
    # And its goodbye takes it offline
    agent.send(agent.build_agent_disconnect_message())
    assert api.get(f"/api/agents/{agent._instance_uid.hex()}").json["status"] == "offline"


def test_the_opamp_client_receives_its_groups_configuration_and_applies_it(api: Api) -> None:
    # Given a group on a published JSON configuration, and a token into that group
    from chalicelib.groups import service as groups

    group = api.post("/api/groups", {"name": "python-apps"}).json["id"]
    config = api.post("/api/configurations", {
        "name": "python-agent", "contentType": "application/json",
        "fileName": "agent.json"}).json["id"]
    body = '{"sampler": {"ratio": 0.25}, "exporters": ["otlp"]}'
    base = f"/api/configurations/{config}"
    assert api.post(f"{base}/versions", {"content": body, "message": "first"}).status == 201
    etag = str(api.get(base).header("ETag"))
    assert api.post(f"{base}/versions/1/publish", headers={"If-Match": etag}).status == 200
    groups.set_desired_configuration("acme", group, config, 1)
    secret = api.post("/api/tokens", {"name": "python", "groupId": group}).json["token"]
    agent = client(secret)
    agent.send(agent.build_full_state_message())
    # When it polls
    reply: Any = agent.send(agent.build_heartbeat_message())
    # Then the client decodes the configuration the group is on
    assert reply.HasField("remote_config")
    assert dict(agent.decode_remote_config(reply.remote_config)) == {
        "agent.json": {"sampler": {"ratio": 0.25}, "exporters": ["otlp"]}}
    # And when it applies it and says so, the API shows it on version 1
    agent.update_effective_config({"agent.json": {"sampler": {"ratio": 0.25}}},
                                  "application/json")
    status = agent.update_remote_config_status(reply.remote_config.config_hash,
                                               client_pb2.RemoteConfigStatuses_APPLIED)
    assert status is not None
    answer: Any = agent.send(agent.build_full_state_message())
    assert not answer.HasField("remote_config")
    shown = api.get(f"/api/agents/{agent._instance_uid.hex()}").json["configuration"]
    assert (shown["version"], shown["appliedVersion"], shown["status"], shown["drifted"]) == (
        1, 1, "applied", False)
