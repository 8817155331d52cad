"""Wire schemas of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from chalicelib.core.schema import Actor, Schema

Outcome = Literal["success", "refused", "error"]


class AuditEvent(Schema):
    """One audited state-changing request."""

    id: str
    time: datetime
    actor: Actor
    action: str = Field(description="The operation, e.g. 'apiTokens.revoke'.")
    resource_type: str
    resource_id: str | None
    outcome: Outcome
    status: int = Field(description="The HTTP status the request was answered with.")
    request_id: str | None
    source_ip: str | None
    method: str
    path: str


class AuditQuery(Schema):
    """Filters of the audit log (all optional, combined with AND)."""

    actor: str | None = Field(default=None, description="A user subject, or a PAT's name or id.")
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: Outcome | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
