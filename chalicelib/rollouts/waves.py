"""Which agents a rollout moves in which wave: cumulative percentages, cohorts and keys.

A rollout's waves are cumulative percentages of its group, the last one 100: given as a list,
or generated (a linear step, or an exponential start and factor). Each agent has a key, a
stable 64-bit hash of (rollout, agent). When the rollout starts, the group's agents are sorted
by key and each wave gets a threshold such that exactly its share of them has a smaller key:
the cohort sizes are fixed then, and an agent is in every wave from the first whose threshold
its key is under. Opening a wave is then one number written on the group (the threshold), not
a write per agent. The last wave's threshold takes every key, so agents that join the group
during the rollout get the new version once it is fully open (earlier, if their key falls
under an open wave's threshold).

Pure: no I/O.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

#: At most this many waves.
MAX_WAVES = 100
#: Above every key: the threshold of the last wave.
ALL = 2**64


def generate(*, step: float | None = None, start: float | None = None,
             factor: float | None = None) -> list[float]:
    """Cumulative percentages from a generator: ``step`` (linear: step, 2 step, ... 100) or
    ``start`` and ``factor`` (exponential: start, start x factor, ... 100)."""
    found: list[float] = []
    value = step if step is not None else start
    if value is None or value <= 0 or (step is None and (factor is None or factor <= 1)):
        raise ValueError("a generator needs a positive step, or a positive start and a "
                         "factor above 1")
    while value < 100 and len(found) < MAX_WAVES - 1:
        found.append(round(value, 6))
        value = value + step if step is not None else value * (factor or 2)
    return [*found, 100.0]


def check(waves: list[float]) -> list[float]:
    """``waves`` if they are cumulative percentages (rising, above 0, ending at 100)."""
    if not waves or len(waves) > MAX_WAVES:
        raise ValueError(f"between 1 and {MAX_WAVES} waves are allowed")
    if any(value <= 0 or value > 100 for value in waves):
        raise ValueError("each wave is a percentage above 0 and at most 100")
    if any(later <= earlier for earlier, later in itertools.pairwise(waves)):
        raise ValueError("waves are cumulative: each one must be larger than the one before")
    if waves[-1] != 100:
        raise ValueError("the last wave must be 100 (the whole group)")
    return waves


def key(rollout_id: str, agent_id: str) -> int:
    """The agent's key in the rollout: stable across processes and releases."""
    digest = hashlib.blake2b(f"{rollout_id}/{agent_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def sizes(waves: list[float], count: int) -> list[int]:
    """How many of ``count`` agents each wave holds (cumulative): its share rounded down,
    but at least one agent from the first wave on, and never fewer than the wave before."""
    found: list[int] = []
    for value in waves:
        share = math.floor(value * count / 100 + 1e-9)
        found.append(min(count, max(share, found[-1] if found else 0, 1 if count else 0)))
    if found:
        found[-1] = count
    return found


@dataclass(frozen=True)
class Cohorts:
    """The waves of a started rollout: each one's cumulative size and key threshold."""

    sizes: tuple[int, ...]
    thresholds: tuple[int, ...]

    def wave_of(self, agent_key: int) -> int:
        """The first wave whose threshold ``agent_key`` is under."""
        return min(bisect.bisect_right(self.thresholds, agent_key), len(self.thresholds) - 1)


def cohorts(rollout_id: str, agent_ids: Iterable[str], waves: list[float]) -> Cohorts:
    """The cohorts of a rollout over the agents its group has when it starts."""
    keys = sorted(key(rollout_id, agent_id) for agent_id in agent_ids)
    counts = sizes(waves, len(keys))
    thresholds = [keys[count - 1] + 1 if count else 0 for count in counts]
    thresholds[-1] = ALL
    return Cohorts(sizes=tuple(counts), thresholds=tuple(thresholds))
