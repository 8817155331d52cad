"""What configuration version a group's agents should run, as the OpAMP path reads it.

Every agent message needs its group's desired version; reading the group each time
would double the cost of a heartbeat. A container keeps each group's answer for
:data:`CACHE_SECONDS`, so a change reaches agents served by other containers within
that time (plus one heartbeat), and a warm container reads a group at most that often
whatever the number of its agents. This module imports no schemas (the agents' path
stays free of pydantic).
"""

from __future__ import annotations

from chalicelib.core.deps import deps
from chalicelib.groups.models import GroupItem

#: How long a container trusts its copy of a group's desired configuration version.
CACHE_SECONDS = 60.0
_MAX_ENTRIES = 4096
_cache: dict[tuple[str, str], tuple[float, tuple[str, int] | None]] = {}


def _read(tenant: str, group_id: str) -> tuple[str, int] | None:
    try:
        item = GroupItem.get(tenant, group_id, consistent_read=True,
                             attributes_to_get=["desired_configuration_id", "desired_version"])
    except GroupItem.DoesNotExist:
        return None
    if item.desired_configuration_id is None or item.desired_version is None:
        return None
    return item.desired_configuration_id, int(item.desired_version)


def desired_configuration(tenant: str, group_id: str) -> tuple[str, int] | None:
    """(configuration id, version) the group's agents should run, or None."""
    now = deps().monotonic()
    cached = _cache.get((tenant, group_id))
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    value = _read(tenant, group_id)
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
    _cache[(tenant, group_id)] = (now, value)
    return value


def forget(tenant: str | None = None, group_id: str | None = None) -> None:
    """Drop one group's cached answer (this container changed it), or all of them."""
    if tenant is None or group_id is None:
        _cache.clear()
    else:
        _cache.pop((tenant, group_id), None)
