"""The rollouts table: one item per rollout of a tenant.

The item is the rollout's whole state: what it moves where, its strategy, its state and
history, its waves (cohort sizes and key thresholds fixed at the start, when each opened) and
the progress its last evaluation found. Operators' actions change ``revision`` (the ETag);
the execution's progress snapshots do not, so an operator's If-Match is not broken by a
rollout merely advancing.
"""

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
class RolloutItem(Model):
    """One rollout of one tenant."""

    class Meta:
        table_name = table_name("rollouts")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    revision = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    group_id = UnicodeAttribute()
    configuration_id = UnicodeAttribute()
    version = NumberAttribute()
    #: The version the group was on when the rollout started (``configurationId``,
    #: ``version``), what a rollback returns agents to; None before the start, or when the
    #: group had none.
    previous = JSONAttribute(null=True)
    #: The strategy in its wire form, every default filled in.
    strategy = JSONAttribute()
    state = UnicodeAttribute()
    #: Each wave's cumulative size and key threshold (see rollouts/waves.py), from the start.
    sizes = JSONAttribute(null=True)
    thresholds = JSONAttribute(null=True)
    #: When each open wave opened (ISO 8601), and how many waves the gate has cleared.
    opened = JSONAttribute(default=list)
    cleared = NumberAttribute(default=0)
    #: The last evaluation's findings: per wave and overall, with when.
    progress = JSONAttribute(null=True)
    #: Every state change: at, action, by (actor), reason, from, to.
    history = JSONAttribute(default=list)
    #: Why it failed, paused or rolled back on its own (the breach or the task error).
    cause = UnicodeAttribute(null=True)
    #: The execution driving it, and the token its Hold task waits on while paused.
    execution = UnicodeAttribute(null=True)
    executions = NumberAttribute(default=0)
    task_token = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    created_by = JSONAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()
