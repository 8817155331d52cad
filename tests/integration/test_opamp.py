"""The OpAMP endpoint over HTTP: enrollment with bootstrap tokens, status reports, heartbeats,
full-state requests, disconnects, certificates, and every bad input an agent can send."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.opamp.proto import opamp_pb2
from tests.support.api import Api
from tests.support.opamp import Agent, Reply, post

FULL_STATE = opamp_pb2.ServerToAgentFlags_ReportFullState
BAD_REQUEST = opamp_pb2.ServerErrorResponseType_BadRequest


@pytest.fixture(autouse=True)
def fresh_caches(aws: None) -> Iterator[None]:
    """Each test starts with no cached tenant interval, CA or default group."""
    from chalicelib.agents import service as agents
    from chalicelib.certificates import service as certificates
    from chalicelib.groups import service as groups

    agents.forget_cached()
    certificates.forget_cached()
    groups.forget_known()
    yield
    agents.forget_cached()


def app() -> Any:
    import app as module

    return module.app


def issue(api: Api, tenant: str = "acme", **body: Any) -> str:
    """A new bootstrap token of ``tenant`` (shown once)."""
    answer = api.post("/api/tokens", {"name": "fleet", **body}, role="Operator", tenant=tenant)
    assert answer.status == 201, answer.json
    return str(answer.json["token"])


def send(body: bytes, **kwargs: Any) -> Reply:
    return post(app(), body, **kwargs)


def events(tenant: str = "acme") -> list[dict[str, Any]]:
    from chalicelib.core.events import EventRecord

    return [record.envelope for record in EventRecord.query(tenant)]


def of_type(kind: str, tenant: str = "acme") -> list[dict[str, Any]]:
    return [e for e in events(tenant) if e["type"] == kind]


def enrolled(api: Api, **token_body: Any) -> tuple[Agent, str]:
    """An agent that sent its full state with a fresh token."""
    token = issue(api, **token_body)
    agent = Agent()
    assert send(agent.full_state(), token=token).status == 200
    return agent, token


# --- enrollment -----------------------------------------------------------------------------

def test_first_message_with_a_bootstrap_token_enrolls_the_agent(api: Api) -> None:
    # Given a bootstrap token with labels
    token = issue(api, labels={"env": "prod"})
    agent = Agent()
    # When the agent's first message carries its description and the token
    reply = send(agent.full_state(), token=token)
    # Then Ampora answers a ServerToAgent for that agent, with the heartbeat interval
    assert reply.status == 200
    message = reply.message
    assert message.instance_uid == agent.uid
    assert not message.HasField("error_response")
    assert message.capabilities & opamp_pb2.ServerCapabilities_AcceptsStatus
    assert message.connection_settings.opamp.heartbeat_interval_seconds == 30
    assert not message.flags & FULL_STATE
    # And the agent is listed in the default group, online, with its attributes and labels
    listed = api.get("/api/agents", role="Viewer").json
    assert [a["id"] for a in listed] == [agent.id]
    shown = listed[0]
    assert shown["groupId"] == "default" and shown["labels"] == {"env": "prod"}
    assert shown["status"] == "online" and shown["online"] is True
    assert shown["type"] == "io.opentelemetry.collector" and shown["version"] == "0.120.0"
    assert shown["description"]["nonIdentifyingAttributes"]["host.name"] == "web-1"
    assert shown["health"]["healthy"] is True
    assert "ReportsHealth" in shown["capabilities"]
    # And one agent.enrolled event says where it landed
    [event] = of_type("agent.enrolled")
    assert event["subject"] == f"agents/{agent.id}"
    assert event["data"]["groupId"] == "default" and event["data"]["labels"] == {"env": "prod"}


def test_agent_lands_in_the_tokens_group(api: Api) -> None:
    group = api.post("/api/groups", {"name": "edge"}).json["id"]
    agent, _ = enrolled(api, groupId=group)
    assert api.get(f"/api/agents/{agent.id}").json["groupId"] == group


def test_unknown_agent_without_description_is_asked_for_its_full_state(api: Api) -> None:
    # Given an agent whose first message is a bare heartbeat
    token = issue(api)
    agent = Agent()
    first = send(agent.heartbeat(), token=token).message
    # Then the server asks for the full state
    assert first.flags & FULL_STATE
    # When the agent sends it, the server has what it needs and stops asking
    second = send(agent.full_state(), token=token).message
    assert not second.flags & FULL_STATE
    assert api.get(f"/api/agents/{agent.id}").json["type"] == "io.opentelemetry.collector"


def test_token_keeps_admitting_the_agents_it_enrolled_without_using_them_up(api: Api) -> None:
    # Given a single-use token that enrolled an agent
    agent, token = enrolled(api, maxUses=1)
    # Then that agent keeps talking with it
    assert send(agent.heartbeat(), token=token).status == 200
    # But a second agent cannot enrol with it
    refused = send(Agent().full_state(), token=token)
    assert refused.status == 401
    assert refused.problem["type"].endswith("/errors/invalid-token")


# --- status reports ------------------------------------------------------------------------

def test_status_changes_are_stored_and_emit_agent_updated(api: Api) -> None:
    agent, token = enrolled(api)
    # When the agent reports worse health, an effective config and a remote config status
    config = opamp_pb2.EffectiveConfig()
    config.config_map.config_map[""].body = b"receivers: {otlp: {}}"
    config.config_map.config_map[""].content_type = "text/yaml"
    status = opamp_pb2.RemoteConfigStatus(last_remote_config_hash=b"\x01\x02",
                                          status=opamp_pb2.RemoteConfigStatuses_FAILED,
                                          error_message="bad yaml")
    health = opamp_pb2.ComponentHealth(healthy=False, status="degraded", last_error="boom")
    health.component_health_map["receiver:otlp"].healthy = False
    message = agent.message(health=health, effective_config=config, remote_config_status=status)
    assert send(message.SerializeToString(), token=token).status == 200
    # Then the agent shows them (the config only as its hash)
    shown = api.get(f"/api/agents/{agent.id}").json
    assert shown["health"]["healthy"] is False and shown["health"]["lastError"] == "boom"
    assert shown["health"]["components"]["receiver:otlp"]["healthy"] is False
    assert len(shown["effectiveConfigHash"]) == 64
    assert "receivers" not in str(shown)
    assert shown["remoteConfigStatus"] == {"lastRemoteConfigHash": "0102", "status": "FAILED",
                                           "errorMessage": "bad yaml"}
    # And one agent.updated event names exactly what changed
    [event] = of_type("agent.updated")
    assert set(event["data"]["changed"]) == {"health", "effectiveConfig", "remoteConfigStatus"}
    assert event["data"]["changed"]["health"]["healthy"] is False


def test_plain_heartbeats_emit_no_events(api: Api, clock) -> None:
    agent, token = enrolled(api)
    before = len(events())
    for _ in range(5):
        clock.advance(seconds=30)
        assert send(agent.heartbeat(), token=token).status == 200
    assert len(events()) == before


def test_disconnect_marks_the_agent_offline_until_it_talks_again(api: Api) -> None:
    agent, token = enrolled(api)
    # When the agent says goodbye
    goodbye = agent.message(agent_disconnect=opamp_pb2.AgentDisconnect()).SerializeToString()
    assert send(goodbye, token=token).status == 200
    # Then it is offline at once, and an agent.offline event records it
    assert api.get(f"/api/agents/{agent.id}").json["status"] == "offline"
    assert len(of_type("agent.offline")) == 1
    # When it comes back it is online again
    send(agent.heartbeat(), token=token)
    assert api.get(f"/api/agents/{agent.id}").json["status"] == "online"


def test_an_agent_not_heard_from_for_three_intervals_is_offline(api: Api, clock) -> None:
    agent, _ = enrolled(api)
    clock.advance(seconds=89)
    assert api.get(f"/api/agents/{agent.id}").json["online"] is True
    clock.advance(seconds=1)
    assert api.get(f"/api/agents/{agent.id}").json["status"] == "offline"


def test_heartbeats_keep_the_agent_online_indefinitely(api: Api, clock) -> None:
    agent, token = enrolled(api)
    for _ in range(12):
        clock.advance(seconds=30)
        send(agent.heartbeat(), token=token)
        assert api.get(f"/api/agents/{agent.id}").json["online"] is True


def test_sequence_regression_asks_for_the_full_state(api: Api) -> None:
    agent, token = enrolled(api)
    unhealthy = agent.message(health=opamp_pb2.ComponentHealth(healthy=False))
    send(unhealthy.SerializeToString(), token=token)
    # When the agent restarts with the same uid and counts from zero again
    agent.seq = 0
    reply = send(agent.heartbeat(), token=token).message
    # Then the server knows it may have missed state and asks for all of it
    assert reply.flags & FULL_STATE
    assert reply.connection_settings.opamp.heartbeat_interval_seconds == 30


def test_a_jump_in_sequence_numbers_asks_for_the_full_state(api: Api) -> None:
    agent, token = enrolled(api)
    agent.seq += 50  # fifty messages the server never saw, within one interval
    assert send(agent.heartbeat(), token=token).message.flags & FULL_STATE


def test_heartbeat_interval_comes_from_the_tenant_settings(api: Api) -> None:
    from chalicelib.agents import service as agents

    agent, token = enrolled(api)
    # When an Admin sets a 10-second interval
    assert api.put("/api/tenant", {"heartbeatIntervalSeconds": 10}).status == 200
    agents.forget_cached()  # the container keeps its copy for a minute
    # Then the next answer offers it, once
    offered = send(agent.heartbeat(), token=token).message
    assert offered.connection_settings.opamp.heartbeat_interval_seconds == 10
    assert not send(agent.heartbeat(), token=token).message.HasField("connection_settings")


def test_agent_asking_for_an_instance_uid_gets_a_new_one(api: Api) -> None:
    token = issue(api)
    agent = Agent()
    ask = agent.message(flags=opamp_pb2.AgentToServerFlags_RequestInstanceUid)
    reply = send(ask.SerializeToString(), token=token).message
    assert len(reply.agent_identification.new_instance_uid) == 16
    assert reply.agent_identification.new_instance_uid != agent.uid


# --- bad input ------------------------------------------------------------------------------

def test_garbage_without_an_instance_uid_is_a_400_problem(api: Api) -> None:
    answer = send(b"\xff\xfe this is not protobuf", token=issue(api))
    assert answer.status == 400
    assert answer.problem["type"].endswith("/errors/bad-request")


def test_garbage_after_an_instance_uid_is_an_opamp_bad_request(api: Api) -> None:
    uid = os.urandom(16)
    answer = send(b"\x0a\x10" + uid + b"\xff\xff\xff\xff", token=issue(api))
    assert answer.status == 200
    assert answer.message.instance_uid == uid
    assert answer.message.error_response.type == BAD_REQUEST


def test_empty_body_is_a_400_problem(api: Api) -> None:
    assert send(b"", token=issue(api)).status == 400


def test_wrong_length_instance_uid_is_an_opamp_bad_request(api: Api) -> None:
    body = opamp_pb2.AgentToServer(instance_uid=b"short", capabilities=1).SerializeToString()
    answer = send(body, token=issue(api))
    assert answer.message.error_response.type == BAD_REQUEST
    assert api.get("/api/agents").json == []


def test_oversized_message_is_refused_with_an_opamp_bad_request(api: Api) -> None:
    agent = Agent()
    config = opamp_pb2.EffectiveConfig()
    config.config_map.config_map[""].body = b"x" * (1_048_576 + 1)
    body = agent.message(describe=True, effective_config=config).SerializeToString()
    answer = send(body, token=issue(api))
    assert answer.message.error_response.type == BAD_REQUEST
    assert "exceeds" in answer.message.error_response.error_message
    assert api.get("/api/agents").json == []


def test_oversized_garbage_is_a_413_problem(api: Api) -> None:
    answer = send(b"\xff" * (1_048_576 + 1), token=issue(api))
    assert answer.status == 413
    assert answer.problem["type"].endswith("/errors/payload-too-large")


def test_wrong_content_type_is_a_415_problem(api: Api) -> None:
    answer = send(Agent().full_state(), token=issue(api), content_type="application/json")
    assert answer.status == 415


@pytest.mark.parametrize(("token", "slug"), [
    (None, "unauthorized"),
    ("", "unauthorized"),
    ("amp-bt.not-a-token", "invalid-token"),
])
def test_missing_or_malformed_credentials_are_401(api: Api, token: str | None, slug: str) -> None:
    answer = send(Agent().full_state(), token=token)
    assert answer.status == 401
    assert answer.problem["type"].endswith(f"/errors/{slug}")
    assert api.get("/api/agents").json == []


def test_credentials_are_checked_before_the_body(api: Api) -> None:
    assert send(b"\xff garbage").status == 401


def test_revoked_token_enrolls_no_one(api: Api) -> None:
    created = api.post("/api/tokens", {"name": "x"}).json
    assert api.post(f"/api/tokens/{created['id']}/revoke").status == 200
    assert send(Agent().full_state(), token=created["token"]).status == 401
    assert api.get("/api/agents").json == []


def test_revoked_token_stops_admitting_the_agents_it_enrolled_at_once(api: Api) -> None:
    # Given two agents enrolled by one token, and one by another token
    created = api.post("/api/tokens", {"name": "x", "maxUses": 2}).json
    other = api.post("/api/tokens", {"name": "y"}).json
    agents, bystander = [Agent(), Agent()], Agent()
    for agent in agents:
        assert send(agent.full_state(), token=created["token"]).status == 200
        assert send(agent.heartbeat(), token=created["token"]).status == 200
    assert send(bystander.full_state(), token=other["token"]).status == 200
    # When the first token is revoked
    assert api.post(f"/api/tokens/{created['id']}/revoke").status == 200
    # Then the very next request of each of its agents is refused, and nobody else's is
    for agent in agents:
        refused = send(agent.heartbeat(), token=created["token"])
        assert refused.status == 401
        assert "revoked" in refused.problem["detail"]
    assert send(bystander.heartbeat(), token=other["token"]).status == 200


def test_a_token_revoked_while_its_agent_enrolls_does_not_admit_it(api: Api,
                                                                   monkeypatch) -> None:
    # Given a token that is revoked after it admitted a new agent, before the agent's item
    # was written (the revocation found no agent to tell)
    from chalicelib.enrollment import service as enrollment

    created = api.post("/api/tokens", {"name": "x"}).json
    redeem = enrollment.redeem

    def redeem_then_revoke(token: str, agent_id: str) -> Any:
        grant = redeem(token, agent_id)
        assert api.post(f"/api/tokens/{created['id']}/revoke").status == 200
        return grant

    monkeypatch.setattr(enrollment, "redeem", redeem_then_revoke)
    agent = Agent()
    # When the agent's first message completes, and it comes back
    first = send(agent.full_state(), token=created["token"])
    monkeypatch.setattr(enrollment, "redeem", redeem)
    again = send(agent.heartbeat(), token=created["token"])
    # Then both are refused
    assert (first.status, again.status) == (401, 401)
    assert "revoked" in again.problem["detail"]


def test_expired_token_stops_admitting_the_agents_it_enrolled(api: Api, clock) -> None:
    token = issue(api, ttlSeconds=3600)
    agent = Agent()
    assert send(agent.full_state(), token=token).status == 200
    clock.advance(minutes=59)
    assert send(agent.heartbeat(), token=token).status == 200
    clock.advance(minutes=1)
    refused = send(agent.heartbeat(), token=token)
    assert refused.status == 401
    assert "expired" in refused.problem["detail"]


def test_expired_token_enrolls_no_one(api: Api, clock) -> None:
    token = issue(api, ttlSeconds=3600)
    clock.advance(hours=2)
    assert send(Agent().full_state(), token=token).status == 401


def test_exhausted_token_enrolls_no_one_more(api: Api) -> None:
    token = issue(api, maxUses=2)
    assert send(Agent().full_state(), token=token).status == 200
    assert send(Agent().full_state(), token=token).status == 200
    assert send(Agent().full_state(), token=token).status == 401
    assert len(api.get("/api/agents").json) == 2


# --- tenancy --------------------------------------------------------------------------------

def test_a_token_enrolls_only_into_its_own_tenant(api: Api) -> None:
    # Given an agent enrolled with a token of tenant acme
    agent, _ = enrolled(api)
    # Then tenant globex sees none of acme's agents and cannot act on them by id
    assert api.get("/api/agents", tenant="globex").json == []
    assert api.get(f"/api/agents/{agent.id}", tenant="globex").status == 404
    moved = api.post(f"/api/agents/{agent.id}/move", {"groupId": "default"}, tenant="globex")
    assert moved.status == 404
    # And the same instance uid enrolled by globex is a separate agent of globex
    other = issue(api, tenant="globex")
    assert send(agent.full_state(), token=other).status == 200
    assert [a["id"] for a in api.get("/api/agents", tenant="globex").json] == [agent.id]
    assert api.get(f"/api/agents/{agent.id}").json["groupId"] == "default"


# --- certificates ---------------------------------------------------------------------------

def _csr_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def certified(api: Api) -> tuple[Agent, str]:
    """An enrolled agent that asked for, and got, a client certificate."""
    agent, token = enrolled(api)
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = _csr_pem()
    offered = send(message.SerializeToString(), token=token).message
    certificate = offered.connection_settings.opamp.certificate
    assert certificate.cert.startswith(b"-----BEGIN CERTIFICATE-----")
    assert certificate.ca_cert.startswith(b"-----BEGIN CERTIFICATE-----")
    return agent, certificate.cert.decode()


def test_a_csr_gets_a_certificate_the_agent_then_talks_with(api: Api) -> None:
    # Given an agent that received a certificate for its CSR
    agent, cert = certified(api)
    # When it talks with the certificate alone
    reply = send(agent.heartbeat(), cert_pem=cert)
    # Then it is admitted, and the agent shows the certificate
    assert reply.status == 200 and not reply.message.HasField("error_response")
    shown = api.get(f"/api/agents/{agent.id}").json
    assert shown["certificate"]["revoked"] is False
    assert shown["certificate"]["serial"] and shown["certificate"]["notAfter"]


def test_after_revocation_the_next_request_with_the_certificate_is_refused(api: Api) -> None:
    from chalicelib.agents import service as agents

    agent, cert = certified(api)
    revoked = agents.revoke_certificate("acme", agent.id)
    assert revoked["status"] == "revoked"
    answer = send(agent.heartbeat(), cert_pem=cert)
    assert answer.status == 401
    assert api.get("/api/agents", role="Viewer").json[0]["status"] == "revoked"
    assert len(of_type("agent.revoked")) == 1


def test_a_certificate_is_only_good_for_its_own_agent(api: Api) -> None:
    _, cert = certified(api)
    impostor = Agent()
    assert send(impostor.full_state(), cert_pem=cert).status == 401


def test_a_replaced_certificate_is_refused(api: Api) -> None:
    agent, first = certified(api)
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = _csr_pem()
    renewed = send(message.SerializeToString(), cert_pem=first).message
    second = renewed.connection_settings.opamp.certificate.cert.decode()
    assert send(agent.heartbeat(), cert_pem=second).status == 200
    assert send(agent.heartbeat(), cert_pem=first).status == 401


def test_a_bad_csr_is_an_opamp_bad_request(api: Api) -> None:
    agent, token = enrolled(api)
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = b"not a csr"
    reply = send(message.SerializeToString(), token=token).message
    assert reply.error_response.type == BAD_REQUEST
