"""The live-updates hub's wire protocol: what clients send, what they are sent, who sees what.

A client sends JSON text messages::

    {"type": "subscribe", "events": ["rollout.*", "agent.updated"],
     "filter": {"groupId": "..."}, "since": "<sequence>"}
    {"type": "unsubscribe", "events": ["agent.updated"]}     (no events: everything)
    {"type": "ping"}

and is sent control frames (``{"type": "ack" | "pong" | "error", ...}``) and events: each
event is its CloudEvents 1.0 JSON envelope (``specversion``, ``id``, ``source``, ``type``,
``time``, ``subject``, ``data``) with the tenant's ``sequence``; a client tells them apart by
``specversion``. An event too large for one websocket message is sent without ``data`` and
with ``dataref``, the REST path of its subject, to read instead.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.access import Role

#: At most this many patterns per subscription, and filter fields.
MAX_PATTERNS = 50
MAX_FILTERS = 10
#: A client message longer than this is refused (API Gateway allows 128 KB).
MAX_MESSAGE_BYTES = 32_768
#: Events whose JSON is longer are sent by reference (API Gateway's message limit is 128 KB).
MAX_EVENT_BYTES = 120_000
#: Event type families only some roles may follow, as the REST API shows their resources
#: (personal access tokens to Admins only); everything else is readable by every role, as
#: every resource is over REST.
RESTRICTED: dict[str, Role] = {"api-token.": Role.ADMIN}
#: A pattern: an event type, a family (``rollout.*``), or everything (``*``).
_PATTERN = re.compile(r"^(\*|[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)*(\.\*)?)$")
_FILTER_VALUE = (str, int, bool)
#: How a subject maps to its REST path, where it has one.
_REST = {"agents": "/api/agents", "groups": "/api/groups", "rollouts": "/api/rollouts",
         "configurations": "/api/configurations", "policies": "/api/policies",
         "api-tokens": "/api/api-tokens", "tokens": "/api/tokens"}


class ProtocolError(ValueError):
    """A client message the hub cannot take: answered with an error frame."""


@dataclass(frozen=True)
class Subscription:
    """What a connection follows: event type patterns and exact-match filters on the data
    (``subject`` filters the envelope's subject)."""

    patterns: tuple[str, ...] = ()
    filter: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """Its stored and acknowledged form."""
        return {"events": list(self.patterns), "filter": dict(self.filter)}

    @classmethod
    def from_wire(cls, stored: Mapping[str, Any] | None) -> Subscription:
        """From :meth:`to_wire`'s form."""
        stored = stored or {}
        return cls(tuple(stored.get("events") or ()), dict(stored.get("filter") or {}))


@dataclass(frozen=True)
class Subscribe:
    """Follow more event types (the filter replaces the previous one), and maybe replay what
    was missed since a sequence."""

    patterns: tuple[str, ...]
    filter: Mapping[str, Any]
    since: str | None = None


@dataclass(frozen=True)
class Unsubscribe:
    """Stop following some patterns (none given: all of them)."""

    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Ping:
    """Keep the connection alive and check it."""


Message = Subscribe | Unsubscribe | Ping


def parse(text: str | None) -> Message:
    """A client message, or :class:`ProtocolError` saying what is wrong with it."""
    if not text or len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"a message is a JSON object of at most {MAX_MESSAGE_BYTES} bytes")
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"the message is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError("the message must be a JSON object")
    kind = body.get("type")
    if kind == "ping":
        _only(body, {"type"})
        return Ping()
    if kind == "subscribe":
        _only(body, {"type", "events", "filter", "since"})
        return Subscribe(_patterns(body.get("events"), required=True), _filter(body.get("filter")),
                         _since(body.get("since")))
    if kind == "unsubscribe":
        _only(body, {"type", "events"})
        return Unsubscribe(_patterns(body.get("events"), required=False))
    raise ProtocolError("'type' must be one of subscribe, unsubscribe, ping")


def _only(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ProtocolError(f"unknown field(s): {', '.join(unknown)}")


def _patterns(value: Any, *, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value) or len(value) > MAX_PATTERNS:
        raise ProtocolError(f"'events' must be a list of 1 to {MAX_PATTERNS} event types or "
                            "patterns such as 'rollout.*'")
    for pattern in value:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern):
            raise ProtocolError(f"{pattern!r} is not an event type or a pattern such as "
                                "'rollout.*'")
    return tuple(dict.fromkeys(value))


def _filter(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_FILTERS or not all(
            isinstance(key, str) and isinstance(item, _FILTER_VALUE)
            for key, item in value.items()):
        raise ProtocolError(f"'filter' must map at most {MAX_FILTERS} data fields to a string, "
                            "number or boolean each")
    return dict(value)


def _since(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{13}-[0-9a-f]{1,32}", value):
        raise ProtocolError("'since' must be the 'sequence' of an event you received")
    return value


def subscribed(current: Subscription, message: Subscribe | Unsubscribe) -> Subscription:
    """The subscription after ``message``."""
    if isinstance(message, Subscribe):
        patterns = tuple(dict.fromkeys([*current.patterns, *message.patterns]))
        if len(patterns) > MAX_PATTERNS:
            raise ProtocolError(f"a connection follows at most {MAX_PATTERNS} patterns")
        return Subscription(patterns, dict(message.filter))
    if not message.patterns:
        return Subscription()
    kept = tuple(p for p in current.patterns if p not in message.patterns)
    return Subscription(kept, current.filter)


def readable(role: Role, event_type: str) -> bool:
    """Whether a caller of ``role`` may receive events of ``event_type``."""
    return all(role >= needed for prefix, needed in RESTRICTED.items()
               if event_type.startswith(prefix))


def _matches_type(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def wanted(subscription: Subscription, role: Role, envelope: Mapping[str, Any]) -> bool:
    """Whether a connection with ``subscription`` and ``role`` is sent this event."""
    event_type = str(envelope.get("type", ""))
    if not any(_matches_type(p, event_type) for p in subscription.patterns):
        return False
    if not readable(role, event_type):
        return False
    data = envelope.get("data") or {}
    for name, value in subscription.filter.items():
        found = envelope.get("subject") if name == "subject" else data.get(name)
        if found != value:
            return False
    return True


def event_frame(envelope: Mapping[str, Any]) -> str:
    """The message carrying an event: its envelope, or (too large) a reference to it."""
    text = json.dumps(envelope, separators=(",", ":"))
    if len(text.encode()) <= MAX_EVENT_BYTES:
        return text
    reference = {key: value for key, value in envelope.items() if key != "data"}
    reference["dataref"] = rest_path(str(envelope.get("subject", "")))
    return json.dumps(reference, separators=(",", ":"))


def rest_path(subject: str) -> str:
    """Where the REST API shows a subject (``rollouts/<id>`` → ``/api/rollouts/<id>``)."""
    kind, _, rest = subject.partition("/")
    base = _REST.get(kind)
    return f"{base}/{rest}" if base and rest else "/api/audit/events"


def control(kind: str, **fields: Any) -> str:
    """A control frame: ``ack``, ``pong`` or ``error``."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def error(message: str, code: str = "bad-message", **fields: Any) -> str:
    """An error frame (the connection stays open)."""
    return control("error", code=code, message=message, **fields)


def ordered(envelopes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Events in their tenant's sequence order."""
    return sorted(envelopes, key=lambda envelope: str(envelope.get("sequence", "")))
