"""How a rollout's waves stand, and what to do next: the health gate.

Each agent of an open wave stands ``applied`` (runs the new version and, if it reports
health, is healthy), ``unhealthy`` (applied but reports itself unhealthy), ``failed`` (its
apply failed), ``offline`` (not seen lately) or ``pending`` (not there yet). A wave's
failures are its failed and unhealthy agents, plus its offline agents when the strategy
counts them as failed (at once, or once the offline deadline has passed), plus its pending
agents once the wave timeout has passed. More failures than the wave's budget in any open
wave is a breach.

:func:`decide` answers, after a wave was opened and baked: ``breach``, ``wait`` (the bake is
not over, or agents are still on their way: evaluate again later), ``continue`` (open the
next wave) or ``done`` (the last wave is through).

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: How soon a rollout whose wave waits for agents looks again: at first, and at the latest.
#: In between, the pause grows with the time already waited (half of it), so a wave that
#: waits long costs a few evaluations, not one every few seconds.
POLL_SECONDS = 15
MAX_POLL_SECONDS = 600
STANDINGS = ("applied", "unhealthy", "failed", "offline", "pending")


@dataclass(frozen=True)
class Gate:
    """The parts of a strategy the gate applies."""

    bake_seconds: int
    budget_count: int | None = None
    budget_percent: float | None = None
    offline: Literal["skip", "wait", "fail"] = "skip"
    offline_deadline_seconds: int = 0
    wave_timeout_seconds: int = 3600

    def budget(self, members: int) -> int:
        """How many failures a wave of ``members`` agents may have."""
        if self.budget_count is not None:
            return self.budget_count
        return math.floor((self.budget_percent or 0) * members / 100 + 1e-9)


def standing(entry: Mapping[str, Any], online: bool | None, configuration_id: str,
             version: int) -> str:
    """Where an agent (a roster entry, see agents/roster.py) stands with the rollout's
    version; ``online`` None when not known (only pending agents are looked up)."""
    configuration = entry.get("configuration") or {}
    ours = configuration.get("configurationId") == configuration_id
    if ours and configuration.get("appliedVersion") == version \
            and configuration.get("status") == "applied":
        health = entry.get("health")
        return "unhealthy" if health and health.get("healthy") is False else "applied"
    if ours and configuration.get("version") == version and configuration.get("status") == "failed":
        return "failed"
    return "offline" if online is False else "pending"


@dataclass
class WaveCounts:
    """One wave's agents by standing; ``targeted`` is its size fixed at the start."""

    targeted: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STANDINGS, 0))

    @property
    def members(self) -> int:
        """How many agents of the group are in the wave now."""
        return sum(self.counts.values())

    def to_wire(self) -> dict[str, int]:
        """The wave's progress as the API shows it."""
        return {"targeted": self.targeted, "members": self.members, **self.counts}


def failures(wave: WaveCounts, gate: Gate, opened_at: datetime, now: datetime) -> int:
    """The wave's failures as its budget counts them."""
    elapsed = (now - opened_at).total_seconds()
    found = wave.counts["failed"] + wave.counts["unhealthy"]
    if gate.offline == "fail" or (gate.offline == "wait"
                                  and elapsed >= gate.offline_deadline_seconds):
        found += wave.counts["offline"]
    if elapsed >= gate.wave_timeout_seconds:
        found += wave.counts["pending"]
    return found


@dataclass(frozen=True)
class Decision:
    """What the gate decided, why, and (``wait``) how long until it looks again."""

    verdict: Literal["breach", "wait", "continue", "done"]
    reason: str
    wait_seconds: int = 0


def decide(gate: Gate, waves: list[WaveCounts], opened_at: list[datetime], now: datetime
           ) -> Decision:
    """The gate's answer for a rollout of ``waves`` (all of them) whose waves
    ``0..len(opened_at)-1`` are open."""
    current = len(opened_at) - 1
    for index, opened in enumerate(opened_at):
        failed, allowed = failures(waves[index], gate, opened, now), \
            gate.budget(waves[index].members)
        if failed > allowed:
            return Decision("breach", f"wave {index + 1} has {failed} failed agent(s), over "
                                      f"its budget of {allowed}")
    elapsed = (now - opened_at[current]).total_seconds()
    if elapsed < gate.bake_seconds:
        return Decision("wait", f"wave {current + 1} is baking",
                        math.ceil(gate.bake_seconds - elapsed))
    wave = waves[current]
    waiting = wave.counts["pending"] + (wave.counts["offline"] if gate.offline == "wait"
                                        and elapsed < gate.offline_deadline_seconds else 0)
    if waiting and elapsed < gate.wave_timeout_seconds:
        limit = gate.wave_timeout_seconds - elapsed
        if gate.offline == "wait" and elapsed < gate.offline_deadline_seconds:
            limit = min(limit, gate.offline_deadline_seconds - elapsed)
        pause = max(POLL_SECONDS, min(MAX_POLL_SECONDS, (elapsed - gate.bake_seconds) / 2))
        return Decision("wait", f"wave {current + 1} has {waiting} agent(s) on their way",
                        max(1, math.ceil(min(pause, limit))))
    if current == len(waves) - 1:
        return Decision("done", "every wave is through")
    return Decision("continue", f"wave {current + 1} is healthy")
