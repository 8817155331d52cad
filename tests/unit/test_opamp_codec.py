"""The OpAMP codec and protos: field numbers as the specification defines them, round trips,
reading broken bodies, and answers an OpAMP client can read."""

from __future__ import annotations

import os

import pytest
from google.protobuf import descriptor

from chalicelib.opamp import codec
from chalicelib.opamp.proto import anyvalue_pb2, opamp_pb2

#: (message, field, number) as the OpAMP specification's opamp.proto defines them.
SPEC_FIELDS = [
    ("AgentToServer", "instance_uid", 1), ("AgentToServer", "sequence_num", 2),
    ("AgentToServer", "agent_description", 3), ("AgentToServer", "capabilities", 4),
    ("AgentToServer", "health", 5), ("AgentToServer", "effective_config", 6),
    ("AgentToServer", "remote_config_status", 7), ("AgentToServer", "package_statuses", 8),
    ("AgentToServer", "agent_disconnect", 9), ("AgentToServer", "flags", 10),
    ("AgentToServer", "connection_settings_request", 11),
    ("AgentToServer", "custom_capabilities", 12), ("AgentToServer", "custom_message", 13),
    ("AgentToServer", "available_components", 14),
    ("AgentToServer", "connection_settings_status", 15),
    ("ServerToAgent", "instance_uid", 1), ("ServerToAgent", "error_response", 2),
    ("ServerToAgent", "remote_config", 3), ("ServerToAgent", "connection_settings", 4),
    ("ServerToAgent", "packages_available", 5), ("ServerToAgent", "flags", 6),
    ("ServerToAgent", "capabilities", 7), ("ServerToAgent", "agent_identification", 8),
    ("ServerToAgent", "command", 9),
    ("OpAMPConnectionSettings", "destination_endpoint", 1),
    ("OpAMPConnectionSettings", "headers", 2), ("OpAMPConnectionSettings", "certificate", 3),
    ("OpAMPConnectionSettings", "heartbeat_interval_seconds", 4),
    ("TLSCertificate", "cert", 1), ("TLSCertificate", "private_key", 2),
    ("TLSCertificate", "ca_cert", 3),
    ("ConnectionSettingsOffers", "hash", 1), ("ConnectionSettingsOffers", "opamp", 2),
    ("ConnectionSettingsRequest", "opamp", 1),
    ("OpAMPConnectionSettingsRequest", "certificate_request", 1),
    ("CertificateRequest", "csr", 1),
    ("ServerErrorResponse", "type", 1), ("ServerErrorResponse", "error_message", 2),
    ("ServerErrorResponse", "retry_info", 3),
    ("AgentDescription", "identifying_attributes", 1),
    ("AgentDescription", "non_identifying_attributes", 2),
    ("ComponentHealth", "healthy", 1), ("ComponentHealth", "start_time_unix_nano", 2),
    ("ComponentHealth", "last_error", 3), ("ComponentHealth", "status", 4),
    ("ComponentHealth", "status_time_unix_nano", 5),
    ("ComponentHealth", "component_health_map", 6),
    ("EffectiveConfig", "config_map", 1),
    ("RemoteConfigStatus", "last_remote_config_hash", 1), ("RemoteConfigStatus", "status", 2),
    ("RemoteConfigStatus", "error_message", 3),
    ("AgentRemoteConfig", "config", 1), ("AgentRemoteConfig", "config_hash", 2),
    ("AgentConfigMap", "config_map", 1), ("AgentConfigFile", "body", 1),
    ("AgentConfigFile", "content_type", 2),
]


@pytest.mark.parametrize(("message", "name", "number"), SPEC_FIELDS)
def test_field_numbers_are_the_specifications(message: str, name: str, number: int) -> None:
    assert opamp_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name[name].number == number


@pytest.mark.parametrize(("enum", "value"), [
    ("ServerToAgentFlags_ReportFullState", 1), ("ServerCapabilities_AcceptsStatus", 1),
    ("ServerCapabilities_OffersConnectionSettings", 0x20),
    ("ServerCapabilities_AcceptsConnectionSettingsRequest", 0x40),
    ("ServerErrorResponseType_BadRequest", 1), ("ServerErrorResponseType_Unavailable", 2),
    ("AgentCapabilities_ReportsHealth", 0x800), ("AgentCapabilities_ReportsHeartbeat", 0x2000),
    ("AgentToServerFlags_RequestInstanceUid", 1), ("RemoteConfigStatuses_FAILED", 3),
])
def test_enum_values_are_the_specifications(enum: str, value: int) -> None:
    assert getattr(opamp_pb2, enum) == value


def test_every_message_of_the_reference_client_has_the_same_fields() -> None:
    # Given the protos the published opentelemetry-opamp-client was generated from
    reference = pytest.importorskip("opentelemetry._opamp.proto.opamp_pb2")
    # Then every field they share has the same number and wire type in Ampora's protos
    for name, theirs in reference.DESCRIPTOR.message_types_by_name.items():
        ours = opamp_pb2.DESCRIPTOR.message_types_by_name[name]
        for field in theirs.fields:
            mine: descriptor.FieldDescriptor = ours.fields_by_name[field.name]
            assert (mine.number, mine.type) == (field.number, field.type), (name, field.name)


def test_agent_to_server_round_trip() -> None:
    uid = os.urandom(16)
    sent = opamp_pb2.AgentToServer(instance_uid=uid, sequence_num=7, capabilities=0x801)
    sent.agent_description.identifying_attributes.add(
        key="service.name", value=anyvalue_pb2.AnyValue(string_value="otelcol"))
    sent.health.healthy = True
    sent.health.component_health_map["pipeline:traces"].healthy = False
    message = codec.read(sent.SerializeToString())
    assert message.instance_uid == uid and message.flags == 0 and message.csr is None
    observation = message.observation
    assert observation.sequence_num == 7 and observation.capabilities == 0x801
    assert observation.identifying == {"service.name": "otelcol"}
    assert observation.non_identifying == {}
    assert observation.health is not None
    assert observation.health["components"]["pipeline:traces"]["healthy"] is False
    assert observation.effective_config_hash is None and not observation.disconnect


def test_unsent_fields_read_as_none() -> None:
    message = codec.read(opamp_pb2.AgentToServer(instance_uid=b"u" * 16).SerializeToString())
    observation = message.observation
    assert (observation.identifying, observation.health, observation.remote_config_status,
            observation.effective_config_hash) == (None, None, None, None)


@pytest.mark.parametrize(("value", "expected"), [
    (anyvalue_pb2.AnyValue(string_value="x"), "x"),
    (anyvalue_pb2.AnyValue(bool_value=True), True),
    (anyvalue_pb2.AnyValue(int_value=-3), -3),
    (anyvalue_pb2.AnyValue(double_value=1.5), 1.5),
    (anyvalue_pb2.AnyValue(bytes_value=b"\x00\x01"), "AAE="),
    (anyvalue_pb2.AnyValue(), None),
    (anyvalue_pb2.AnyValue(array_value=anyvalue_pb2.ArrayValue(
        values=[anyvalue_pb2.AnyValue(int_value=1), anyvalue_pb2.AnyValue(string_value="a")])),
     [1, "a"]),
    (anyvalue_pb2.AnyValue(kvlist_value=anyvalue_pb2.KeyValueList(values=[
        anyvalue_pb2.KeyValue(key="k", value=anyvalue_pb2.AnyValue(bool_value=False))])),
     {"k": False}),
])
def test_any_values_become_json(value: anyvalue_pb2.AnyValue, expected: object) -> None:
    assert codec.any_value(value) == expected


def test_config_hash_depends_on_names_types_and_bodies_not_order() -> None:
    def config(*files: tuple[str, str, bytes]) -> opamp_pb2.EffectiveConfig:
        built = opamp_pb2.EffectiveConfig()
        for name, content_type, body in files:
            built.config_map.config_map[name].body = body
            built.config_map.config_map[name].content_type = content_type
        return built

    a = config(("a", "text/yaml", b"1"), ("b", "", b"2"))
    assert codec.config_hash(a) == codec.config_hash(config(("b", "", b"2"),
                                                            ("a", "text/yaml", b"1")))
    assert codec.config_hash(a) != codec.config_hash(config(("a", "text/yaml", b"1"),
                                                            ("b", "", b"3")))
    assert codec.config_hash(config(("ab", "", b"c"))) != codec.config_hash(
        config(("a", "", b"bc")))


@pytest.mark.parametrize(("body", "uid"), [
    (b"\x0a\x10" + b"u" * 16 + b"\xff\xff", b"u" * 16),          # uid, then garbage
    (b"\x10\x05\x0a\x10" + b"v" * 16, b"v" * 16),                # a varint field first
    (b"\x0a\x10" + b"u" * 10, None),                             # cut short
    (b"\x0a\x03abc", None),                                      # not 16 bytes
    (b"\xff\xff\xff", None),
    (b"", None),
])
def test_peek_instance_uid(body: bytes, uid: bytes | None) -> None:
    assert codec.peek_instance_uid(body) == uid


@pytest.mark.parametrize("body", [b"\xff\xfe garbage", b"\x0a\x10" + b"u" * 3,
                                  b"\x0a\x10" + b"u" * 16 + b"\x2a\x02\xff\xfe"])
def test_unreadable_bodies(body: bytes) -> None:
    with pytest.raises(codec.Unreadable):
        codec.read(body)


def test_answer_carries_flags_interval_certificate_and_hash() -> None:
    uid = os.urandom(16)
    offer = codec.Offer(heartbeat_interval_seconds=15, cert_pem=b"CERT", ca_pem=b"CA")
    reply = opamp_pb2.ServerToAgent.FromString(codec.answer(uid, full_state=True, offer=offer))
    assert reply.instance_uid == uid
    assert reply.flags == opamp_pb2.ServerToAgentFlags_ReportFullState
    assert reply.capabilities == codec.SERVER_CAPABILITIES
    assert reply.connection_settings.opamp.heartbeat_interval_seconds == 15
    assert reply.connection_settings.opamp.certificate.cert == b"CERT"
    assert reply.connection_settings.opamp.certificate.ca_cert == b"CA"
    assert len(reply.connection_settings.hash) == 32


def test_plain_answer_offers_nothing() -> None:
    reply = opamp_pb2.ServerToAgent.FromString(codec.answer(b"u" * 16))
    assert not reply.HasField("connection_settings") and reply.flags == 0


@pytest.mark.parametrize(("retry", "kind"), [
    (None, opamp_pb2.ServerErrorResponseType_BadRequest),
    (30, opamp_pb2.ServerErrorResponseType_Unavailable)])
def test_error_answers(retry: int | None, kind: int) -> None:
    reply = opamp_pb2.ServerToAgent.FromString(
        codec.answer_error(b"u" * 16, "nope", retry_after_seconds=retry))
    assert reply.error_response.type == kind and reply.error_response.error_message == "nope"
    assert not reply.capabilities and not reply.HasField("connection_settings")
    if retry is not None:
        assert reply.error_response.retry_info.retry_after_nanoseconds == retry * 10**9


def test_generated_code_is_what_make_proto_generates(tmp_path) -> None:
    # Given the committed .proto files / When they are compiled again as `make proto` does
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    protos = ["chalicelib/opamp/proto/anyvalue.proto", "chalicelib/opamp/proto/opamp.proto"]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "--proto_path=.",
                    f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", *protos],
                   cwd=root, check=True)
    # Then the committed generated code is byte for byte the same
    for name in ("anyvalue_pb2.py", "anyvalue_pb2.pyi", "opamp_pb2.py", "opamp_pb2.pyi"):
        fresh = (tmp_path / "chalicelib/opamp/proto" / name).read_bytes()
        assert fresh == (root / "chalicelib/opamp/proto" / name).read_bytes(), name
