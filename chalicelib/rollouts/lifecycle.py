"""A rollout's states and the moves between them.

``created`` → ``running`` ⇄ ``paused`` → ``succeeded`` | ``failed`` | ``aborted`` |
``rolled-back``. Operators start, pause, resume, abort and roll back; the rollout's own
execution completes it, fails it (a task that failed for good), pauses it or rolls it back
(a breach of a wave's failure budget, per the strategy). A failed rollout keeps its group
until it is rolled back or aborted, so the operator decides what its agents run.

Pure: no I/O.
"""

from __future__ import annotations

#: Every state; the ones no move leaves.
STATES = ("created", "running", "paused", "succeeded", "failed", "aborted", "rolled-back")
FINAL = frozenset({"succeeded", "aborted", "rolled-back"})
#: States in which the rollout holds its group (one such rollout per group).
ACTIVE = frozenset({"running", "paused", "failed"})

#: action → (states it may be taken from, the state it leads to).
MOVES: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"created"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "abort": (frozenset({"created", "running", "paused", "failed"}), "aborted"),
    "rollback": (frozenset({"running", "paused", "failed"}), "rolled-back"),
    "complete": (frozenset({"running"}), "succeeded"),
    "fail": (frozenset({"running", "paused"}), "failed"),
    "breach-pause": (frozenset({"running"}), "paused"),
    "breach-rollback": (frozenset({"running"}), "rolled-back"),
}
#: What an operator may ask for (the others are the execution's).
OPERATOR_ACTIONS = ("start", "pause", "resume", "abort", "rollback")


class IllegalMove(ValueError):
    """The action cannot be taken from the rollout's current state."""

    def __init__(self, action: str, state: str) -> None:
        allowed = sorted(MOVES[action][0]) if action in MOVES else []
        super().__init__(f"the rollout is {state}; '{action}' is only possible when it is "
                         + " or ".join(allowed))
        self.action, self.state = action, state


def move(state: str, action: str) -> str:
    """The state ``action`` leads to from ``state``, or :class:`IllegalMove`."""
    sources, target = MOVES.get(action, (frozenset(), ""))
    if state not in sources:
        raise IllegalMove(action, state)
    return target
