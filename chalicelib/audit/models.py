"""The audit table: records of one tenant in time order, expired by TTL."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


@table
class AuditItem(Model):
    """One audited request. Written once, never updated."""

    class Meta:
        table_name = table_name("audit")

    tenant = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # "<ISO time>#<id>": time order, unique
    id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    actor_type = UnicodeAttribute()
    actor_id = UnicodeAttribute()
    actor_name = UnicodeAttribute()
    action = UnicodeAttribute()
    resource_type = UnicodeAttribute()
    resource_id = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute()
    status = NumberAttribute()
    request_id = UnicodeAttribute(null=True)
    source_ip = UnicodeAttribute(null=True)
    method = UnicodeAttribute()
    path = UnicodeAttribute()
    expires_at = TTLAttribute()
