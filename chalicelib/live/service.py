"""Live-updates use cases: a client connects, sends messages, disconnects; events reach the
connections that follow them.

Connecting verifies the ``access_token`` exactly as a REST call's bearer token (OIDC or
personal access token: role and tenant come from it); a connection that cannot be
authenticated is refused and nothing is stored. Events are written with their change to the
shared events table; its stream drives :func:`fan_out`, which reads each tenant's connections
once per batch (one query, whatever the number of event types followed) and posts each event
to every connection of the tenant that follows it and whose role may read it. A client that
missed events subscribes again with ``since``: what the events table still holds after that
sequence is replayed first.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.core.access import Role
from chalicelib.core.auth import authenticate
from chalicelib.core.db import condition_failed
from chalicelib.core.deps import deps
from chalicelib.core.events import EventRecord
from chalicelib.core.problems import Forbidden, Unauthorized
from chalicelib.core.settings import settings
from chalicelib.live import protocol, sender
from chalicelib.live.models import ConnectionItem
from chalicelib.live.protocol import ProtocolError, Subscribe, Subscription

#: API Gateway closes a websocket connection after two hours at most.
CONNECTION_SECONDS = 2 * 3600
#: A client that missed more events than this re-reads over REST instead.
MAX_REPLAY = 1000
#: Replays start this long before ``since``: writers elsewhere may have written events of the
#: same moments that sort just before it. Clients skip the ids they already have.
REPLAY_OVERLAP_MS = 2000
#: Posts of one event in flight at once.
POST_CONCURRENCY = 16


def connect(connection_id: str, token: str | None, endpoint: str, source_ip: str = "") -> None:
    """Admit a connection whose ``access_token`` is a valid bearer token (else the problem,
    and nothing is stored)."""
    if not token:
        raise Unauthorized("connect with ?access_token=<an OIDC token or a personal access "
                           "token>")
    principal = authenticate(f"Bearer {token}", source_ip=source_ip)
    if principal.allowed_endpoints is not None:
        raise Forbidden("this personal access token is limited to some REST endpoints; the "
                        "live-updates hub is not one of them")
    now = deps().clock.now()
    item = ConnectionItem(
        connection_id=connection_id, tenant=principal.tenant, subject=principal.subject,
        role=int(principal.role), token_id=principal.token_id, endpoint=endpoint,
        subscription=Subscription().to_wire(), connected_at=now,
        expires_at=now + timedelta(seconds=CONNECTION_SECONDS))
    try:
        item.save(condition=ConnectionItem.connection_id.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        raise Unauthorized("this connection is already open") from exc


def disconnect(connection_id: str) -> None:
    """Forget a closed connection."""
    with contextlib.suppress(DeleteError):
        ConnectionItem(connection_id=connection_id).delete()


def _connection(connection_id: str) -> ConnectionItem | None:
    try:
        return ConnectionItem.get(connection_id, consistent_read=True)
    except ConnectionItem.DoesNotExist:
        return None


def receive(connection_id: str, text: str | None) -> list[str]:
    """Answer one client message: the frames to send back (an ack, a pong, replayed events,
    or an error frame: a bad message never closes the connection)."""
    item = _connection(connection_id)
    if item is None:
        return [protocol.error("this connection is not known: connect again",
                               code="unknown-connection")]
    try:
        message = protocol.parse(text)
        if isinstance(message, protocol.Ping):
            return [protocol.control("pong")]
        current = Subscription.from_wire(item.subscription)
        changed = protocol.subscribed(current, message)
        replay = _replay(item, changed, message.since) \
            if isinstance(message, Subscribe) and message.since else []
    except ProtocolError as exc:
        return [protocol.error(str(exc), **getattr(exc, "fields", {}))]
    item.update(actions=[ConnectionItem.subscription.set(changed.to_wire())])
    kind = "subscribe" if isinstance(message, Subscribe) else "unsubscribe"
    return [protocol.control("ack", of=kind, subscription=changed.to_wire()), *replay]


class _Resync(ProtocolError):
    """The client must re-read over REST: what it missed is gone, or too much."""

    def __init__(self, message: str, since: str) -> None:
        super().__init__(message)
        self.fields = {"code": "resync", "since": since}


def _replay(item: ConnectionItem, subscription: Subscription, since: str) -> list[str]:
    """The events after ``since`` that the connection follows, oldest first."""
    now = deps().clock.now()
    kept_from = now - timedelta(days=settings().event_retention_days)
    at = datetime.fromtimestamp(int(since.split("-")[0]) / 1000, tz=now.tzinfo)
    if at < kept_from:
        raise _Resync(f"events before {kept_from.isoformat()} are no longer kept: re-read the "
                      "resources over REST, then subscribe without 'since'", since)
    overlap = f"{max(int(since.split('-')[0]) - REPLAY_OVERLAP_MS, 0):013d}"
    found = EventRecord.query(item.tenant, EventRecord.sequence > overlap, consistent_read=True,
                              limit=MAX_REPLAY + 1)
    envelopes = [record.envelope for record in found if record.sequence != since]
    if len(envelopes) > MAX_REPLAY:
        raise _Resync(f"more than {MAX_REPLAY} events were missed: re-read the resources over "
                      "REST, then subscribe without 'since'", since)
    role = Role(int(item.role))
    return [protocol.event_frame(envelope) for envelope in envelopes
            if protocol.wanted(subscription, role, envelope)]


@dataclass
class FanOut:
    """What one batch of events cost: tenants' connection reads and management API calls."""

    events: int = 0
    connection_queries: int = 0
    connections_read: int = 0
    posts: int = 0
    gone: int = 0
    throttled: int = 0
    by_tenant: dict[str, int] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """For the function's result and logs."""
        return {"events": self.events, "connectionQueries": self.connection_queries,
                "connectionsRead": self.connections_read, "posts": self.posts,
                "gone": self.gone, "throttled": self.throttled}


def envelopes_of(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The events a DynamoDB stream batch of the events table inserted (TTL expiries and
    other changes are not events to send)."""
    found = []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        image = (record.get("dynamodb") or {}).get("NewImage")
        if image:
            found.append(EventRecord.from_raw_data(image).envelope)
    return found


def fan_out(envelopes: Iterable[Mapping[str, Any]]) -> FanOut:
    """Send each event to the connections that follow it; forget connections that are gone."""
    stats = FanOut()
    by_tenant: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for envelope in envelopes:
        by_tenant[str(envelope.get("tenant", ""))].append(envelope)
    for tenant, events in by_tenant.items():
        connections = list(ConnectionItem.by_tenant.query(tenant))
        stats.connection_queries += 1
        stats.connections_read += len(connections)
        for envelope in protocol.ordered(events):
            stats.events += 1
            _send(envelope, connections, stats)
    return stats


def _send(envelope: Mapping[str, Any], connections: list[ConnectionItem],
          stats: FanOut) -> None:
    """Post one event to the connections that follow it, :data:`POST_CONCURRENCY` at a time
    (each post is a round trip to API Gateway); forget those that are gone."""
    role_of = {id(c): Role(int(c.role)) for c in connections}
    targets = [c for c in connections
               if protocol.wanted(Subscription.from_wire(c.subscription), role_of[id(c)],
                                  envelope)]
    if not targets:
        return
    frame = protocol.event_frame(envelope)

    def post(connection: ConnectionItem) -> str:
        return sender.post(connection.endpoint, connection.connection_id, frame)

    with ThreadPoolExecutor(max_workers=min(POST_CONCURRENCY, len(targets))) as pool:
        outcomes = list(pool.map(post, targets))
    for connection, outcome in zip(targets, outcomes, strict=True):
        stats.posts += 1
        if outcome == "gone":
            stats.gone += 1
            connections.remove(connection)
            disconnect(connection.connection_id)
        elif outcome == "throttled":
            stats.throttled += 1


def drop_token(token_id: str) -> int:
    """Close every connection opened with a personal access token (it was revoked); how many
    were closed."""
    closed = 0
    for key in ConnectionItem.by_token.query(token_id):
        item = _connection(key.connection_id)
        if item is None:
            continue
        sender.close(item.endpoint, item.connection_id)
        disconnect(item.connection_id)
        closed += 1
    return closed
