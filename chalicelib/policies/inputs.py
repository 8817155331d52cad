"""The variables policy expressions see: ``agent``, ``config`` and ``rollout``, as plain values.

Each is built from plain dicts (an agent as the API shows it, a configuration version's content,
a rollout) into a fixed, documented shape (``docs/policies.md``): camelCase field names like the
REST API, no nulls where a value can be missing (an empty string, 0 or false stands for
"unknown"), and only values the CEL engine can hold. :data:`SCHEMA` declares every field's CEL
type; the compile-time checks (:mod:`chalicelib.policies.cel`) type expressions against it, and
the tests hold the builders to it.

Pure: no I/O.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from chalicelib.configurations import content
from chalicelib.core.metadata import MAX_LABELS

#: CEL types of the fields of each variable: ``string``, ``int``, ``bool``, ``dyn`` (any value:
#: parsed documents, attributes), ``list(T)``, ``map(K, V)``, or a nested object (a dict).
SCHEMA: dict[str, dict[str, Any]] = {
    "agent": {
        "id": "string",
        "groupId": "string",
        "name": "string",
        "type": "string",
        "version": "string",
        "hostName": "string",
        "labels": "map(string, string)",
        "status": "string",
        "online": "bool",
        "health": {"reported": "bool", "healthy": "bool", "status": "string",
                   "lastError": "string"},
        "attributes": "map(string, dyn)",
        "identifyingAttributes": "map(string, dyn)",
        "capabilities": "list(string)",
        "configuration": {"id": "string", "version": "int", "appliedVersion": "int",
                          "status": "string", "drifted": "bool"},
    },
    "config": {
        "id": "string",
        "version": "int",
        "name": "string",
        "fileName": "string",
        "contentType": "string",
        "text": "string",
        "parsed": "dyn",
        "values": "int",
        "size": "int",
        "sha256": "string",
    },
    "rollout": {
        "id": "string",
        "groupId": "string",
        "configurationId": "string",
        "configurationVersion": "int",
        "strategy": "string",
        "waves": "int",
    },
}

#: At most this many capability names: OpAMP declares capabilities as bits of a uint64.
MAX_CAPABILITIES = 64
#: Upper bounds on the collections of :data:`SCHEMA` with a declared type, by dotted path.
#: Every other collection (inside ``config.parsed`` or attributes) holds at most
#: ``content.MAX_VALUES`` values; ``values`` counts them for a given input.
BOUNDS: dict[str, int] = {"agent.labels": MAX_LABELS, "agent.capabilities": MAX_CAPABILITIES}


class InputTooLarge(ValueError):
    """An input holds more values than a policy may be asked to look at."""


def agent_input(agent: Mapping[str, Any]) -> dict[str, Any]:
    """The ``agent`` variable, from an agent as the API shows it (its wire, camelCase form)."""
    description = agent.get("description") or {}
    identifying = dict(description.get("identifyingAttributes") or {})
    everything = {**(description.get("nonIdentifyingAttributes") or {}), **identifying}
    return {
        "id": _text(agent.get("id")),
        "groupId": _text(agent.get("groupId")),
        "name": _text(agent.get("name")),
        "type": _text(agent.get("type")),
        "version": _text(agent.get("version")),
        "hostName": _text(agent.get("hostName")),
        "labels": {str(key): str(value) for key, value in (agent.get("labels") or {}).items()},
        "status": _text(agent.get("status")),
        "online": agent.get("online") is True,
        "health": _health(agent.get("health")),
        "attributes": _bounded(everything),
        "identifyingAttributes": _bounded(identifying),
        "capabilities": [str(name) for name in agent.get("capabilities") or ()],
        "configuration": _configuration(agent.get("configuration")),
    }


def config_input(content_type: str, text: str, *, configuration_id: str, version: int,
                 name: str, file_name: str) -> dict[str, Any]:
    """The ``config`` variable: one configuration version, its text and (YAML, JSON) document.

    ``text`` must be content the configuration accepted (it parses as ``content_type``).
    """
    body = content.encode(text)
    document, values = _cel_value(content.parse(content_type, text))
    return {
        "id": configuration_id,
        "version": version,
        "name": name,
        "fileName": file_name,
        "contentType": content_type,
        "text": text,
        "parsed": document,
        "values": values,
        "size": len(body),
        "sha256": content.digest(body).hex(),
    }


def rollout_input(rollout: Mapping[str, Any]) -> dict[str, Any]:
    """The ``rollout`` variable, from a rollout's wire form (``id``, ``groupId``,
    ``configurationId``, ``configurationVersion``, ``strategy``: a name, or an object with
    ``name`` and ``waves``; ``waves``: a count or the list of waves). Missing parts read as
    empty."""
    strategy = rollout.get("strategy")
    waves = rollout.get("waves")
    if isinstance(strategy, Mapping):
        waves = strategy.get("waves", waves)
        strategy = strategy.get("name")
    return {
        "id": _text(rollout.get("id")),
        "groupId": _text(rollout.get("groupId")),
        "configurationId": _text(rollout.get("configurationId")),
        "configurationVersion": _int(rollout.get("configurationVersion")),
        "strategy": _text(strategy),
        "waves": len(waves) if isinstance(waves, list | tuple) else _int(waves),
    }


# --- parts -----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _health(health: Mapping[str, Any] | None) -> dict[str, Any]:
    if not health:
        return {"reported": False, "healthy": False, "status": "", "lastError": ""}
    return {"reported": True, "healthy": health.get("healthy") is True,
            "status": _text(health.get("status")), "lastError": _text(health.get("lastError"))}


def _configuration(configuration: Mapping[str, Any] | None) -> dict[str, Any]:
    if not configuration:
        return {"id": "", "version": 0, "appliedVersion": 0, "status": "", "drifted": False}
    return {"id": _text(configuration.get("configurationId")),
            "version": _int(configuration.get("version")),
            "appliedVersion": _int(configuration.get("appliedVersion")),
            "status": _text(configuration.get("status")),
            "drifted": configuration.get("drifted") is True}


def _bounded(attributes: dict[str, Any]) -> dict[str, Any]:
    converted, values = _cel_value(attributes)
    if values > content.MAX_VALUES:
        raise InputTooLarge(f"the agent's attributes hold more than {content.MAX_VALUES} values")
    return converted  # type: ignore[no-any-return]


# --- values CEL can hold ---------------------------------------------------------------------

#: CEL integers are signed 64-bit.
_INT64 = range(-(2**63), 2**63)


def _cel_value(value: Any) -> tuple[Any, int]:
    """``value`` with every part CEL cannot hold made into one it can, and how many values it
    counts (itself and everything inside it).

    Dates (YAML ``2024-01-01``) become ISO strings, sets and tuples lists, integers beyond 64
    bits doubles; map keys other than strings, integers and booleans become strings.
    """
    if isinstance(value, dict):
        return _cel_map(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        converted = [_cel_value(item) for item in items]
        return [item for item, _ in converted], 1 + sum(count for _, count in converted)
    return _cel_scalar(value), 1


def _cel_map(value: dict[Any, Any]) -> tuple[dict[Any, Any], int]:
    result: dict[Any, Any] = {}
    count = 1
    for key, item in value.items():
        converted, inner = _cel_value(item)
        result[_cel_key(key)] = converted
        count += inner
    return result, count


def _cel_key(key: Any) -> Any:
    if isinstance(key, str | bool) or (isinstance(key, int) and key in _INT64):
        return key
    return "null" if key is None else str(_cel_scalar(key))


def _cel_scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | float | bytes | datetime.datetime):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)
