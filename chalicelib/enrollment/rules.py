"""The pure rules of bootstrap tokens: their format, status, lifetime and pool quota windows.

No I/O: everything here is a function of its arguments.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from chalicelib.core.token_format import TokenFormat

#: ``amp-bt.<base32 of 20 random bytes>.<base32 CRC-32>``: the PAT construction, another prefix.
FORMAT = TokenFormat("amp-bt.")
DEFAULT_TTL_SECONDS = 86_400
MAX_USES = 100_000
STATUSES = ("active", "revoked", "expired", "exhausted")


def status(*, revoked: bool, uses: int, max_uses: int, expires_at: datetime,
           now: datetime) -> str:
    """A token's status: revoked, else expired, else exhausted, else active.

    Revoked and expired tokens enroll no one, not even again; an exhausted one
    enrolls no new agent but still admits the agents it enrolled.
    """
    if revoked:
        return "revoked"
    if expires_at <= now:
        return "expired"
    if uses >= max_uses:
        return "exhausted"
    return "active"


def ttl_seconds(requested: int | None, maximum: int) -> int:
    """The lifetime to give a token: as requested, else a day (never above ``maximum``)."""
    if requested is not None:
        return requested
    return min(DEFAULT_TTL_SECONDS, maximum)


def hour_window(now: datetime) -> tuple[str, int]:
    """The quota window ``now`` falls in (UTC hour, as a key) and seconds until the next."""
    now = now.astimezone(UTC)
    start = now.replace(minute=0, second=0, microsecond=0)
    remaining = (start + timedelta(hours=1) - now).total_seconds()
    return start.strftime("%Y-%m-%dT%H"), max(1, math.ceil(remaining))


def enrollment_key(token_id: str, agent_id: str) -> str:
    """The key of the record that ``agent_id`` was enrolled by ``token_id``."""
    return f"{token_id}#{agent_id}"


def enrolled_agent(key: str) -> str:
    """The agent id of an enrollment record's key (see :func:`enrollment_key`)."""
    return key.partition("#")[2]


def quota_key(pool_id: str, window: str) -> str:
    """The key of a pool's issue counter for one hour."""
    return f"{pool_id}#{window}"
