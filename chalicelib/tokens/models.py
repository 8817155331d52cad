"""The personal access tokens table: one item per token, found by its hash through an index."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


class ByHash(GlobalSecondaryIndex["ApiTokenItem"]):
    """Finds a token by the SHA-256 of its secret."""

    class Meta:
        index_name = "by-hash"
        projection = KeysOnlyProjection()

    token_hash = UnicodeAttribute(hash_key=True)


@table
class ApiTokenItem(Model):
    """A personal access token of one tenant (never the token itself)."""

    class Meta:
        table_name = table_name("api-tokens")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    token_hash = UnicodeAttribute()
    hint = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute()
    allowed_endpoints = ListAttribute(of=UnicodeAttribute, null=True)
    created_at = UTCDateTimeAttribute()
    created_by = JSONAttribute()
    expires_at = UTCDateTimeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)
    revoked_by = JSONAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    by_hash = ByHash()
