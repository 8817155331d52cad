"""Wire schemas of the agents API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from chalicelib.core.schema import LabelSelector, Schema

Status = Literal["online", "offline", "revoked"]
ConfigStatus = Literal["pending", "applying", "applied", "failed"]


class AgentQuery(Schema):
    """Filters of the agent list (all must hold)."""

    group: str | None = Field(default=None, max_length=64, description="Group id.")
    status: Status | None = None
    labels: LabelSelector | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200,
                             description="Prefix of the host name or agent type.")
    type: str | None = Field(default=None, max_length=200,
                             description="Agent type: the service.name attribute.")
    version: str | None = Field(default=None, max_length=100,
                                description="Agent version: the service.version attribute.")
    health: Literal["healthy", "unhealthy"] | None = None
    config_status: ConfigStatus | None = Field(
        default=None, description="Where the agent stands with its group's configuration.")
    drifted: bool | None = Field(
        default=None, description="Whether its effective config changed since it applied "
                                  "the desired one.")


class AgentMove(Schema):
    """Where to move an agent."""

    group_id: str = Field(min_length=1, max_length=64)


class Health(Schema):
    """The agent's own health report (top level, and its components one level down)."""

    healthy: bool
    status: str
    last_error: str
    start_time_unix_nano: int | None = None
    status_time_unix_nano: int | None = None
    components: dict[str, Any] = Field(default_factory=dict)


class RemoteConfigStatus(Schema):
    """How the agent fared applying the remote configuration it was last offered."""

    last_remote_config_hash: str
    status: str
    error_message: str


class Description(Schema):
    """The attributes the agent describes itself with (OpenTelemetry resource attributes)."""

    identifying_attributes: dict[str, Any]
    non_identifying_attributes: dict[str, Any]


class Certificate(Schema):
    """The agent's mTLS client certificate, as last issued."""

    serial: str
    not_after: datetime | None
    revoked: bool
    revoked_at: datetime | None


class Configuration(Schema):
    """Where the agent stands with the configuration version its group wants it to run."""

    configuration_id: str
    version: int = Field(description="The desired version.")
    applied_version: int | None = Field(
        description="The version of this configuration the agent last applied.")
    status: ConfigStatus = Field(
        description="pending: sent, not acknowledged; applying; applied; failed (see error).")
    error: str | None = Field(description="The agent's message when it failed to apply.")
    drifted: bool = Field(description="Its effective config changed after it applied the "
                                      "desired version.")


class Agent(Schema):
    """An agent as an operator sees it."""

    id: str = Field(description="The OpAMP instance_uid, as 32 hex digits.")
    group_id: str
    labels: dict[str, str]
    name: str | None
    type: str | None
    version: str | None
    host_name: str | None
    status: Status
    online: bool
    last_seen_at: datetime | None
    disconnected_at: datetime | None
    enrolled_at: datetime
    enrolled_by_token: str | None
    description: Description | None
    capabilities: list[str]
    health: Health | None
    effective_config_hash: str | None
    remote_config_status: RemoteConfigStatus | None
    configuration: Configuration | None
    certificate: Certificate | None
