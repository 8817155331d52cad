"""``ampora simulate``: N OpAMP agents in one process, over plain HTTP, for demos, tests and load.

Each agent enrolls with the bootstrap token, heartbeats at the interval the
server offers, applies the remote configs it receives (a chosen share of agents
fails to), and reports the outcome. ``--rounds`` bounds the run; without it the
agents run until interrupted and then say goodbye.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chalicelib.cli.sim_agent import SimulatedAgent

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class Plan:
    """What to simulate."""

    url: str
    token: str
    agents: int
    fail_share: float = 0.0
    rounds: int | None = None
    concurrency: int = 64
    seed: int = 0
    interval: float | None = None


@dataclass
class Tally:
    """What happened, for the summary line."""

    exchanges: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    unreachable: int = 0


def fleet(plan: Plan) -> list[SimulatedAgent]:
    """The agents of ``plan``: the first ``fail_share`` of them fail their applies."""
    failing = round(plan.agents * plan.fail_share)
    rng = random.Random(plan.seed)  # noqa: S311 - identities, not secrets
    return [SimulatedAgent(instance_uid=rng.randbytes(16), name=f"sim-{i:05d}",
                           fail_applies=i < failing) for i in range(plan.agents)]


async def _exchange(session: Any, plan: Plan, agent: SimulatedAgent, body: bytes,
                    tally: Tally) -> None:
    headers = {"Content-Type": PROTOBUF, "Authorization": f"Bearer {plan.token}"}
    try:
        async with session.post(plan.url, data=body, headers=headers) as response:
            payload = await response.read()
    except OSError:
        tally.unreachable += 1
        return
    tally.exchanges += 1
    if response.status != 200:
        tally.refused[response.status] += 1
        return
    agent.receive(payload)


async def _run_agent(session: Any, plan: Plan, agent: SimulatedAgent, gate: asyncio.Semaphore,
                     tally: Tally) -> None:
    done = 0
    try:
        while plan.rounds is None or done < plan.rounds:
            async with gate:
                await _exchange(session, plan, agent, agent.next_message(), tally)
            done += 1
            if plan.rounds is None or done < plan.rounds:
                await asyncio.sleep(plan.interval or agent.interval)
    except asyncio.CancelledError:
        async with gate:
            await _exchange(session, plan, agent, agent.goodbye(), tally)
        raise


async def simulate(plan: Plan) -> tuple[list[SimulatedAgent], Tally]:
    """Run the fleet of ``plan`` until its rounds are done (or it is cancelled)."""
    import aiohttp

    agents, tally, gate = fleet(plan), Tally(), asyncio.Semaphore(plan.concurrency)
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(_run_agent(session, plan, a, gate, tally)) for a in agents]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return agents, tally


def summary(agents: list[SimulatedAgent], tally: Tally) -> str:
    """One line on how the fleet fared."""
    statuses = Counter("applied" if a.remote_status == 1 else "failed" if a.remote_status == 3
                       else "no config" for a in agents)
    refused = ", ".join(f"{n}x{code}" for code, n in sorted(tally.refused.items())) or "none"
    return (f"{len(agents)} agents, {tally.exchanges} exchanges, refused: {refused}, "
            f"unreachable: {tally.unreachable}; configs: {dict(sorted(statuses.items()))}")


def default_url() -> str:
    """The local stack's OpAMP endpoint."""
    return f"http://127.0.0.1:{os.environ.get('AMPORA_PORT', '8000')}/v1/opamp"


def main(plan: Plan) -> int:
    """Run the simulation and print its summary; non-zero when any exchange was refused."""
    try:
        agents, tally = asyncio.run(simulate(plan))
    except KeyboardInterrupt:
        return 130
    print(summary(agents, tally), flush=True)
    return 0 if not tally.refused and not tally.unreachable else 1
