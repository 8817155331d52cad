"""OpAMP messages in and out: protobuf ↔ plain values (no I/O).

:func:`read` turns an ``AgentToServer`` body into a :class:`Message`; the
``answer_*`` functions build the ``ServerToAgent`` bytes. This is the only module
that touches the generated protobuf code, so protobuf is loaded only on the OpAMP
path.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from chalicelib.agents.observation import Observation
from chalicelib.agents.remote_config import files_hash
from chalicelib.opamp.proto import anyvalue_pb2, opamp_pb2

UID_BYTES = 16
#: What Ampora's server does (ServerCapabilities bits).
SERVER_CAPABILITIES = (opamp_pb2.ServerCapabilities_AcceptsStatus
                       | opamp_pb2.ServerCapabilities_OffersRemoteConfig
                       | opamp_pb2.ServerCapabilities_AcceptsEffectiveConfig
                       | opamp_pb2.ServerCapabilities_OffersConnectionSettings
                       | opamp_pb2.ServerCapabilities_AcceptsConnectionSettingsRequest)
REQUEST_INSTANCE_UID = opamp_pb2.AgentToServerFlags_RequestInstanceUid
#: Health components kept per level, and how deep (the rest is summarised away).
MAX_COMPONENTS = 50
_REMOTE_STATUS = {0: "UNSET", 1: "APPLIED", 2: "APPLYING", 3: "FAILED"}


class Unreadable(ValueError):
    """The body is not an AgentToServer message."""


@dataclass(frozen=True)
class Message:
    """One AgentToServer, read."""

    instance_uid: bytes
    flags: int
    observation: Observation
    csr: bytes | None


@dataclass(frozen=True)
class Offer:
    """Connection settings to offer: the heartbeat interval and, maybe, a certificate."""

    heartbeat_interval_seconds: int
    cert_pem: bytes = b""
    ca_pem: bytes = b""
    private_key_pem: bytes = b""


@dataclass(frozen=True)
class RemoteConfig:
    """A configuration to send: one file of the agent's config map, and its hash."""

    file_name: str
    content_type: str
    body: bytes
    config_hash: bytes


# --- reading ------------------------------------------------------------------------------

def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise Unreadable("truncated varint")


def _skip(data: bytes, at: int, wire_type: int) -> int:
    if wire_type == 0:
        return _varint(data, at)[1]
    if wire_type == 1:
        return at + 8
    if wire_type == 5:
        return at + 4
    if wire_type == 2:
        length, at = _varint(data, at)
        return at + length
    raise Unreadable(f"wire type {wire_type}")


def peek_instance_uid(data: bytes) -> bytes | None:
    """The 16-byte instance_uid (field 1) from the start of a body that may be cut or broken."""
    at = 0
    try:
        while at < len(data):
            key, at = _varint(data, at)
            if key == 0x0A:
                length, at = _varint(data, at)
                uid = data[at:at + length]
                return uid if length == UID_BYTES and len(uid) == UID_BYTES else None
            at = _skip(data, at, key & 0x07)
    except Unreadable:
        return None
    return None


def any_value(value: anyvalue_pb2.AnyValue) -> Any:
    """An OpAMP AnyValue as JSON-able Python (bytes as base64 text)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """Key/value pairs as a dict (a repeated key keeps its last value)."""
    return {pair.key: any_value(pair.value) for pair in pairs}


def health(message: opamp_pb2.ComponentHealth, depth: int = 2) -> dict[str, Any]:
    """A ComponentHealth as a dict, components ``depth`` levels down at most."""
    found: dict[str, Any] = {
        "healthy": message.healthy, "status": message.status, "lastError": message.last_error,
        "startTimeUnixNano": message.start_time_unix_nano,
        "statusTimeUnixNano": message.status_time_unix_nano, "components": {},
    }
    if depth > 0:
        names = sorted(message.component_health_map)[:MAX_COMPONENTS]
        found["components"] = {name: health(message.component_health_map[name], depth - 1)
                               for name in names}
    return found


def config_hash(config: opamp_pb2.EffectiveConfig) -> str:
    """SHA-256 over the effective config's files (names, types, bodies), in name order."""
    files = config.config_map.config_map
    return files_hash({name: (files[name].content_type, files[name].body) for name in files})


def remote_config_status(status: opamp_pb2.RemoteConfigStatus) -> dict[str, Any]:
    """A RemoteConfigStatus as a dict (hash in hex, status by name)."""
    return {"lastRemoteConfigHash": status.last_remote_config_hash.hex(),
            "status": _REMOTE_STATUS.get(status.status, str(status.status)),
            "errorMessage": status.error_message}


def observation(message: opamp_pb2.AgentToServer) -> Observation:
    """What the message says about the agent's state."""
    description = message.agent_description if message.HasField("agent_description") else None
    return Observation(
        sequence_num=message.sequence_num, capabilities=message.capabilities,
        identifying=None if description is None else attributes(
            description.identifying_attributes),
        non_identifying=None if description is None else attributes(
            description.non_identifying_attributes),
        health=health(message.health) if message.HasField("health") else None,
        effective_config_hash=config_hash(message.effective_config)
        if message.HasField("effective_config") else None,
        remote_config_status=remote_config_status(message.remote_config_status)
        if message.HasField("remote_config_status") else None,
        disconnect=message.HasField("agent_disconnect"),
    )


def _csr(message: opamp_pb2.AgentToServer) -> bytes | None:
    request = message.connection_settings_request.opamp.certificate_request
    return request.csr or None


def read(body: bytes) -> Message:
    """Parse an AgentToServer body; raises :class:`Unreadable` if it is not one."""
    message = opamp_pb2.AgentToServer()
    try:
        message.ParseFromString(body)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise Unreadable(str(exc)) from exc
    return Message(instance_uid=message.instance_uid, flags=message.flags,
                   observation=observation(message), csr=_csr(message))


# --- answering ----------------------------------------------------------------------------

def _settings(offer: Offer) -> opamp_pb2.ConnectionSettingsOffers:
    settings = opamp_pb2.ConnectionSettingsOffers()
    settings.opamp.heartbeat_interval_seconds = offer.heartbeat_interval_seconds
    if offer.cert_pem:
        settings.opamp.certificate.cert = offer.cert_pem
        settings.opamp.certificate.ca_cert = offer.ca_pem
        settings.opamp.certificate.private_key = offer.private_key_pem
    digest = hashlib.sha256(settings.opamp.SerializeToString(deterministic=True))
    settings.hash = digest.digest()
    return settings


def _remote_config(config: RemoteConfig) -> opamp_pb2.AgentRemoteConfig:
    remote = opamp_pb2.AgentRemoteConfig(config_hash=config.config_hash)
    entry = remote.config.config_map[config.file_name]
    entry.body, entry.content_type = config.body, config.content_type
    return remote


def answer(instance_uid: bytes, *, full_state: bool = False, offer: Offer | None = None,
           new_instance_uid: bytes | None = None,
           remote_config: RemoteConfig | None = None) -> bytes:
    """The ServerToAgent for a message that was processed."""
    reply = opamp_pb2.ServerToAgent(instance_uid=instance_uid,
                                    capabilities=SERVER_CAPABILITIES)
    if full_state:
        reply.flags |= opamp_pb2.ServerToAgentFlags_ReportFullState
    if offer is not None:
        reply.connection_settings.CopyFrom(_settings(offer))
    if new_instance_uid is not None:
        reply.agent_identification.new_instance_uid = new_instance_uid
    if remote_config is not None:
        reply.remote_config.CopyFrom(_remote_config(remote_config))
    return reply.SerializeToString()


def answer_error(instance_uid: bytes, detail: str, *, retry_after_seconds: int | None = None
                 ) -> bytes:
    """A ServerToAgent carrying only an error: BadRequest, or Unavailable with a retry hint."""
    reply = opamp_pb2.ServerToAgent(instance_uid=instance_uid)
    error = reply.error_response
    error.error_message = detail
    if retry_after_seconds is None:
        error.type = opamp_pb2.ServerErrorResponseType_BadRequest
    else:
        error.type = opamp_pb2.ServerErrorResponseType_Unavailable
        error.retry_info.retry_after_nanoseconds = retry_after_seconds * 1_000_000_000
    return reply.SerializeToString()
