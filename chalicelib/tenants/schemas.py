"""Wire schemas of tenant settings."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib.core.schema import Schema


class TenantSettingsInput(Schema):
    """The full settings of a tenant (``PUT`` replaces them; omitted fields take defaults)."""

    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    require_if_match: bool = Field(
        default=False, description="Refuse mutations of versioned resources without If-Match.")
    heartbeat_interval_seconds: int = Field(
        default=30, ge=5, le=3600, description="OpAMP heartbeat interval offered to agents.")


class Tenant(TenantSettingsInput):
    """A tenant as the API shows it."""

    id: str
    created_at: datetime
    updated_at: datetime
