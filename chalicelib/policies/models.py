"""The policies tables: one item per policy, and one claim per policy name (uniqueness).

A policy item holds two revisions side by side: the approved one, which is in force,
and the draft awaiting approval. Editing an approved policy writes only the draft, so
the approved revision keeps being enforced, unchanged, until the draft is approved.
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
class PolicyItem(Model):
    """A policy of one tenant with its approved and draft revisions."""

    class Meta:
        table_name = table_name("policies")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    #: The name as compared for uniqueness and prefix filters (case-folded).
    name_key = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    #: ``rollout`` or ``publish``: fixed at creation.
    scope = UnicodeAttribute()
    #: The ETag: a new random value on every change.
    revision = UnicodeAttribute()
    #: The revision in force and the one awaiting approval (see :mod:`.lifecycle`).
    approved = JSONAttribute(null=True)
    draft = JSONAttribute(null=True)
    #: The number given to the latest revision (revisions count from 1).
    last_number = NumberAttribute(default=0)
    disabled_at = UTCDateTimeAttribute(null=True)
    disabled_by = JSONAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    created_by = JSONAttribute()
    updated_at = UTCDateTimeAttribute()


@table
class PolicyNameItem(Model):
    """The claim of a name by a policy (a conditional put makes names unique)."""

    class Meta:
        table_name = table_name("policy-names")

    tenant = UnicodeAttribute(hash_key=True)
    name_key = UnicodeAttribute(range_key=True)
    policy_id = UnicodeAttribute()
