"""An OpAMP agent for tests: builds AgentToServer messages and posts them as API Gateway would.

Requests go through the same event builder the local stack uses (so the binary
body is base64-encoded exactly as API Gateway encodes it, and a client
certificate arrives in ``requestContext.identity.clientCert``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from chalicelib.local.events import HttpRequest, Invocation, build_event, to_http_response
from chalicelib.local.gateway import LambdaContext
from chalicelib.local.routing import Match
from chalicelib.opamp.proto import anyvalue_pb2, opamp_pb2

PATH = "/v1/opamp"
PROTOBUF = "application/x-protobuf"
CAPABILITIES = (opamp_pb2.AgentCapabilities_ReportsStatus
                | opamp_pb2.AgentCapabilities_ReportsHealth
                | opamp_pb2.AgentCapabilities_ReportsEffectiveConfig
                | opamp_pb2.AgentCapabilities_ReportsHeartbeat
                | opamp_pb2.AgentCapabilities_AcceptsOpAMPConnectionSettings)


@dataclass
class Reply:
    """One HTTP answer of the OpAMP endpoint."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def message(self) -> opamp_pb2.ServerToAgent:
        """The body as a ServerToAgent."""
        assert self.headers.get("content-type") == PROTOBUF, (self.status, self.body[:300])
        parsed = opamp_pb2.ServerToAgent()
        parsed.ParseFromString(self.body)
        return parsed

    @property
    def problem(self) -> dict[str, Any]:
        """The body as a problem document."""
        import json

        assert self.headers.get("content-type") == "application/problem+json", self.body[:300]
        return dict(json.loads(self.body))


def post(app: Any, body: bytes, *, token: str | None = None, cert_pem: str | None = None,
         content_type: str = PROTOBUF) -> Reply:
    """POST ``body`` to /v1/opamp with a bootstrap token and/or a client certificate."""
    headers = [("Content-Type", content_type), ("Host", "agents.example.test")]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    request = HttpRequest(method="POST", path=PATH, headers=headers, body=body)
    cert = None if cert_pem is None else {"clientCertPem": cert_pem}
    invocation = Invocation(request_id=str(uuid.uuid4()), epoch_ms=0, client_cert=cert,
                            binary_types=tuple(app.api.binary_types))
    event = build_event(request, Match(template=PATH, params={}), invocation)
    result = to_http_response(app(event, LambdaContext(aws_request_id="test")))
    return Reply(result.status, {k.lower(): v for k, v in result.headers}, result.body)


def attributes(values: dict[str, Any]) -> list[anyvalue_pb2.KeyValue]:
    """Attributes as OpAMP key/values (str, bool, int and float values)."""
    pairs = []
    for key, value in values.items():
        kind = {bool: "bool_value", int: "int_value", float: "double_value"}.get(
            type(value), "string_value")
        pairs.append(anyvalue_pb2.KeyValue(key=key, value=anyvalue_pb2.AnyValue(**{kind: value})))
    return pairs


@dataclass
class Agent:
    """One simulated agent: its uid, its sequence numbers, what it describes itself as."""

    uid: bytes = field(default_factory=lambda: uuid.uuid4().bytes)
    seq: int = 0
    identifying: dict[str, Any] = field(default_factory=lambda: {
        "service.name": "io.opentelemetry.collector", "service.version": "0.120.0"})
    non_identifying: dict[str, Any] = field(default_factory=lambda: {
        "host.name": "web-1", "os.type": "linux"})

    @property
    def id(self) -> str:
        """The agent id Ampora gives it."""
        return self.uid.hex()

    def message(self, *, describe: bool = False, **fields: Any) -> opamp_pb2.AgentToServer:
        """The next AgentToServer (sequence numbers advance), with any extra fields."""
        message = opamp_pb2.AgentToServer(instance_uid=self.uid, sequence_num=self.seq,
                                          capabilities=CAPABILITIES, **fields)
        if describe:
            message.agent_description.identifying_attributes.extend(
                attributes(self.identifying))
            message.agent_description.non_identifying_attributes.extend(
                attributes(self.non_identifying))
        self.seq += 1
        return message

    def full_state(self, **fields: Any) -> bytes:
        """A message with the description and health: what an agent sends first."""
        health = opamp_pb2.ComponentHealth(healthy=True, status="StatusOK")
        return self.message(describe=True, health=health, **fields).SerializeToString()

    def heartbeat(self) -> bytes:
        """A message with nothing new."""
        return self.message().SerializeToString()
