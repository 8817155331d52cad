"""What Ampora reads out of an agent's description: type, version, host and display name.

Attribute names follow the OpenTelemetry resource semantic conventions, as the
OpAMP specification asks agents to: ``service.name`` names the agent type,
``service.version`` its build, ``host.name`` the machine it runs on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
HOST_NAME = "host.name"


@dataclass(frozen=True)
class Derived:
    """The description fields the agents list filters on."""

    agent_type: str | None
    agent_version: str | None
    host_name: str | None

    @property
    def name(self) -> str | None:
        """The name an operator knows the agent by: its host, else its type."""
        return self.host_name or self.agent_type


def _text(attributes: Mapping[str, Any], key: str) -> str | None:
    value = attributes.get(key)
    return None if value is None or value == "" else str(value)


def derive(identifying: Mapping[str, Any], non_identifying: Mapping[str, Any]) -> Derived:
    """Type and version from the identifying attributes; host from either set."""
    host = _text(non_identifying, HOST_NAME) or _text(identifying, HOST_NAME)
    return Derived(agent_type=_text(identifying, SERVICE_NAME),
                   agent_version=_text(identifying, SERVICE_VERSION), host_name=host)


def digest(value: Any) -> str:
    """A stable short hash of a JSON-able value (to notice changes without comparing bodies)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
