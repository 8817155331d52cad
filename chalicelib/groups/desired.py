"""What configuration version a group's agents should run, as the OpAMP path reads it.

An agent runs its group's desired version, unless a rollout of the group has opened a wave
the agent is in (rollouts/waves.py): then it runs the rollout's version.

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
from chalicelib.rollouts.waves import key

#: How long a container trusts its copy of a group's desired configuration version.
CACHE_SECONDS = 60.0
_MAX_ENTRIES = 4096

#: A version: (configuration id, version number).
Version = tuple[str, int]
#: A rollout's split of the group: (rollout id, its version, key threshold).
Split = tuple[str, Version, int]
_cache: dict[tuple[str, str], tuple[float, tuple[Version | None, Split | None]]] = {}


def _read(tenant: str, group_id: str) -> tuple[Version | None, Split | None]:
    try:
        item = GroupItem.get(tenant, group_id, consistent_read=True,
                             attributes_to_get=["desired_configuration_id", "desired_version",
                                                "rollout"])
    except GroupItem.DoesNotExist:
        return None, None
    desired = None
    if item.desired_configuration_id is not None and item.desired_version is not None:
        desired = item.desired_configuration_id, int(item.desired_version)
    split = item.rollout
    if not split:
        return desired, None
    return desired, (str(split["id"]), (str(split["configurationId"]), int(split["version"])),
                     int(split["threshold"]))


def _group(tenant: str, group_id: str) -> tuple[Version | None, Split | None]:
    now = deps().monotonic()
    cached = _cache.get((tenant, group_id))
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    value = _read(tenant, group_id)
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
    _cache[(tenant, group_id)] = (now, value)
    return value


def desired_configuration(tenant: str, group_id: str, agent_id: str) -> Version | None:
    """(configuration id, version) the agent, a member of the group, should run, or None:
    the rollout's version when a rollout has opened a wave the agent is in, else the group's."""
    desired, split = _group(tenant, group_id)
    if split is not None and key(split[0], agent_id) < split[2]:
        return split[1]
    return desired


def forget(tenant: str | None = None, group_id: str | None = None) -> None:
    """Drop one group's cached answer (this container changed it), or all of them."""
    if tenant is None or group_id is None:
        _cache.clear()
    else:
        _cache.pop((tenant, group_id), None)
