"""The variables policies see: their documented shapes, built from the API's plain dicts."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest

from chalicelib.agents.schemas import Agent
from chalicelib.configurations import content
from chalicelib.policies import inputs
from chalicelib.policies.cel import compile_expression

YAML, JSON, TEXT = content.YAML, content.JSON, content.TEXT
NOW = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.UTC)


def wire_agent(**changes: Any) -> dict[str, Any]:
    """An agent as ``GET /api/agents/{id}`` shows it (through the real schema)."""
    fields: dict[str, Any] = {
        "id": "0123456789abcdef0123456789abcdef", "group_id": "edge", "labels": {"env": "prod"},
        "name": "host-1", "type": "otelcol-contrib", "version": "0.98.0", "host_name": "host-1",
        "status": "online", "online": True, "last_seen_at": NOW, "disconnected_at": None,
        "enrolled_at": NOW, "enrolled_by_token": None,
        "description": {"identifying_attributes": {"service.name": "otelcol-contrib",
                                                   "service.version": "0.98.0"},
                        "non_identifying_attributes": {"host.name": "host-1",
                                                       "service.name": "shadowed",
                                                       "os.type": "linux"}},
        "capabilities": ["ReportsStatus", "AcceptsRemoteConfig"],
        "health": {"healthy": True, "status": "StatusOK", "last_error": ""},
        "effective_config_hash": None, "remote_config_status": None,
        "configuration": {"configuration_id": "gateway", "version": 3, "applied_version": 2,
                          "status": "applying", "error": None, "drifted": False},
        "certificate": None,
    }
    fields.update(changes)
    return Agent.model_validate(fields).to_wire()


def conforms(value: Any, spec: Any) -> bool:
    """Whether ``value`` has the shape and CEL types ``spec`` (of inputs.SCHEMA) declares."""
    if isinstance(spec, dict):
        return isinstance(value, dict) and set(value) == set(spec) and all(
            conforms(value[key], spec[key]) for key in spec)
    spec = spec.replace(" ", "")
    if spec == "dyn":
        return True
    if spec.startswith("list("):
        return isinstance(value, list) and all(conforms(item, spec[5:-1]) for item in value)
    if spec.startswith("map("):
        key, item = spec[4:-1].split(",", 1)
        return isinstance(value, dict) and all(
            conforms(k, key) and conforms(v, item) for k, v in value.items())
    kinds = {"string": str, "int": int, "bool": bool}
    return type(value) is kinds[spec]


# --- agent -----------------------------------------------------------------------------------

def test_an_agent_has_the_documented_shape() -> None:
    # Given an agent as the API shows it / When policies see it
    agent = inputs.agent_input(wire_agent())
    # Then every field is there with its declared type
    assert conforms(agent, inputs.SCHEMA["agent"])
    assert agent["groupId"] == "edge" and agent["hostName"] == "host-1"
    assert agent["labels"] == {"env": "prod"} and agent["version"] == "0.98.0"
    assert agent["health"] == {"reported": True, "healthy": True, "status": "StatusOK",
                               "lastError": ""}
    assert agent["configuration"] == {"id": "gateway", "version": 3, "appliedVersion": 2,
                                      "status": "applying", "drifted": False}


def test_attributes_merge_both_sets_and_identifying_ones_win() -> None:
    agent = inputs.agent_input(wire_agent())

    assert agent["attributes"] == {"service.name": "otelcol-contrib", "service.version": "0.98.0",
                                   "host.name": "host-1", "os.type": "linux"}
    assert agent["identifyingAttributes"] == {"service.name": "otelcol-contrib",
                                              "service.version": "0.98.0"}


def test_what_an_agent_has_not_reported_reads_as_empty_never_null() -> None:
    # Given an agent that never described itself, reported health or got a configuration
    agent = inputs.agent_input(wire_agent(
        name=None, type=None, version=None, host_name=None, description=None, health=None,
        configuration=None, capabilities=[], labels={}))
    # Then its fields are empty values of their types
    assert conforms(agent, inputs.SCHEMA["agent"])
    assert (agent["name"], agent["type"], agent["version"], agent["hostName"]) == ("",) * 4
    assert agent["attributes"] == {} and agent["identifyingAttributes"] == {}
    assert agent["health"] == {"reported": False, "healthy": False, "status": "",
                               "lastError": ""}
    assert agent["configuration"] == {"id": "", "version": 0, "appliedVersion": 0,
                                      "status": "", "drifted": False}


def test_attributes_beyond_the_value_bound_are_refused() -> None:
    huge = {"description": {"identifyingAttributes": {},
                            "nonIdentifyingAttributes": {"x": list(range(content.MAX_VALUES))}}}

    with pytest.raises(inputs.InputTooLarge):
        inputs.agent_input({"id": "a", **huge})


# --- config ----------------------------------------------------------------------------------

def config(content_type: str, text: str) -> dict[str, Any]:
    return inputs.config_input(content_type, text, configuration_id="gateway", version=4,
                               name="Gateway", file_name="config.yaml")


@pytest.mark.parametrize(("content_type", "text", "parsed", "values"), [
    (YAML, "exporters:\n  debug: {}\n", {"exporters": {"debug": {}}}, 3),
    (YAML, "a: &x [1, 2]\nb: *x\n", {"a": [1, 2], "b": [1, 2]}, 7),
    (JSON, '{"replicas": 3, "tags": ["a", null]}', {"replicas": 3, "tags": ["a", None]}, 5),
    (TEXT, "log_level=debug\n", "log_level=debug\n", 1),
    (YAML, "", None, 1),
])
def test_a_configuration_has_its_text_and_parsed_document(content_type: str, text: str,
                                                          parsed: Any, values: int) -> None:
    seen = config(content_type, text)

    assert conforms(seen, inputs.SCHEMA["config"])
    assert seen["text"] == text and seen["parsed"] == parsed and seen["values"] == values
    assert seen["size"] == len(text.encode()) and seen["contentType"] == content_type
    assert seen["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (seen["id"], seen["version"], seen["name"], seen["fileName"]) == (
        "gateway", 4, "Gateway", "config.yaml")


@pytest.mark.parametrize(("text", "parsed"), [
    ("day: 2024-01-31\n", {"day": "2024-01-31"}),
    ("2024-01-31: release\n", {"2024-01-31": "release"}),
    ("1: one\nfalse: off\n~: nothing\n1.5: half\n", {1: "one", False: False, "null": "nothing",
                                                    "1.5": "half"}),
    ("tags: !!set {b: null, a: null}\n", {"tags": ["a", "b"]}),
    ("big: 18446744073709551616\n", {"big": 18446744073709551616.0}),
    ("at: 2024-01-31T10:00:00Z\n", {"at": datetime.datetime(2024, 1, 31, 10, 0,
                                                            tzinfo=datetime.UTC)}),
])
def test_yaml_values_cel_cannot_hold_become_values_it_can(text: str, parsed: Any) -> None:
    # Given YAML with dates, odd keys, sets or huge integers / Then policies still read it
    seen = config(YAML, text)

    assert seen["parsed"] == parsed
    assert compile_expression("config.parsed == config.parsed", "publish").evaluate(
        {"config": seen}).allowed


# --- rollout ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("rollout", "expected"), [
    ({}, {"id": "", "groupId": "", "configurationId": "", "configurationVersion": 0,
          "strategy": "", "waves": 0}),
    ({"id": "r1", "groupId": "edge", "configurationId": "gateway", "configurationVersion": 4,
      "strategy": {"name": "waves", "waves": [{"percent": 10}, {"percent": 100}]}},
     {"id": "r1", "groupId": "edge", "configurationId": "gateway", "configurationVersion": 4,
      "strategy": "waves", "waves": 2}),
    ({"strategy": "all-at-once", "waves": 1},
     {"id": "", "groupId": "", "configurationId": "", "configurationVersion": 0,
      "strategy": "all-at-once", "waves": 1}),
    ({"configurationVersion": "4", "waves": True},
     {"id": "", "groupId": "", "configurationId": "", "configurationVersion": 0,
      "strategy": "", "waves": 0}),
])
def test_a_rollout_has_the_documented_shape(rollout: dict[str, Any],
                                            expected: dict[str, Any]) -> None:
    seen = inputs.rollout_input(rollout)

    assert seen == expected and conforms(seen, inputs.SCHEMA["rollout"])


# --- together --------------------------------------------------------------------------------

def test_every_documented_field_reaches_an_expression() -> None:
    # Given the three variables built from plain dicts
    variables = {"agent": inputs.agent_input(wire_agent()),
                 "config": config(YAML, "service: {pipelines: {}}\n"),
                 "rollout": inputs.rollout_input({"strategy": "waves", "waves": 3})}
    # When an expression compares every field of each with itself
    for name, fields in inputs.SCHEMA.items():
        source = " && ".join(f"{name}.{field} == {name}.{field}" for field in fields)
        verdict = compile_expression(source, "rollout").evaluate(variables)
        # Then the engine holds them all
        assert verdict.allowed, (name, verdict.error)
