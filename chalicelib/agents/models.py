"""The agents table: one item per agent of a tenant, keyed by its OpAMP instance uid.

The item is what a heartbeat reads (once, consistently) and, rarely, writes; it is
kept small so that read costs one capacity unit. A keys-only index by group
counts a group's members without touching the heartbeat path (its keys never
change on a heartbeat, so heartbeats cost no index writes).
"""

from __future__ import annotations

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


def group_key(tenant: str, group_id: str) -> str:
    """The by-group index key of a tenant's group."""
    return f"{tenant}#{group_id}"


class ByGroup(GlobalSecondaryIndex["AgentItem"]):
    """The agents of one group of one tenant."""

    class Meta:
        index_name = "by-group"
        projection = KeysOnlyProjection()

    group_key = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


@table
class AgentItem(Model):
    """One agent: its description and status as last reported, its group and certificate."""

    class Meta:
        table_name = table_name("agents")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    group_id = UnicodeAttribute()
    group_key = UnicodeAttribute()
    labels = MapAttribute[str, str](default=dict)
    enrolled_at = UTCDateTimeAttribute()
    enrolled_by = UnicodeAttribute(null=True)
    #: The enrolling token's expiry, and when it was revoked: so a steady heartbeat with that
    #: token reads only this item.
    token_expires_at = UTCDateTimeAttribute(null=True)
    token_revoked_at = UTCDateTimeAttribute(null=True)
    identifying = JSONAttribute(null=True)
    non_identifying = JSONAttribute(null=True)
    description_hash = UnicodeAttribute(null=True)
    agent_type = UnicodeAttribute(null=True)
    agent_version = UnicodeAttribute(null=True)
    host_name = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    capabilities = NumberAttribute(null=True)
    health = JSONAttribute(null=True)
    healthy = BooleanAttribute(null=True)
    health_hash = UnicodeAttribute(null=True)
    effective_config_hash = UnicodeAttribute(null=True)
    remote_config_status = JSONAttribute(null=True)
    remote_config_hash = UnicodeAttribute(null=True)
    sequence_num = NumberAttribute(null=True)
    last_seen_at = UTCDateTimeAttribute(null=True)
    disconnected_at = UTCDateTimeAttribute(null=True)
    offered_interval = NumberAttribute(null=True)
    cert_serial = UnicodeAttribute(null=True)
    cert_not_after = UTCDateTimeAttribute(null=True)
    cert_issued_at = UTCDateTimeAttribute(null=True)
    cert_revoked_at = UTCDateTimeAttribute(null=True)
    #: The leaf the agent held before its last renewal, accepted until the agent shows the new
    #: one (or the old one expires), so an agent whose renewal answer was lost is not locked out.
    previous_serial = UnicodeAttribute(null=True)
    previous_not_after = UTCDateTimeAttribute(null=True)
    #: Where the agent stands with its group's configuration (see agents/remote_config.py).
    desired_configuration_id = UnicodeAttribute(null=True)
    desired_version = NumberAttribute(null=True)
    applied_version = NumberAttribute(null=True)
    config_status = UnicodeAttribute(null=True)
    config_error = UnicodeAttribute(null=True)
    config_baseline = UnicodeAttribute(null=True)
    drifted = BooleanAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    by_group = ByGroup()


@table
class RosterShard(Model):
    """One shard of a group's roster (see agents/roster.py): its members' entries, packed.

    ``revision`` changes with every write, which is conditioned on the revision read; an
    empty shard is deleted.
    """

    class Meta:
        table_name = table_name("rosters")

    group_key = UnicodeAttribute(hash_key=True)
    shard = NumberAttribute(range_key=True)
    revision = UnicodeAttribute()
    members = BinaryAttribute(legacy_encoding=False)
    #: How many agents ``members`` holds.
    size = NumberAttribute()
