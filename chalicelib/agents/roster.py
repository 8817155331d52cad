"""A group's roster: what every member agent is, packed many agents to an item.

Policies (dry runs, rollout start checks) look at every agent of a group at once. Read agent
by agent, a 100,000-agent group is 100,000 items of about 2 KB; the roster holds the same
facts, compressed, in at most :data:`SHARDS` items per group (an agent's shard is a stable
hash of its id), so the whole group is a few pages of one query.

An entry is the agent's API view (wire form) limited to :data:`ENTRY_FIELDS`: what it is and
where it stands with its configuration, not its presence. Online, status and last-seen change
with heartbeats, which are never worth a roster write; readers that need them join them from
the agent items (``agents.service.group_views``). An entry whose JSON exceeds
:data:`MAX_ENTRY_BYTES` (agents describing themselves with huge attributes) is kept as a stub
with ``truncated: true``, and readers fetch that agent's item instead.

An agent's write and its roster change commit in one transaction, the shard conditioned on
its revision (see ``agents.service``); this module is the pure part: entries, shards, packing.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Shards per group: an agent's roster write rewrites its shard, so shards stay small (about
#: 100 agents each at 100,000 agents), and a group of a million agents still fits.
SHARDS = 1024
#: An entry whose JSON is longer is kept as a stub (readers fetch the agent's item).
MAX_ENTRY_BYTES = 8192
#: A shard's packed members stay under this (DynamoDB items hold at most 400 KB).
MAX_SHARD_BYTES = 380_000
#: The view fields an entry keeps (wire names).
ENTRY_FIELDS = ("id", "groupId", "labels", "name", "type", "version", "hostName",
                "description", "capabilities", "health", "configuration")
#: The agent item attributes the entry is made of: a write touching none of them leaves the
#: roster as it is (a heartbeat's last-seen, sequence number, certificate).
SOURCE_ATTRIBUTES = frozenset({
    "group_id", "labels", "agent_type", "agent_version", "host_name", "name", "identifying",
    "non_identifying", "capabilities", "health", "desired_configuration_id", "desired_version",
    "applied_version", "config_status", "config_error", "drifted"})


class ShardFull(ValueError):
    """A shard cannot hold one more entry, even as a stub."""


def entry(view: Mapping[str, Any]) -> dict[str, Any]:
    """The roster entry of an agent, from its API view (wire form)."""
    kept = {name: view.get(name) for name in ENTRY_FIELDS}
    if len(_dumps(kept)) > MAX_ENTRY_BYTES:
        return stub(kept)
    return kept


def stub(kept: Mapping[str, Any]) -> dict[str, Any]:
    """The entry that only says which agent it stands for: readers fetch its item."""
    return {"id": kept["id"], "groupId": kept["groupId"], "truncated": True}


def shard_of(agent_id: str) -> int:
    """The agent's shard: stable across processes and releases."""
    digest = hashlib.blake2b(agent_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SHARDS


@dataclass(frozen=True)
class Change:
    """One shard's change for one agent: set its entry, or (``entry`` None) remove it."""

    group_id: str
    shard: int
    agent_id: str
    entry: dict[str, Any] | None


def changes(agent_id: str, before: dict[str, Any] | None,
            after: dict[str, Any] | None) -> list[Change]:
    """What the roster must change when an agent's entry goes from ``before`` to ``after``
    (None: not a member of any roster): nothing, a set, or a remove and a set (a move)."""
    if before == after:
        return []
    shard = shard_of(agent_id)
    found = []
    if before is not None and (after is None or before["groupId"] != after["groupId"]):
        found.append(Change(str(before["groupId"]), shard, agent_id, None))
    if after is not None:
        found.append(Change(str(after["groupId"]), shard, agent_id, after))
    return found


def unpack(blob: bytes | None) -> dict[str, dict[str, Any]]:
    """A shard's members by agent id."""
    if not blob:
        return {}
    members: dict[str, dict[str, Any]] = json.loads(zlib.decompress(blob))
    return members


def pack(members: Mapping[str, Mapping[str, Any]]) -> bytes:
    """A shard's members, compressed."""
    return zlib.compress(_dumps(members), 6)


def applied(members: dict[str, dict[str, Any]], change: Change) -> bytes:
    """``members`` (changed in place) with ``change`` applied, packed. An entry that would
    overflow the shard is kept as a stub; :class:`ShardFull` if even that does not fit."""
    if change.entry is None:
        members.pop(change.agent_id, None)
        return pack(members)
    members[change.agent_id] = change.entry
    blob = pack(members)
    if len(blob) <= MAX_SHARD_BYTES:
        return blob
    members[change.agent_id] = stub(change.entry)
    blob = pack(members)
    if len(blob) > MAX_SHARD_BYTES:
        raise ShardFull(f"roster shard {change.shard} of group {change.group_id!r} is full")
    return blob


def shards(entries: Iterable[dict[str, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """Entries (of one group) sorted into their shards: for loading a whole roster at once."""
    found: dict[int, dict[str, dict[str, Any]]] = {}
    for one in entries:
        found.setdefault(shard_of(str(one["id"])), {})[str(one["id"])] = one
    return found


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()
