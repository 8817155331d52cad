"""Tables of enrollment: bootstrap tokens, who they enrolled, pools and pools' hourly counts."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


class ByHash(GlobalSecondaryIndex["BootstrapTokenItem"]):
    """Finds a bootstrap token by the SHA-256 of its secret."""

    class Meta:
        index_name = "by-hash"
        projection = KeysOnlyProjection()

    token_hash = UnicodeAttribute(hash_key=True)


@table
class BootstrapTokenItem(Model):
    """A bootstrap token of one tenant (never the token itself) and how often it was used."""

    class Meta:
        table_name = table_name("bootstrap-tokens")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    token_hash = UnicodeAttribute()
    hint = UnicodeAttribute()
    name = UnicodeAttribute()
    group_id = UnicodeAttribute()
    labels = JSONAttribute()
    max_uses = NumberAttribute()
    uses = NumberAttribute(default=0)
    pool_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    created_by = JSONAttribute()
    expires_at = UTCDateTimeAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)
    revoked_by = JSONAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    by_hash = ByHash()


@table
class EnrollmentItem(Model):
    """That an agent was enrolled by a token (so re-enrolling it consumes no use)."""

    class Meta:
        table_name = table_name("bootstrap-enrollments")

    tenant = UnicodeAttribute(hash_key=True)
    #: ``<token id>#<agent id>``
    key = UnicodeAttribute(range_key=True)
    enrolled_at = UTCDateTimeAttribute()
    #: Gone once the token expires: it enrolls no one after that anyway.
    expires_at = TTLAttribute()


@table
class TokenPoolItem(Model):
    """A template that issues bootstrap tokens on demand, within an hourly quota."""

    class Meta:
        table_name = table_name("token-pools")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    group_id = UnicodeAttribute()
    labels = JSONAttribute()
    ttl_seconds = NumberAttribute()
    uses_per_token = NumberAttribute()
    quota_per_hour = NumberAttribute()
    created_at = UTCDateTimeAttribute()
    created_by = JSONAttribute()


@table
class PoolQuotaItem(Model):
    """How many tokens a pool issued in one UTC hour (a conditional counter)."""

    class Meta:
        table_name = table_name("token-pool-quotas")

    tenant = UnicodeAttribute(hash_key=True)
    #: ``<pool id>#<YYYY-MM-DDTHH>``
    key = UnicodeAttribute(range_key=True)
    issued = NumberAttribute(default=0)
    expires_at = TTLAttribute()
