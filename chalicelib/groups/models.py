"""The groups tables: one item per group, and one claim per group name (uniqueness)."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


@table
class GroupItem(Model):
    """A group of one tenant; soft-deleted groups keep their item with ``deleted_at``."""

    class Meta:
        table_name = table_name("groups")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    #: The name as compared for uniqueness and prefix filters (case-folded).
    name_key = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    labels = JSONAttribute(default=dict)
    revision = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    deleted_at = UTCDateTimeAttribute(null=True)
    #: The published configuration version the group's agents should run (None: none yet).
    desired_configuration_id = UnicodeAttribute(null=True)
    desired_version = NumberAttribute(null=True)
    #: The rollout holding the group (one at a time), and the split of its agents between the
    #: desired version and a rollout's version: ``id``, ``configurationId``, ``version`` and
    #: ``threshold`` (agents whose key in the rollout is under it get the rollout's version;
    #: see rollouts/waves.py). An aborted rollout leaves its split, no longer held.
    active_rollout_id = UnicodeAttribute(null=True)
    rollout = JSONAttribute(null=True)


@table
class GroupNameItem(Model):
    """The claim of a name by a live group: written with a does-not-exist condition.

    A secondary index cannot enforce uniqueness; a conditional put of this item in
    the same transaction as the group does. Deleting a group releases its name.
    """

    class Meta:
        table_name = table_name("group-names")

    tenant = UnicodeAttribute(hash_key=True)
    name_key = UnicodeAttribute(range_key=True)
    group_id = UnicodeAttribute()
