"""The simulated agent speaks OpAMP as a Collector would: describe, heartbeat, apply, report."""

from __future__ import annotations

import pytest

from chalicelib.cli.main import parser
from chalicelib.cli.sim_agent import SimulatedAgent
from chalicelib.cli.simulate import Plan, fleet
from chalicelib.opamp.proto import opamp_pb2

UID = bytes(range(16))


def sent(agent: SimulatedAgent) -> opamp_pb2.AgentToServer:
    message = opamp_pb2.AgentToServer()
    message.ParseFromString(agent.next_message())
    return message


def reply(**fields) -> bytes:
    return opamp_pb2.ServerToAgent(instance_uid=UID, **fields).SerializeToString()


def remote(body: bytes, digest: bytes) -> opamp_pb2.AgentRemoteConfig:
    config = opamp_pb2.AgentRemoteConfig(config_hash=digest)
    config.config.config_map["collector.yaml"].body = body
    config.config.config_map["collector.yaml"].content_type = "application/yaml"
    return config


def test_first_message_describes_then_heartbeats() -> None:
    agent = SimulatedAgent(instance_uid=UID, name="sim-1")
    first, second = sent(agent), sent(agent)
    assert first.HasField("agent_description") and first.health.healthy
    assert (first.sequence_num, second.sequence_num) == (0, 1)
    assert not second.HasField("agent_description")


def test_full_state_is_sent_when_the_server_asks() -> None:
    agent = SimulatedAgent(instance_uid=UID, name="sim-1")
    sent(agent)
    agent.receive(reply(flags=opamp_pb2.ServerToAgentFlags_ReportFullState))
    assert sent(agent).HasField("agent_description")


def test_remote_config_is_applied_and_reported_once() -> None:
    agent = SimulatedAgent(instance_uid=UID, name="sim-1")
    sent(agent)
    agent.receive(reply(remote_config=remote(b"receivers: {}", b"h1")))
    report = sent(agent)
    assert report.remote_config_status.status == opamp_pb2.RemoteConfigStatuses_APPLIED
    assert report.remote_config_status.last_remote_config_hash == b"h1"
    assert report.effective_config.config_map.config_map["collector.yaml"].body == b"receivers: {}"
    agent.receive(reply(remote_config=remote(b"receivers: {}", b"h1")))  # same hash: nothing new
    assert not sent(agent).HasField("remote_config_status")


def test_failing_agent_reports_failed_with_a_message() -> None:
    agent = SimulatedAgent(instance_uid=UID, name="sim-1", fail_applies=True)
    agent.receive(reply(remote_config=remote(b"x: 1", b"h2")))
    status = sent(agent).remote_config_status
    assert status.status == opamp_pb2.RemoteConfigStatuses_FAILED and status.error_message


def test_offered_heartbeat_interval_is_adopted() -> None:
    agent = SimulatedAgent(instance_uid=UID, name="sim-1")
    offer = opamp_pb2.ConnectionSettingsOffers()
    offer.opamp.heartbeat_interval_seconds = 12
    agent.receive(reply(connection_settings=offer))
    assert agent.interval == 12.0


def test_goodbye_is_a_disconnect() -> None:
    message = opamp_pb2.AgentToServer()
    message.ParseFromString(SimulatedAgent(instance_uid=UID, name="s").goodbye())
    assert message.HasField("agent_disconnect")


def test_fleet_is_deterministic_and_fails_the_asked_share() -> None:
    plan = Plan(url="http://x", token="t", agents=10, fail_share=0.3, seed=7)
    first, again = fleet(plan), fleet(plan)
    assert [a.instance_uid for a in first] == [a.instance_uid for a in again]
    assert len({a.instance_uid for a in first}) == 10
    assert sum(a.fail_applies for a in first) == 3


@pytest.mark.parametrize("argv", [
    ["simulate", "--token", "t"],
    ["simulate", "--agents", "0", "--token", "t"],
    ["simulate", "--agents", "2", "--token", "t", "--fail-share", "1.5"],
    ["simulate", "--agents", "2", "--token", "t", "--rounds", "-1"],
])
def test_bad_simulate_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(argv)
    assert exited.value.code == 2
