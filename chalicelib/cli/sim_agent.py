"""One simulated OpAMP agent: the messages it sends and how it reacts to the server (no I/O).

It behaves like a Collector with the OpAMP extension: it describes itself on
first contact and whenever the server asks for full state, heartbeats otherwise,
applies remote configs (or fails to, if told to) and reports the outcome, adopts
the heartbeat interval the server offers, and says goodbye when stopped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from chalicelib.opamp.proto import anyvalue_pb2, opamp_pb2

CAPABILITIES = (opamp_pb2.AgentCapabilities_ReportsStatus
                | opamp_pb2.AgentCapabilities_AcceptsRemoteConfig
                | opamp_pb2.AgentCapabilities_ReportsEffectiveConfig
                | opamp_pb2.AgentCapabilities_ReportsHealth
                | opamp_pb2.AgentCapabilities_ReportsRemoteConfig
                | opamp_pb2.AgentCapabilities_ReportsHeartbeat
                | opamp_pb2.AgentCapabilities_AcceptsOpAMPConnectionSettings)
DEFAULT_INTERVAL = 30.0
_APPLIED = opamp_pb2.RemoteConfigStatuses_APPLIED
_FAILED = opamp_pb2.RemoteConfigStatuses_FAILED


def _pairs(values: dict[str, str]) -> list[Any]:
    return [anyvalue_pb2.KeyValue(key=k, value=anyvalue_pb2.AnyValue(string_value=v))
            for k, v in sorted(values.items())]


@dataclass
class SimulatedAgent:
    """The state of one agent between exchanges."""

    instance_uid: bytes
    name: str
    fail_applies: bool = False
    version: str = "0.1.0"
    interval: float = DEFAULT_INTERVAL
    sequence: int = 0
    full_state_due: bool = True
    status_due: bool = False
    effective: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    remote_hash: bytes = b""
    remote_status: int = opamp_pb2.RemoteConfigStatuses_UNSET
    remote_error: str = ""
    errors: list[str] = field(default_factory=list)

    def next_message(self) -> bytes:
        """The next AgentToServer: full state when due, a heartbeat otherwise."""
        message = opamp_pb2.AgentToServer(instance_uid=self.instance_uid,
                                          sequence_num=self.sequence, capabilities=CAPABILITIES)
        self.sequence += 1
        if self.full_state_due:
            self._describe(message)
        if self.full_state_due or self.status_due:
            self._report_config(message)
        self.full_state_due = self.status_due = False
        return bytes(message.SerializeToString())

    def goodbye(self) -> bytes:
        """The last message: AgentDisconnect."""
        message = opamp_pb2.AgentToServer(instance_uid=self.instance_uid,
                                          sequence_num=self.sequence, capabilities=CAPABILITIES,
                                          agent_disconnect=opamp_pb2.AgentDisconnect())
        self.sequence += 1
        return bytes(message.SerializeToString())

    def _describe(self, message: Any) -> None:
        message.agent_description.identifying_attributes.extend(_pairs({
            "service.name": "ampora-simulated-agent", "service.version": self.version,
            "service.instance.id": self.instance_uid.hex()}))
        message.agent_description.non_identifying_attributes.extend(_pairs({
            "host.name": self.name, "os.type": "linux"}))
        message.health.healthy = True
        message.health.status = "StatusOK"

    def _report_config(self, message: Any) -> None:
        for file_name, (body, content_type) in self.effective.items():
            message.effective_config.config_map.config_map[file_name].body = body
            message.effective_config.config_map.config_map[file_name].content_type = content_type
        if self.remote_hash:
            message.remote_config_status.last_remote_config_hash = self.remote_hash
            message.remote_config_status.status = self.remote_status
            message.remote_config_status.error_message = self.remote_error

    def receive(self, body: bytes) -> None:
        """React to one ServerToAgent."""
        reply = opamp_pb2.ServerToAgent()
        reply.ParseFromString(body)
        if reply.HasField("error_response"):
            self.errors.append(reply.error_response.error_message)
        if reply.flags & opamp_pb2.ServerToAgentFlags_ReportFullState:
            self.full_state_due = True
        if reply.HasField("agent_identification") and reply.agent_identification.new_instance_uid:
            self.instance_uid = reply.agent_identification.new_instance_uid
        self._adopt_settings(reply)
        if reply.HasField("remote_config"):
            self._apply(reply.remote_config)

    def _adopt_settings(self, reply: Any) -> None:
        offered = reply.connection_settings.opamp.heartbeat_interval_seconds
        if reply.HasField("connection_settings") and offered:
            self.interval = float(offered)

    def _apply(self, remote: Any) -> None:
        if remote.config_hash == self.remote_hash:
            return
        self.remote_hash, self.status_due = remote.config_hash, True
        if self.fail_applies:
            self.remote_status, self.remote_error = _FAILED, "simulated failure to apply"
            return
        files = remote.config.config_map
        self.effective = {name: (f.body, f.content_type) for name, f in files.items()}
        self.remote_status, self.remote_error = _APPLIED, ""

    @property
    def effective_hash(self) -> str:
        """SHA-256 of the effective config (what a real agent would report as applied)."""
        digest = hashlib.sha256()
        for name, (body, _) in sorted(self.effective.items()):
            digest.update(name.encode() + b"\0" + body)
        return digest.hexdigest()
