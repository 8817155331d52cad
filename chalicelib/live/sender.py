"""Posting to websocket connections through API Gateway's management API (``@connections``).

Each connection is posted to at the endpoint it connected through. A connection that is gone
answers 410 (the caller forgets it); a throttled post is retried with a growing pause.
"""

from __future__ import annotations

import contextlib
import time
from functools import lru_cache
from typing import Any, Literal

from chalicelib.core.observability import logger
from chalicelib.core.settings import settings

#: Tries of a throttled post, and the first pause between them (doubled each time).
ATTEMPTS = 4
FIRST_PAUSE_SECONDS = 0.05
_THROTTLED = frozenset({"LimitExceededException", "TooManyRequestsException",
                        "ThrottlingException"})

Outcome = Literal["sent", "gone", "throttled"]


@lru_cache(maxsize=32)
def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint,
                        region_name=settings().region)


def post(endpoint: str, connection_id: str, message: str,
         sleep: Any = time.sleep) -> Outcome:
    """Send ``message`` to one connection: ``sent``, ``gone`` (410), or ``throttled`` (still
    refused after the retries)."""
    client = _client(endpoint)
    pause = FIRST_PAUSE_SECONDS
    for _attempt in range(ATTEMPTS):
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=message.encode())
            return "sent"
        except client.exceptions.GoneException:
            return "gone"
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code not in _THROTTLED:
                raise
            sleep(pause)
            pause *= 2
    logger.warning("a live-updates connection stayed throttled", extra={
        "connection": connection_id})
    return "throttled"


def close(endpoint: str, connection_id: str) -> None:
    """Close one connection (already gone: nothing to do)."""
    client = _client(endpoint)
    with contextlib.suppress(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=connection_id)


def forget() -> None:
    """Drop the clients (tests start a new moto)."""
    _client.cache_clear()
