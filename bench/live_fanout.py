"""Live updates: what fanning one event out to 1,000 subscribers costs.

On moto, ``--subscribers N`` connections (default 1,000) of one tenant follow ``rollout.*``
(half of them only for one group, by a filter), and 100 connections of another tenant follow
everything. A batch of ``--events E`` rollout events of the first tenant (default 100, the
stream's batch size) goes through ``chalicelib.live.service.fan_out``, the stream consumer's
own code, as the events table's stream would deliver it. Counted at the client libraries:
DynamoDB calls (pynamodb's dispatch) and management API calls (``post_to_connection``).

Reported per event: DynamoDB reads and posts, and the time; per batch: the connection reads.
Target (issue 7): the cost grows with subscribers, not with the number of event types; each
event costs one post per connection that follows it and no DynamoDB read of its own (a
tenant's connections are read once per batch).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import moto_env  # noqa: F401 - the project on sys.path, settings for moto: first

TENANT, OTHER = "bench", "other"
ENDPOINT = "https://bench1234.execute-api.us-east-1.amazonaws.com/prod"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def count_calls(seen: Counter[str]) -> None:
    """Count every DynamoDB call pynamodb makes and every management API call."""
    import botocore.client
    from pynamodb.connection.base import Connection

    dispatch = Connection.dispatch

    def counted(conn: Connection, operation_name: str, operation_kwargs: dict) -> Any:
        seen[f"dynamodb.{operation_name}"] += 1
        return dispatch(conn, operation_name, operation_kwargs)

    Connection.dispatch = counted  # type: ignore[method-assign,assignment]
    api_call = botocore.client.BaseClient._make_api_call

    def counted_api(client: Any, operation_name: str, params: dict) -> Any:
        if client.meta.service_model.service_name == "apigatewaymanagementapi":
            seen[f"management.{operation_name}"] += 1
            if str(params.get("ConnectionId", "")).startswith(OTHER):
                seen["management.other-tenant"] += 1
        return api_call(client, operation_name, params)

    botocore.client.BaseClient._make_api_call = counted_api  # type: ignore[method-assign]


def connections(tenant: str, count: int, group: str | None) -> None:
    """``count`` connections of ``tenant`` following rollouts (every second one only of
    ``group``, when given)."""
    from chalicelib.live.models import ConnectionItem

    with ConnectionItem.batch_write() as batch:
        for index in range(count):
            filters = {"groupId": group} if group and index % 2 else {}
            batch.save(ConnectionItem(
                connection_id=f"{tenant}-{index:06d}", tenant=tenant, subject=f"user-{index}",
                role=1, endpoint=ENDPOINT, connected_at=NOW,
                expires_at=NOW + timedelta(hours=2),
                subscription={"events": ["rollout.*"] if group else ["*"], "filter": filters}))


def events(count: int, groups: tuple[str, str]) -> list[dict[str, Any]]:
    """Rollout events of the first tenant, alternating between two groups."""
    from chalicelib.core.events import event_item

    return [event_item(tenant=TENANT, event_type="rollout.progress",
                       subject=f"rollouts/r{index % 3}",
                       data={"id": f"r{index % 3}", "groupId": groups[index % 2],
                             "waves": [{"applied": index}]},
                       at=NOW + timedelta(milliseconds=index), event_id=f"e{index}",
                       random_hex=f"{index:08x}").envelope for index in range(count)]


def main() -> None:
    """Fan a batch out and report its cost per event."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10)
    args = parser.parse_args()
    from moto import mock_aws

    seen: Counter[str] = Counter()
    with mock_aws():
        from chalicelib.bootstrap import all_models
        from chalicelib.core.db import create_tables
        from chalicelib.live import service

        create_tables(all_models())
        connections(TENANT, args.subscribers, group="web")
        connections(OTHER, 100, group=None)
        batch = events(args.events, ("web", "db"))
        count_calls(seen)
        start = time.perf_counter()
        stats = service.fan_out(batch)
        seconds = time.perf_counter() - start
    reads = sum(n for key, n in seen.items() if key.startswith("dynamodb."))
    posts = seen["management.PostToConnection"]
    per_event = args.events or 1
    # Every even connection follows every rollout event; odd ones only the "web" half.
    following = (args.subscribers + 1) // 2 + args.subscribers // 2 / 2
    print(f"live fan-out: {args.events} events, {args.subscribers:,} subscribers of the tenant "
          f"(+100 of another tenant), on moto")
    print(f"  DynamoDB calls for the batch:   {reads} ({dict(sorted(seen.items()))})")
    print(f"  DynamoDB reads per event:       {reads / per_event:.3f}")
    print(f"  posts (management API calls):   {posts:,}; per event {posts / per_event:,.1f} "
          f"(connections following each event on average: {following:,.0f} of "
          f"{args.subscribers:,})")
    print(f"  connections read per batch:     {stats.connections_read:,} in "
          f"{stats.connection_queries} query")
    print(f"  time: {seconds:.2f} s for the batch, {seconds / per_event * 1000:.1f} ms per "
          f"event, {seconds / max(posts, 1) * 1e6:.0f} µs per post (moto)")
    print(f"  posts to the other tenant's connections: {seen['management.other-tenant']}")


if __name__ == "__main__":
    main()
