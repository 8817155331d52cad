"""The connections table: one item per open websocket connection to the live-updates hub.

Keyed by API Gateway's connection id (every websocket event names only that). The fan-out
finds a tenant's connections through the by-tenant index (subscriptions projected, so one
query serves every event of a batch), and a revoked personal access token's connections
through the keys-only by-token index. Items expire two hours after connecting, API Gateway's
longest connection, in case a disconnect was never delivered.
"""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


class ByTenant(GlobalSecondaryIndex["ConnectionItem"]):
    """A tenant's connections, with what they follow."""

    class Meta:
        index_name = "by-tenant"
        projection = AllProjection()

    tenant = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)


class ByToken(GlobalSecondaryIndex["ConnectionItem"]):
    """The connections opened with one personal access token."""

    class Meta:
        index_name = "by-token"
        projection = KeysOnlyProjection()

    token_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)


@table
class ConnectionItem(Model):
    """One open connection: who opened it, where to post to it, what it follows."""

    class Meta:
        table_name = table_name("connections")

    connection_id = UnicodeAttribute(hash_key=True)
    tenant = UnicodeAttribute()
    subject = UnicodeAttribute()
    #: The caller's role (1 Viewer, 2 Operator, 3 Admin): what it may receive.
    role = NumberAttribute()
    #: The personal access token it connected with (None: an OIDC token).
    token_id = UnicodeAttribute(null=True)
    #: The management API's endpoint for this connection (``https://<domain>/<stage>``).
    endpoint = UnicodeAttribute()
    subscription = JSONAttribute(null=True)
    connected_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()
    by_tenant = ByTenant()
    by_token = ByToken()
