"""Domain events: CloudEvents 1.0 envelopes in the shared events table.

An event is written in the same DynamoDB transaction as the change that caused
it (:func:`event_item` gives the item to add); the table's stream feeds live
updates. Within a tenant, ``sequence`` orders events and lets a client resume.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import JSONAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.db import table, table_name
from chalicelib.core.settings import settings

SOURCE = "/ampora"
SPEC_VERSION = "1.0"


@table
class EventRecord(Model):
    """One event of one tenant, kept for the replay window."""

    class Meta:
        table_name = table_name("events")
        stream_view_type = "NEW_IMAGE"

    tenant = UnicodeAttribute(hash_key=True)
    sequence = UnicodeAttribute(range_key=True)
    envelope = JSONAttribute()
    expires_at = TTLAttribute()


#: Events this process wrote, so that its events of one millisecond (one transaction's, say)
#: keep the order they were made in.
_written = itertools.count()


def sequence_for(at: datetime, random_hex: str) -> str:
    """A sortable per-tenant sequence: milliseconds since the epoch, then this process's
    count of events (their order within a millisecond), then randomness (writers elsewhere
    in the same millisecond: their order among each other is arbitrary)."""
    return f"{int(at.timestamp() * 1000):013d}-{next(_written) % 16**8:08x}{random_hex}"


def envelope(
    *, event_id: str, event_type: str, subject: str, data: dict[str, Any], at: datetime,
    tenant: str, sequence: str,
) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON envelope of one event."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": SOURCE,
        "type": event_type,
        "time": at.isoformat().replace("+00:00", "Z"),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
        "tenant": tenant,
        "sequence": sequence,
    }


def event_item(
    *, tenant: str, event_type: str, subject: str, data: dict[str, Any], at: datetime,
    event_id: str, random_hex: str,
) -> EventRecord:
    """The events-table item to write in the same transaction as its change."""
    sequence = sequence_for(at, random_hex)
    body = envelope(event_id=event_id, event_type=event_type, subject=subject, data=data,
                    at=at, tenant=tenant, sequence=sequence)
    expires = at + timedelta(days=settings().event_retention_days)
    return EventRecord(tenant=tenant, sequence=sequence, envelope=body, expires_at=expires)
