"""Where an agent stands with its group's configuration: table-driven (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.agents.remote_config import (
    APPLIED,
    FAILED,
    PENDING,
    Desired,
    Standing,
    assess,
    files_hash,
)

V1 = Desired("cfg", 1, "aa" * 32, files_hash({"c.yaml": ("application/yaml", b"a: 1\n")}))
V2 = Desired("cfg", 2, "bb" * 32, files_hash({"c.yaml": ("application/yaml", b"a: 2\n")}))
OTHER_CONFIG = Desired("cfg-2", 1, "cc" * 32, files_hash({"d.yaml": ("text/plain", b"x")}))
OTHER_EFFECTIVE = "ee" * 32


def report(desired: Desired, status: str, error: str = "") -> dict[str, Any]:
    return {"lastRemoteConfigHash": desired.config_hash, "status": status,
            "errorMessage": error}


def on(desired: Desired, status: str, **more: Any) -> Standing:
    return Standing(configuration_id=desired.configuration_id, version=desired.version,
                    status=status, **more)


def test_files_hash_depends_on_names_types_and_bodies_not_their_order() -> None:
    one = files_hash({"a": ("text/plain", b"x"), "b": ("text/plain", b"y")})
    assert one == files_hash({"b": ("text/plain", b"y"), "a": ("text/plain", b"x")})
    assert one != files_hash({"a": ("text/plain", b"y"), "b": ("text/plain", b"x")})
    assert one != files_hash({"a": ("application/yaml", b"x"), "b": ("text/plain", b"y")})
    # the length prefix keeps a name and a body from running into each other
    assert files_hash({"ab": ("t", b"c")}) != files_hash({"a": ("t", b"bc")})


# (case, stored, desired, report, effective, effective reported) →
# (send?, status, applied version, drifted, events)
CASES = [
    ("no desired configuration: nothing to do", Standing(), None, None, None, False,
     (False, None, None, None, [])),
    ("a new desired version is sent and pending", Standing(), V1, None, None, False,
     (True, PENDING, None, False, [])),
    ("still pending: the agent reports another config", on(V1, PENDING),
     V1, report(V2, "APPLIED"), None, False, (True, PENDING, None, False, [])),
    ("applying is not resent", on(V1, PENDING), V1, report(V1, "APPLYING"), None, False,
     (False, "applying", None, False, [])),
    ("applied with its effective config", on(V1, PENDING), V1, report(V1, "APPLIED"),
     OTHER_EFFECTIVE, True, (False, APPLIED, 1, False, ["agent.config.applied"])),
    ("failed is recorded with its message and not resent", on(V1, PENDING), V1,
     report(V1, "FAILED", "bad key"), None, False,
     (False, FAILED, None, False, ["agent.config.failed"])),
    ("a new version: the agent still runs the one it applied",
     on(V1, APPLIED, applied_version=1), V2, report(V1, "APPLIED"), OTHER_EFFECTIVE, False,
     (True, PENDING, 1, False, [])),
    ("another configuration: nothing of it is applied yet",
     on(V1, APPLIED, applied_version=1), OTHER_CONFIG, report(V1, "APPLIED"),
     OTHER_EFFECTIVE, False, (True, PENDING, None, False, [])),
    ("the effective config changes after the apply: drift",
     on(V1, APPLIED, applied_version=1, baseline=OTHER_EFFECTIVE, drifted=False), V1,
     report(V1, "APPLIED"), "dd" * 32, True,
     (False, APPLIED, 1, True, ["agent.config.drifted"])),
    ("an effective config equal to the desired files is never drift",
     on(V1, APPLIED, applied_version=1, baseline=OTHER_EFFECTIVE, drifted=True), V1,
     report(V1, "APPLIED"), V1.files_hash, True, (False, APPLIED, 1, False, [])),
    ("applied, effective config unknown yet: no drift judged", on(V1, PENDING), V1,
     report(V1, "APPLIED"), "cc" * 32, False,
     (False, APPLIED, 1, False, ["agent.config.applied"])),
]


@pytest.mark.parametrize(("stored", "desired", "reported", "effective", "fresh", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_assess(stored: Standing, desired: Desired | None, reported: dict[str, Any] | None,
                effective: str | None, fresh: bool, expected: tuple[Any, ...]) -> None:
    outcome = assess(stored, desired, reported, effective, effective_reported=fresh,
                     accepts_remote_config=True)
    send, status, applied, drifted, events = expected
    assert outcome.send is send
    assert outcome.updates.get("config_status", stored.status) == status
    assert outcome.updates.get("applied_version", stored.applied_version) == applied
    assert outcome.updates.get("drifted", stored.drifted) == drifted
    assert outcome.events == events


def test_an_agent_that_does_not_accept_remote_config_is_sent_nothing() -> None:
    outcome = assess(Standing(), V1, None, None, effective_reported=False,
                     accepts_remote_config=False)
    assert outcome.send is False
    assert outcome.updates["config_status"] == PENDING


def test_a_steady_heartbeat_of_an_applied_agent_changes_nothing() -> None:
    stored = on(V1, APPLIED, applied_version=1, baseline=OTHER_EFFECTIVE, drifted=False)
    outcome = assess(stored, V1, report(V1, "APPLIED"), OTHER_EFFECTIVE,
                     effective_reported=False, accepts_remote_config=True)
    assert (outcome.updates, outcome.changed, outcome.events, outcome.send) == ({}, {}, [],
                                                                                False)
