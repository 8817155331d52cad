"""The tenants table: one item per tenant with its settings and revision."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


@table
class TenantItem(Model):
    """A tenant and its settings."""

    class Meta:
        table_name = table_name("tenants")

    tenant = UnicodeAttribute(hash_key=True)
    revision = UnicodeAttribute()
    display_name = UnicodeAttribute(null=True)
    require_if_match = BooleanAttribute(default=False)
    heartbeat_interval_seconds = NumberAttribute(default=30)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
