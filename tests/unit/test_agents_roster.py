"""The roster's pure part: entries, shards, changes and packing."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.agents import roster

VIEW = {"id": "a1", "groupId": "web", "labels": {"env": "prod"}, "name": "web-1",
        "type": "otelcol", "version": "0.120.0", "hostName": "web-1", "description": None,
        "capabilities": ["ReportsStatus"], "health": None, "configuration": None,
        "status": "online", "online": True, "lastSeenAt": "2026-01-05T09:00:00Z",
        "certificate": None}


def test_an_entry_keeps_what_an_agent_is_not_where_it_stands() -> None:
    kept = roster.entry(VIEW)
    assert set(kept) == set(roster.ENTRY_FIELDS)
    assert "online" not in kept and "status" not in kept and "lastSeenAt" not in kept
    assert kept["labels"] == {"env": "prod"}


def test_an_entry_too_large_is_a_stub() -> None:
    view = {**VIEW, "description": {"nonIdentifyingAttributes": {"k": "v" * 10_000}}}
    assert roster.entry(view) == {"id": "a1", "groupId": "web", "truncated": True}


def test_shards_are_stable_and_in_range() -> None:
    ids = [f"{number:032x}" for number in range(2000)]
    shards = [roster.shard_of(agent_id) for agent_id in ids]
    assert all(0 <= shard < roster.SHARDS for shard in shards)
    assert shards == [roster.shard_of(agent_id) for agent_id in ids]
    assert roster.shard_of("0" * 32) == 177  # fixed across processes and releases
    assert len(set(shards)) > roster.SHARDS * 0.8  # spread, not piled up


ENTRY = {"id": "a1", "groupId": "web", "labels": {}}
MOVED = {"id": "a1", "groupId": "db", "labels": {}}
RELABELLED = {"id": "a1", "groupId": "web", "labels": {"env": "prod"}}


@pytest.mark.parametrize(("before", "after", "expected"), [
    (ENTRY, ENTRY, []),
    (None, ENTRY, [("web", ENTRY)]),
    (ENTRY, RELABELLED, [("web", RELABELLED)]),
    (ENTRY, MOVED, [("web", None), ("db", MOVED)]),
    (ENTRY, None, [("web", None)]),
])
def test_changes(before: Any, after: Any, expected: list[tuple[str, Any]]) -> None:
    found = roster.changes("a1", before, after)
    assert [(change.group_id, change.entry) for change in found] == expected
    assert all(change.shard == roster.shard_of("a1") and change.agent_id == "a1"
               for change in found)


def test_packing_round_trips() -> None:
    members = {"a1": ENTRY, "a2": {**ENTRY, "id": "a2"}}
    assert roster.unpack(roster.pack(members)) == members
    assert roster.unpack(None) == {} and roster.unpack(b"") == {}


def test_applying_sets_and_removes_entries() -> None:
    members: dict[str, Any] = {}
    blob = roster.applied(members, roster.Change("web", 1, "a1", ENTRY))
    assert roster.unpack(blob) == {"a1": ENTRY}
    blob = roster.applied(members, roster.Change("web", 1, "a1", None))
    assert roster.unpack(blob) == {} and members == {}


def test_an_entry_that_would_overflow_its_shard_is_kept_as_a_stub(monkeypatch: Any) -> None:
    members = {f"a{index}": {"id": f"a{index}", "groupId": "web", "n": index}
               for index in range(50)}
    limit = len(roster.pack(members)) + 40
    monkeypatch.setattr(roster, "MAX_SHARD_BYTES", limit)
    large = {"id": "z", "groupId": "web", "blob": "".join(f"{i:x}" for i in range(2000))}
    blob = roster.applied(members, roster.Change("web", 1, "z", large))
    assert len(blob) <= limit
    assert roster.unpack(blob)["z"] == {"id": "z", "groupId": "web", "truncated": True}


def test_a_full_shard_is_refused(monkeypatch: Any) -> None:
    monkeypatch.setattr(roster, "MAX_SHARD_BYTES", 10)
    with pytest.raises(roster.ShardFull):
        roster.applied({}, roster.Change("web", 1, "a1", ENTRY))


def test_entries_sort_into_their_shards() -> None:
    entries = [{"id": f"{number:032x}", "groupId": "web"} for number in range(300)]
    found = roster.shards(entries)
    assert sum(len(members) for members in found.values()) == 300
    for shard, members in found.items():
        assert all(roster.shard_of(agent_id) == shard for agent_id in members)
