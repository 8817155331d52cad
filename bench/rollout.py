"""A rollout over a large group, wave by wave, run by its real state machine on moto: what it
costs in state transitions, Lambda invocations and DynamoDB writes, whatever the group's size.

1. Setup (timed apart, not counted): ``--agents N`` agents (default 100,000) are written
   straight into the agents table and the group's roster (``agents/roster.py``) with batch
   writes, as bench/policy_dry_run.py does, all of them running version 1 of a configuration,
   the group's desired version; version 2 is published.
2. A rollout of version 2 over ``--waves`` equal waves (default 10: 10 %, 20 %, ... 100 %),
   each baking ``--bake`` seconds (default 60), is created and started through the rollouts
   service as an Operator. The state machine infra deploys (``rollouts/machine.py``) runs on
   moto, its tasks in-process (``chalicelib/local/rollouts.py``), its Wait states scaled down
   1000 times. moto is not thread-safe: the tasks (on moto's execution thread) and this
   file's simulation take turns under one lock.
3. Time: the app's clock is stepped. When a task answers "bake for w seconds", it hands that
   to the simulation loop (the main thread), which moves the world on before the execution
   does: the agents of the waves just opened report, then the clock moves w seconds. The app's
   clock is thus the time the rollout takes in AWS, the same on any machine.
4. Agents: instead of 100,000 OpAMP exchanges, once a wave has opened its agents (found with
   ``rollouts/waves.py``: each agent's ``key`` against the rollout's stored thresholds) are
   marked as having applied version 2 by rewriting their entries in the group's roster shards
   in bulk, one batch write per shard and wave. Those writes stand for the agents' own reports
   (each agent's report writes its own item and its roster shard): they are NOT counted with
   the rollout's writes, only reported apart. The agent items are not rewritten: a rollout
   reads the roster, and agents' items only for agents still on their way (none here).
   With ``--stragglers K``, K agents of each wave report only ``--late`` seconds after their
   wave opened (never, by default: they time out, within the wave's failure budget of K),
   their heartbeats keeping them online meanwhile: what agents on their way cost a rollout.

Reported:
- state transitions: the execution's history events that enter a state (``*StateEntered``),
  as AWS bills them;
- Lambda task invocations, per task (counted in the tasks' wrappers);
- DynamoDB writes during the rollout that agents' reports did not make, by table and by
  caller (the operator's create and start; the execution's tasks): every PutItem, UpdateItem
  and DeleteItem call, and every item of BatchWriteItem and TransactWriteItems calls, counted
  by a botocore ``provide-client-params.dynamodb`` hook on every session (pynamodb's too),
  failed conditional writes included, as DynamoDB bills those; and the product's read calls
  (a Query's every page is one);
- the most writes one item received within one second of the app's clock, for those writes
  and, apart, for the agents' (simulated, bulk) roster shard writes;
- wall times: setup, and the rollout (with its tasks' and the simulation's shares).

Targets (the issue's): at most 200 state transitions and at most 1,000 such writes per
rollout, whatever the number of agents. Setup takes about 1.2 ms per agent on moto.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto_env import TENANT, agent_item  # first: the project on sys.path, moto settings

YAML_V1 = "receivers:\n  otlp: {}\nexporters:\n  otlphttp:\n    endpoint: https://v1\n"
YAML_V2 = "receivers:\n  otlp: {}\nexporters:\n  otlphttp:\n    endpoint: https://v2\n"
#: A 60 s Wait state takes 60 ms.
TIME_SCALE = 0.001
#: The most the simulation and the execution wait (real seconds) for each other.
PATIENCE = 600.0
MAX_TRANSITIONS = 200
MAX_WRITES = 1_000
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")

#: moto is not thread-safe: the execution's tasks and the simulation take turns.
LOCK = threading.RLock()


class SteppedClock:
    """The app's clock: it moves only when the simulation moves it."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        """The current simulated time."""
        return self.at

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.at += timedelta(seconds=seconds)


# --- counting DynamoDB writes -------------------------------------------------------------------

@dataclass(frozen=True)
class Write:
    """One item written: where, by what call, when (app clock) and on whose behalf."""

    table: str
    key: str
    operation: str
    at: datetime
    source: str  # "operator", "execution" or "agents"


class WriteCounter:
    """Every DynamoDB item written (and read call made) while :attr:`active`, from a botocore
    hook on every session (registered before any is created, as moto registers its own).
    Writes made inside :meth:`by_agents` (on that thread) are the agents' own."""

    def __init__(self, clock: SteppedClock) -> None:
        self.clock = clock
        self.active = False
        self.writes: list[Write] = []
        self.calls: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        self.keys: dict[str, list[str]] = {}
        self._local = threading.local()
        self._main = threading.main_thread()

    def install(self) -> None:
        """Hook every botocore session created from now on (pynamodb makes one per thread)."""
        import botocore.handlers

        botocore.handlers.BUILTIN_HANDLERS.append(("provide-client-params.dynamodb", self.hook))

    def learn_keys(self, models: list[Any]) -> None:
        """Each table's key attributes, to name the item a write touches."""
        for model in models:
            self.keys[model.Meta.table_name] = [name for name in (model._hash_keyname,
                                                                  model._range_keyname) if name]

    @contextmanager
    def by_agents(self) -> Iterator[None]:
        """Writes made in the block (on this thread) are the agents' reports."""
        self._local.agents = True
        try:
            yield
        finally:
            self._local.agents = False

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """botocore's ``provide-client-params``: record the items a write call touches."""
        operation = str(model.name)
        if not self.active or operation not in (*WRITES, *READS):
            return
        if getattr(self._local, "agents", False):
            source = "agents"
        else:
            source = "operator" if threading.current_thread() is self._main else "execution"
        if operation in READS:
            self.reads[f"{source}:{operation}"] += 1
            return
        self.calls[f"{source}:{operation}"] += 1
        at = self.clock.now()
        for kind, table, item in _items(operation, params):
            self.writes.append(Write(table, self._key(table, item), kind, at, source))

    def _key(self, table: str, item: dict[str, Any]) -> str:
        return "/".join(next(iter(item[name].values())) if isinstance(item.get(name), dict)
                        else json.dumps(item.get(name)) for name in self.keys.get(table, []))


def _items(operation: str, params: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, table, item or key) of each item a write call touches."""
    if operation == "PutItem":
        yield operation, params["TableName"], params["Item"]
    elif operation in ("UpdateItem", "DeleteItem"):
        yield operation, params["TableName"], params["Key"]
    elif operation == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    yield "BatchWriteItem.Put", table, request["PutRequest"]["Item"]
                else:
                    yield "BatchWriteItem.Delete", table, request["DeleteRequest"]["Key"]
    else:
        for request in params["TransactItems"]:
            ((kind, body),) = request.items()
            yield f"TransactWriteItems.{kind}", body["TableName"], body.get("Item") or body["Key"]


def busiest(writes: list[Write]) -> tuple[int, str]:
    """The most writes one item received within one second (of the app's clock), and which."""
    by_item: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for write in writes:
        by_item[(write.table, write.key)].append(write.at)
    best, which = 0, "-"
    for (table, key), times in by_item.items():
        times.sort()
        first = 0
        for last, at in enumerate(times):
            while (at - times[first]).total_seconds() >= 1:
                first += 1
            if last - first + 1 > best:
                best, which = last - first + 1, f"{table} {key}"
    return best, which


# --- setup ------------------------------------------------------------------------------------

def principal() -> Any:
    """An Operator of the bench tenant."""
    from chalicelib.core.access import Principal, Role

    return Principal(tenant=TENANT, subject="bench", role=Role.OPERATOR)


def setup(count: int, clock: SteppedClock) -> tuple[str, str]:
    """The tables, a configuration (1 published and desired, 2 published) and a group of
    ``count`` agents on version 1: (group, configuration)."""
    import app  # noqa: F401 - registers every model
    from chalicelib.agents.models import AgentItem, RosterShard, group_key
    from chalicelib.agents.service import roster_shards
    from chalicelib.bootstrap import all_models, bootstrap
    from chalicelib.configurations import service as configurations
    from chalicelib.configurations.schemas import ConfigurationCreate, VersionCreate
    from chalicelib.core.db import create_tables
    from chalicelib.groups import service as groups
    from chalicelib.groups.schemas import GroupCreate

    create_tables(all_models())
    bootstrap(clock=clock)
    group, _ = groups.create(TENANT, GroupCreate(name="fleet"))
    config, _ = configurations.create(principal(), ConfigurationCreate(
        name="collector", content_type="application/yaml"))
    for number, text in ((1, YAML_V1), (2, YAML_V2)):
        configurations.save_version(principal(), config.id, VersionCreate(content=text))
        configurations.publish(principal(), config.id, number, None)
        if number == 1:
            groups.set_desired_configuration(TENANT, group.id, config.id, 1)
    runs_v1 = {"desired_configuration_id": config.id, "desired_version": 1,
               "applied_version": 1, "config_status": "applied", "drifted": False}
    items = [agent_item(AgentItem, group_key, group.id, index, clock.now(), **runs_v1)
             for index in range(count)]
    with AgentItem.batch_write() as batch:
        for item in items:
            batch.save(item)
    with RosterShard.batch_write() as batch:
        for shard in roster_shards(TENANT, group.id, items):
            batch.save(shard)
    return group.id, config.id


# --- the simulation -----------------------------------------------------------------------------

@dataclass
class Simulation:
    """The world around the execution: the app's clock, and agents reporting."""

    clock: SteppedClock
    counter: WriteCounter
    group: str
    configuration: str
    #: Agents of each wave that report late (``late`` seconds after their wave opened, or,
    #: None, never: they time out).
    stragglers: int = 0
    late: float | None = None
    rollout: str = ""
    #: What the execution's tasks tell the simulation: ("bake", seconds, done), or ("stop" /
    #: "hold", 0, None).
    told: queue.Queue[tuple[str, float, threading.Event | None]] = field(
        default_factory=queue.Queue)
    invocations: Counter[str] = field(default_factory=Counter)
    task_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    simulation_seconds: float = 0.0
    operator_seconds: float = 0.0
    reported_waves: int = 0
    #: Each agent's wave, and when each straggler reports (None: never).
    waves_of: dict[str, int] = field(default_factory=dict)
    due: dict[str, datetime | None] = field(default_factory=dict)
    #: The most agents of one wave in one roster shard (each one's report rewrites the shard),
    #: and the packed size of the shards written.
    crowded_shard: int = 0
    shard_bytes: list[int] = field(default_factory=list)

    def wrap(self, roles: dict[int, str]) -> Callable[[Any], Any]:
        """The task handlers' wrapper: count, run under the lock, tell the simulation."""
        def wrap(handler: Any) -> Any:
            role = roles[id(handler)]

            def run(event: Any, context: Any) -> Any:
                self.invocations[role] += 1
                with LOCK:
                    started = time.perf_counter()
                    try:
                        result = handler(event, context)
                    finally:
                        self.task_seconds[role] += time.perf_counter() - started
                following = result.get("next") if isinstance(result, dict) else None
                if following == "bake":
                    done = threading.Event()
                    self.told.put(("bake", float(result.get("waitSeconds") or 0), done))
                    done.wait(PATIENCE)  # the world moves on before the Wait state ends
                elif following in ("stop", "hold"):
                    self.told.put((str(following), 0.0, None))
                return result
            return run
        return wrap

    def bake(self, seconds: float) -> None:
        """The execution waits ``seconds``: agents of the waves opened since the last wait
        report (stragglers only once they are due), then the clock moves on."""
        from chalicelib.agents import roster
        from chalicelib.agents.models import RosterShard, group_key
        from chalicelib.rollouts.models import RolloutItem

        started = time.perf_counter()
        with self.counter.by_agents():  # the simulation's own reads are not the product's
            item = RolloutItem.get(TENANT, self.rollout, consistent_read=True)
            opened = [datetime.fromisoformat(value) for value in item.opened]
            shards = None
            if len(opened) > self.reported_waves:
                shards = [(shard, roster.unpack(shard.members)) for shard in
                          RosterShard.query(group_key(TENANT, self.group), consistent_read=True)]
                self.place(item, shards, opened)
            until = self.clock.now() + timedelta(seconds=seconds)
            late = {agent for agent, at in self.due.items() if at is not None and at <= until}
            if shards is None and late:
                shards = [(shard, roster.unpack(shard.members)) for shard in
                          RosterShard.query(group_key(TENANT, self.group), consistent_read=True)]
            if shards is not None:
                self.report(shards, len(opened), late)
            self.clock.advance(seconds)
            self.heartbeat()
        self.simulation_seconds += time.perf_counter() - started

    def place(self, item: Any, shards: list[tuple[Any, dict[str, Any]]],
              opened: list[datetime]) -> None:
        """Each agent's wave (from the rollout's stored thresholds), and the stragglers of the
        waves just opened, with when they report."""
        from chalicelib.rollouts.waves import Cohorts, key

        if not self.waves_of:
            cohorts = Cohorts(sizes=tuple(int(v) for v in item.sizes or []),
                              thresholds=tuple(int(v) for v in item.thresholds or []))
            self.waves_of = {agent_id: cohorts.wave_of(key(self.rollout, agent_id))
                             for _, members in shards for agent_id in members}
        for wave in range(self.reported_waves, len(opened)):
            cohort = sorted(a for a, w in self.waves_of.items() if w == wave)
            at = None if self.late is None else opened[wave] + timedelta(seconds=self.late)
            self.due.update(dict.fromkeys(cohort[:self.stragglers], at))

    def heartbeat(self) -> None:
        """Stragglers still on their way stay online: their heartbeats keep them seen (the
        rollout reads the items of agents not there yet, and ignores offline ones)."""
        from chalicelib.agents.models import AgentItem

        for agent_id in self.due:
            AgentItem(tenant=TENANT, id=agent_id).update(
                actions=[AgentItem.last_seen_at.set(self.clock.now())])

    def report(self, shards: list[tuple[Any, dict[str, Any]]], opened: int,
               late: set[str]) -> None:
        """Agents of the waves opened since the last report (but stragglers), and the
        ``late`` stragglers, applied version 2: their roster entries say so, rewritten a shard
        at a time (the agents' own writes, not counted)."""
        from chalicelib.agents import roster
        from chalicelib.agents.models import RosterShard
        from chalicelib.core.deps import deps

        applied = {"configurationId": self.configuration, "version": 2, "appliedVersion": 2,
                   "status": "applied", "error": None, "drifted": False}
        first = self.reported_waves
        with RosterShard.batch_write() as batch:
            for shard, members in shards:
                moved: Counter[int] = Counter()
                for agent_id, entry in members.items():
                    wave = self.waves_of[agent_id]
                    if agent_id in late or (first <= wave < opened and agent_id not in self.due):
                        entry["configuration"] = dict(applied)
                        moved[wave] += 1
                if moved:
                    self.crowded_shard = max(self.crowded_shard, *moved.values())
                    blob = roster.pack(members)
                    self.shard_bytes.append(len(blob))
                    batch.save(RosterShard(group_key=shard.group_key, shard=shard.shard,
                                           revision=deps().new_id(), members=blob,
                                           size=len(members)))
        self.reported_waves = opened
        for agent_id in late:
            del self.due[agent_id]


def finished(arn: str) -> dict[str, Any] | None:
    """The execution, once it is no longer running."""
    import boto3

    with LOCK:
        found = boto3.client("stepfunctions", region_name="us-east-1").describe_execution(
            executionArn=arn)
    return None if found["status"] == "RUNNING" else dict(found)


def run_rollout(simulation: Simulation, waves: int, bake: int) -> dict[str, Any]:
    """Create and start the rollout, then move the world on whenever the execution bakes,
    until the execution ends; the execution as described."""
    from chalicelib.rollouts import executions
    from chalicelib.rollouts import service as rollouts
    from chalicelib.rollouts.schemas import RolloutCreate

    percents = [round(100 * (index + 1) / waves, 6) for index in range(waves - 1)] + [100]
    spec = RolloutCreate.model_validate({
        "configurationId": simulation.configuration, "version": 2,
        "groupId": simulation.group,
        "strategy": {"waves": percents, "bakeSeconds": bake,
                     # stragglers that never report time out as failures: within budget
                     "failureBudget": {"count": simulation.stragglers}}})
    with LOCK:
        started = time.perf_counter()
        created, _ = rollouts.create(principal(), spec)
        simulation.rollout = created.id
        rollouts.start(principal(), created.id, None, None)
        simulation.operator_seconds = time.perf_counter() - started
        arn = executions.execution_arn(created.id)
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            what, seconds, done = simulation.told.get(timeout=0.5)
        except queue.Empty:
            found = finished(arn)
            if found is not None:
                return found
            continue
        deadline = time.monotonic() + PATIENCE  # the execution is moving
        if what == "bake" and done is not None:
            with LOCK:
                simulation.bake(seconds)
            done.set()
        elif what == "hold":  # paused on a breach: the execution would wait for good
            with LOCK:
                print(f"  the rollout paused: {rollouts.get(TENANT, created.id)[0].cause}")
                executions.stop(created.id, "the bench stops a paused rollout")
    raise SystemExit(f"the execution said nothing for {PATIENCE:.0f} s")


def transitions(arn: str) -> Counter[str]:
    """The execution's history events that enter a state, by type."""
    import boto3

    client = boto3.client("stepfunctions", region_name="us-east-1")
    found: Counter[str] = Counter()
    with LOCK:
        for page in client.get_paginator("get_execution_history").paginate(executionArn=arn):
            for event in page["events"]:
                if event["type"].endswith("StateEntered"):
                    found[event["type"]] += 1
    return found


# --- the report ---------------------------------------------------------------------------------

def verdict(value: float, target: float) -> str:
    return f"target <= {target:,.0f}: {'met' if value <= target else 'MISSED'}"


def report(simulation: Simulation, execution: dict[str, Any], count: int,
           setup_seconds: float, rollout_seconds: float, simulated: timedelta) -> bool:
    """Print the figures; whether the rollout succeeded (a missed target is only printed, as
    the other benches do)."""
    from chalicelib.agents.models import RosterShard
    from chalicelib.rollouts import service as rollouts

    rollout, _ = rollouts.get(TENANT, simulation.rollout)
    entered = transitions(execution["executionArn"])
    writes = [w for w in simulation.counter.writes if w.source != "agents"]
    agents = [w for w in simulation.counter.writes
              if w.source == "agents" and w.table == RosterShard.Meta.table_name]
    steps = sum(entered.values())
    print(f"  rollout {rollout.state} (execution {execution['status']}): "
          f"{rollout.progress.applied:,} of {count:,} agents applied, "
          f"{len(rollout.waves)} waves, {simulated.total_seconds():,.0f} s on the app's clock",
          flush=True)
    if rollout.cause:
        print(f"  cause: {rollout.cause}", flush=True)
    print(f"  state transitions      {steps:8,}   {verdict(steps, MAX_TRANSITIONS)}")
    print("    " + ", ".join(f"{kind} {n}" for kind, n in sorted(entered.items())))
    print(f"  Lambda invocations     {sum(simulation.invocations.values()):8,}   "
          + ", ".join(f"{role} {n}" for role, n in sorted(simulation.invocations.items())))
    print(f"  DynamoDB writes        {len(writes):8,}   {verdict(len(writes), MAX_WRITES)}"
          "   (agents' reports excluded)")
    by_table = Counter(w.table for w in writes)
    print("    by table: " + ", ".join(f"{t} {n}" for t, n in by_table.most_common()))
    by_source = Counter(w.source for w in writes)
    print("    by caller: " + ", ".join(f"{s} {n}" for s, n in by_source.most_common()))
    by_kind = Counter(w.operation for w in writes)
    print("    by operation: " + ", ".join(f"{k} {n}" for k, n in by_kind.most_common()))
    calls = {k: n for k, n in simulation.counter.calls.items() if not k.startswith("agents:")}
    print(f"    in {sum(calls.values())} API calls")
    reads = {k: n for k, n in simulation.counter.reads.items() if not k.startswith("agents:")}
    print(f"  DynamoDB read calls    {sum(reads.values()):8,}   "
          + ", ".join(f"{k} {n}" for k, n in sorted(reads.items())))
    hottest, which = busiest(writes)
    print(f"  hottest item           {hottest:8,}   writes in one second ({which})")
    shards, shard = busiest(agents)
    print(f"  agents' roster writes  {len(agents):8,}   (simulated in bulk: not counted above); "
          f"hottest shard {shards} write(s) in one second ({shard})")
    sizes = simulation.shard_bytes or [0]
    print(f"    the most agents of one wave in one shard: {simulation.crowded_shard} (each "
          "one's own report rewrites that shard once the wave opens); shards are "
          f"{sum(sizes) / len(sizes) / 1024:.1f} KB on average, {max(sizes) / 1024:.1f} KB "
          "at most, packed")
    print(f"  wall time              {setup_seconds + rollout_seconds:8.1f} s   setup "
          f"{setup_seconds:.1f} s, rollout {rollout_seconds:.1f} s")
    print(f"    rollout: create and start {simulation.operator_seconds:.2f} s; tasks "
          + ", ".join(f"{role} {seconds:.2f} s" for role, seconds in
                      sorted(simulation.task_seconds.items()))
          + f"; agents' reports (simulated) {simulation.simulation_seconds:.1f} s", flush=True)
    return rollout.state == "succeeded"


def main() -> None:
    """Run the bench and compare with the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=int(os.environ.get("BENCH_AGENTS",
                                                                         100_000)))
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--bake", type=int, default=60, help="each wave's bake, in seconds")
    parser.add_argument("--stragglers", type=int, default=0,
                        help="agents of each wave that report late (the wave's failure budget)")
    parser.add_argument("--late", type=float, default=None,
                        help="seconds after its wave opened that a straggler reports "
                             "(default: never; it times out)")
    args = parser.parse_args()
    clock = SteppedClock()
    counter = WriteCounter(clock)
    counter.install()  # before any botocore session exists
    from moto import mock_aws

    from chalicelib.bootstrap import all_models
    from chalicelib.local import rollouts as local_rollouts
    from chalicelib.local.stepfunctions import MOTO_CONFIG, LocalStateMachines
    from chalicelib.rollouts import executions, tasks

    late = "" if not args.stragglers else f", {args.stragglers} straggler(s) per wave " + (
        "that never report" if args.late is None else f"reporting after {args.late:.0f} s")
    print(f"rollout of {args.agents:,} agents in {args.waves} waves, {args.bake} s bake{late} "
          "(moto, the real state machine)", flush=True)
    with mock_aws(config=MOTO_CONFIG), LocalStateMachines(time_scale=TIME_SCALE) as machines:
        started = time.perf_counter()
        group, configuration = setup(args.agents, clock)
        counter.learn_keys(all_models())
        simulation = Simulation(clock, counter, group, configuration, args.stragglers,
                                args.late)
        roles = {id(handler): role for role, handler in tasks.HANDLERS.items()}
        local_rollouts.install(machines, simulation.wrap(roles))
        setup_seconds = time.perf_counter() - started
        print(f"  setup: {args.agents:,} agents written in {setup_seconds:.1f} s", flush=True)
        began, started = clock.now(), time.perf_counter()
        counter.active = True
        execution = run_rollout(simulation, args.waves, args.bake)
        counter.active = False
        rollout_seconds = time.perf_counter() - started
        ok = report(simulation, execution, args.agents, setup_seconds, rollout_seconds,
                    clock.now() - began)
        executions.forget()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
