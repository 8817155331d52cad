"""Rollout use cases: what operators ask (create, list, read, start, pause, resume, abort, roll
back) and what the rollout's execution does (open a wave, evaluate it, hold while paused, fail).

A running rollout holds its group (``active_rollout_id`` on the group, one at a time) and
splits it: agents whose key is under the open wave's threshold get the rollout's version
(``groups/desired.py``). Opening a wave rewrites that threshold: one write on the group, none
per agent. Agents' reports land in their group's roster (``agents/roster.py``), sharded, so
evaluating a wave reads the roster and never makes one item hot. Each state change is written
with its event in one transaction, conditioned on the state it leaves; every task decides from
the rollout as stored, so a retried or repeated task does no harm.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core.access import Principal
from chalicelib.core.concurrency import IfMatch, etag, new_revision
from chalicelib.core.db import (
    condition_failed,
    find,
    get_or_not_found,
    query_page,
    transact,
    transaction,
)
from chalicelib.core.deps import deps
from chalicelib.core.events import event_item
from chalicelib.core.lazy import LazyModule
from chalicelib.core.observability import logger
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.problems import Conflict, NotFound, PreconditionFailed
from chalicelib.groups.models import GroupItem
from chalicelib.rollouts import health, lifecycle
from chalicelib.rollouts.models import RolloutItem
from chalicelib.rollouts.schemas import (
    Rollout,
    RolloutAction,
    RolloutCreate,
    RolloutQuery,
    Strategy,
)
from chalicelib.rollouts.waves import Cohorts, cohorts, key

_agents = LazyModule("chalicelib.agents.service")
_configurations = LazyModule("chalicelib.configurations.service")
_desired = LazyModule("chalicelib.groups.desired")
_executions = LazyModule("chalicelib.rollouts.executions")
_groups = LazyModule("chalicelib.groups.service")
_policies = LazyModule("chalicelib.policies.service")

#: Tries of an operator's action that lost a race with the rollout's own writes.
ATTEMPTS = 5
#: History entries kept per rollout (the oldest go first).
MAX_HISTORY = 200
#: The capability an agent needs to be given a configuration; agents without it are not
#: counted in any wave.
REMOTE_CONFIG = "AcceptsRemoteConfig"


# --- reading ---------------------------------------------------------------------------------

def _load(tenant: str, rollout_id: str) -> RolloutItem:
    item: RolloutItem = get_or_not_found(RolloutItem, tenant, rollout_id, "rollout")
    return item


def _strategy(item: RolloutItem) -> Strategy:
    return Strategy.model_validate(item.strategy)


def _wave_views(item: RolloutItem, percents: list[float]) -> list[dict[str, Any]]:
    sizes = list(item.sizes or [])
    found = (item.progress or {}).get("waves") or []
    views = []
    for index, percent in enumerate(percents):
        targeted = sizes[index] - (sizes[index - 1] if index else 0) if sizes else 0
        counts = found[index] if index < len(found) else {}
        views.append({
            "number": index + 1, "percent": percent, "targeted": targeted,
            "opened_at": item.opened[index] if index < len(item.opened) else None,
            "members": counts.get("members", 0),
            **{name: counts.get(name, 0) for name in health.STANDINGS}})
    return views


def _view(item: RolloutItem) -> Rollout:
    strategy = _strategy(item)
    waves = _wave_views(item, strategy.percentages())
    opened = waves[:len(item.opened)]
    totals = {name: sum(wave[name] for wave in opened) for name in health.STANDINGS}
    return Rollout.model_validate({
        "id": item.id, "description": item.description, "group_id": item.group_id,
        "configuration_id": item.configuration_id, "version": int(item.version),
        "previous": item.previous, "strategy": strategy, "state": item.state,
        "cause": item.cause, "waves": waves,
        "progress": {"open_waves": len(item.opened),
                     "targeted": sum(wave["targeted"] for wave in opened), **totals,
                     "updated_at": (item.progress or {}).get("updatedAt")},
        "history": item.history, "execution": item.execution,
        "created_at": item.created_at, "created_by": item.created_by,
        "started_at": item.started_at, "finished_at": item.finished_at,
        "updated_at": item.updated_at})


def get(tenant: str, rollout_id: str) -> tuple[Rollout, str]:
    """One rollout of the tenant and its revision (ETag)."""
    item = _load(tenant, rollout_id)
    return _view(item), item.revision


def list_rollouts(tenant: str, page: PageRequest, query: RolloutQuery) -> Page[Rollout]:
    """The tenant's rollouts that match every filter, oldest first."""
    condition = None
    for part in ((RolloutItem.state == query.status) if query.status else None,
                 (RolloutItem.group_id == query.group) if query.group else None,
                 (RolloutItem.configuration_id == query.configuration)
                 if query.configuration else None):
        if part is not None:
            condition = part if condition is None else condition & part
    return query_page(RolloutItem, tenant, page, filter_condition=condition).map(_view)


def holding(tenant: str, configuration_id: str) -> str | None:
    """A rollout of the configuration that holds its group, or has left agents on it (an
    aborted one), if any: the configuration is then in use."""
    in_use = (RolloutItem.configuration_id == configuration_id) \
        & RolloutItem.state.is_in(*lifecycle.ACTIVE, "aborted")
    for item in RolloutItem.query(tenant, filter_condition=in_use, consistent_read=True):
        if item.state != "aborted" or _splits(item):
            return str(item.id)
    return None


def _splits(item: RolloutItem) -> bool:
    """Whether the rollout's split of its group is still in place."""
    group = find(GroupItem, item.tenant, item.group_id)
    return group is not None and (group.rollout or {}).get("id") == item.id


# --- writing -----------------------------------------------------------------------------------

def _event(item: RolloutItem, kind: str, data: dict[str, Any] | None = None,
           state: str | None = None) -> Any:
    """The ``rollout.<kind>`` event of ``item``, in ``state`` (default: its current one)."""
    d = deps()
    return event_item(tenant=item.tenant, event_type=f"rollout.{kind}",
                      subject=f"rollouts/{item.id}",
                      data={"id": item.id, "groupId": item.group_id,
                            "configurationId": item.configuration_id,
                            "version": int(item.version), "state": state or item.state,
                            **(data or {})},
                      at=d.clock.now(), event_id=d.new_id(), random_hex=d.random_bytes(4).hex())


def _history(item: RolloutItem, action: str, actor: dict[str, Any] | None,
             reason: str | None, before: str | None, after: str) -> list[dict[str, Any]]:
    entry = {"at": deps().clock.now().isoformat(), "action": action, "by": actor,
             "reason": reason, "fromState": before, "toState": after}
    return [*list(item.history or []), entry][-MAX_HISTORY:]


def _revision() -> str:
    return new_revision(deps().random_bytes)


def _group_split(item: RolloutItem, threshold: int) -> dict[str, Any]:
    return {"id": item.id, "configurationId": item.configuration_id,
            "version": int(item.version), "threshold": threshold}


def _group_update(tx: Any, item: RolloutItem, actions: list[Any], *, held: bool = True) -> None:
    """Change the rollout's group in ``tx``: a new group revision (so a concurrent edit of the
    group retries on top of this one), on condition the rollout still holds it."""
    group = GroupItem(tenant=item.tenant, id=item.group_id)
    condition = GroupItem.active_rollout_id == item.id if held else \
        GroupItem.active_rollout_id.does_not_exist() & GroupItem.deleted_at.does_not_exist()
    tx.update(group, actions=[GroupItem.revision.set(_revision()),
                              GroupItem.updated_at.set(deps().clock.now()), *actions],
              condition=condition)


def _commit(item: RolloutItem, actions: list[Any], condition: Any, events: list[Any],
            group: Callable[[Any], None] | None = None) -> bool:
    """Write the rollout (``actions`` on ``condition``), its group's change and ``events`` in
    one transaction; False if the rollout's condition failed, :class:`Conflict` if the group's
    did."""
    def build(tx: Any) -> None:
        tx.update(item, actions=actions, condition=condition)
        if group is not None:
            group(tx)
        for event in events:
            tx.save(event)

    try:
        failed = transact(build)
    finally:
        _desired.forget(item.tenant, item.group_id)
    if failed.get(RolloutItem.Meta.table_name) == "ConditionalCheckFailed":
        return False
    if failed.get(GroupItem.Meta.table_name) == "ConditionalCheckFailed":
        raise _group_conflict(item)
    if failed:
        raise Conflict(f"rollout {item.id!r} could not be written now ({failed}); retry")
    return True


def _group_conflict(item: RolloutItem) -> Conflict:
    found = find(GroupItem, item.tenant, item.group_id)
    if found is None or found.deleted_at is not None:
        return Conflict(f"group {item.group_id!r} is deleted")
    holder = found.active_rollout_id
    if holder is not None and holder != item.id:
        return Conflict(f"group {item.group_id!r} already has an active rollout: {holder}",
                        activeRollout=holder)
    return Conflict(f"rollout {item.id!r} no longer holds group {item.group_id!r}")


def _moved(item: RolloutItem, action: str, actor: dict[str, Any] | None, reason: str | None,
           extra: list[Any] | None = None) -> tuple[str, list[Any]]:
    """The new state and the writes of moving ``item`` by ``action`` (IllegalMove if it
    cannot)."""
    after = lifecycle.move(item.state, action)
    now = deps().clock.now()
    actions = [RolloutItem.state.set(after), RolloutItem.revision.set(_revision()),
               RolloutItem.updated_at.set(now),
               RolloutItem.history.set(_history(item, action, actor, reason, item.state, after)),
               *(extra or [])]
    if after in lifecycle.FINAL:
        actions.append(RolloutItem.finished_at.set(now))
    return after, actions


# --- creating ----------------------------------------------------------------------------------

def create(principal: Principal, spec: RolloutCreate) -> tuple[Rollout, str]:
    """A new rollout, in state ``created``: the version must be published and the group
    live (both are checked again when it starts)."""
    tenant = principal.tenant
    _groups.require_active(tenant, spec.group_id)
    _configurations.require_published(tenant, spec.configuration_id, spec.version)
    now = deps().clock.now()
    actor = dict(principal.actor)
    item = RolloutItem(
        tenant=tenant, id=deps().new_id(), revision=_revision(), description=spec.description,
        group_id=spec.group_id, configuration_id=spec.configuration_id, version=spec.version,
        strategy=spec.strategy.model_dump(mode="json", by_alias=True, exclude_none=True),
        state="created", opened=[], cleared=0, history=[], created_at=now, created_by=actor,
        updated_at=now)
    item.history = _history(item, "create", actor, None, None, "created")
    with transaction() as tx:
        tx.save(item, condition=RolloutItem.id.does_not_exist())
        tx.save(_event(item, "created", {"strategy": item.strategy}))
    return _view(item), item.revision


# --- operators' actions ----------------------------------------------------------------------

def _check(item: RolloutItem, if_match: IfMatch | None) -> None:
    if if_match is not None and not if_match.accepts(item.revision):
        raise PreconditionFailed(f"rollout {item.id!r} changed since you read it",
                                 current_etag=etag(item.revision))


def _illegal(exc: lifecycle.IllegalMove) -> Conflict:
    return Conflict(str(exc), state=exc.state)


Act = Callable[[RolloutItem], tuple[list[Any], list[Any], Callable[[Any], None] | None]]


def _act(principal: Principal, rollout_id: str, if_match: IfMatch | None, action: str,
         body: RolloutAction | None, act: Act) -> RolloutItem:
    """Read the rollout, check If-Match, and write ``action`` (``act`` adds the rollout's
    extra updates, its events and the group's change), retrying a race with the execution's
    own writes; returns the rollout as written."""
    reason = None if body is None else body.reason
    for _ in range(ATTEMPTS):
        item = _load(principal.tenant, rollout_id)
        _check(item, if_match)
        try:
            after, actions = _moved(item, action, dict(principal.actor), reason)
        except lifecycle.IllegalMove as exc:
            raise _illegal(exc) from exc
        extra, events, group = act(item)
        condition = (RolloutItem.revision == item.revision) & (RolloutItem.state == item.state)
        if item.task_token is None:
            condition &= RolloutItem.task_token.does_not_exist()
        else:
            condition &= RolloutItem.task_token == item.task_token
        events = [_event(item, kind, data, after) for kind, data in events]
        if _commit(item, [*actions, *extra], condition, events, group):
            return _load(principal.tenant, rollout_id)
    raise Conflict(f"rollout {rollout_id!r} is changing fast; retry")


def _previous(tenant: str, group_id: str) -> dict[str, Any] | None:
    """The version a live group runs now (a deleted group is a 409)."""
    try:
        group, _ = _groups.get(tenant, group_id)
    except NotFound as exc:
        raise Conflict(f"group {group_id!r} is deleted") from exc
    desired = group.desired_configuration
    return None if desired is None else {"configurationId": desired.configuration_id,
                                         "version": desired.version}


def _start_checks(item: RolloutItem) -> tuple[Cohorts, dict[str, Any] | None]:
    """What must hold for the rollout to start (404/409/422 problems), and its cohorts and
    the group's current version."""
    tenant = item.tenant
    previous = _previous(tenant, item.group_id)
    _configurations.require_published(tenant, item.configuration_id, int(item.version))
    strategy = _strategy(item)
    if strategy.on_breach == "rollback" and previous is None:
        raise Conflict(f"group {item.group_id!r} runs no configuration yet, so a breach has "
                       "nothing to roll back to; choose onBreach: pause")
    agents = _agents.group_views(tenant, item.group_id,
                                 presence=_policies.rollout_reads_presence(tenant))
    config = _policies.config_facts(tenant, item.configuration_id, int(item.version))
    _policies.enforce_rollout(tenant, agents, config, {
        "id": item.id, "groupId": item.group_id, "configurationId": item.configuration_id,
        "configurationVersion": int(item.version), "strategy": item.strategy})
    found = cohorts(item.id, (str(agent["id"]) for agent in agents), strategy.percentages())
    return found, previous


def start(principal: Principal, rollout_id: str, if_match: IfMatch | None,
          body: RolloutAction | None) -> tuple[Rollout, str]:
    """Start a created rollout: checks the version, the group and the rollout-scope policies
    (a denial is the ``policy-denied`` problem and nothing starts), fixes the cohorts, takes
    the group and starts the execution."""
    def act(item: RolloutItem) -> tuple[list[Any], list[Any], Callable[[Any], None]]:
        _executions.machine_arn()  # no state machine: 503 before anything is written
        found, previous = _start_checks(item)
        extra = [RolloutItem.sizes.set(list(found.sizes)),
                 RolloutItem.thresholds.set([str(value) for value in found.thresholds]),
                 RolloutItem.previous.set(previous), RolloutItem.opened.set([]),
                 RolloutItem.cleared.set(0), RolloutItem.started_at.set(deps().clock.now()),
                 RolloutItem.execution.set(item.id), RolloutItem.executions.set(1)]

        def group(tx: Any) -> None:
            _group_update(tx, item, [GroupItem.active_rollout_id.set(item.id),
                                     GroupItem.rollout.set(_group_split(item, 0))], held=False)

        return extra, [("started", {"sizes": list(found.sizes), "previous": previous})], group

    item = _act(principal, rollout_id, if_match, "start", body, act)
    _executions.start(item.id, item.tenant, item.id)
    return _view(item), item.revision


def pause(principal: Principal, rollout_id: str, if_match: IfMatch | None,
          body: RolloutAction | None) -> tuple[Rollout, str]:
    """Pause a running rollout: no further wave opens; agents already moved keep the new
    version. Its execution waits, at no cost, until it is resumed."""
    item = _act(principal, rollout_id, if_match, "pause", body,
                lambda item: ([], [("paused", {})], None))
    return _view(item), item.revision


def resume(principal: Principal, rollout_id: str, if_match: IfMatch | None,
           body: RolloutAction | None) -> tuple[Rollout, str]:
    """Resume a paused rollout from where it stopped."""
    woken: list[str] = []

    def act(item: RolloutItem) -> tuple[list[Any], list[Any], None]:
        woken[:] = [] if item.task_token is None else [item.task_token]
        return [RolloutItem.task_token.remove(), RolloutItem.cause.remove()], \
            [("resumed", {})], None

    item = _act(principal, rollout_id, if_match, "resume", body, act)
    for token in woken:
        _executions.wake(token)
    _redrive(item)
    return _view(item), item.revision


def abort(principal: Principal, rollout_id: str, if_match: IfMatch | None,
          body: RolloutAction | None) -> tuple[Rollout, str]:
    """Stop a rollout for good; agents already moved keep the new version. The group is
    free for another rollout."""
    def act(item: RolloutItem) -> tuple[list[Any], list[Any], Callable[[Any], None] | None]:
        group = None if item.state == "created" else \
            (lambda tx: _group_update(tx, item, [GroupItem.active_rollout_id.remove()]))
        return [RolloutItem.task_token.remove()], [("aborted", {})], group

    item = _act(principal, rollout_id, if_match, "abort", body, act)
    _stop(item, "aborted")
    return _view(item), item.revision


def _rollback_writes(item: RolloutItem) -> Callable[[Any], None]:
    if item.previous is None and item.opened:
        raise Conflict(f"group {item.group_id!r} ran no configuration before this rollout: "
                       "there is nothing to roll back to")
    return lambda tx: _group_update(tx, item, [GroupItem.active_rollout_id.remove(),
                                               GroupItem.rollout.remove()])


def rollback(principal: Principal, rollout_id: str, if_match: IfMatch | None,
             body: RolloutAction | None) -> tuple[Rollout, str]:
    """Return every agent that received the new version to the previous one, and end."""
    item = _act(principal, rollout_id, if_match, "rollback", body,
                lambda item: ([RolloutItem.task_token.remove()],
                              [("rolled-back", {"previous": item.previous})],
                              _rollback_writes(item)))
    _stop(item, "rolled back")
    return _view(item), item.revision


def _stop(item: RolloutItem, why: str) -> None:
    if item.execution is not None:
        _executions.stop(item.execution, f"the rollout was {why}")


def _redrive(item: RolloutItem) -> None:
    """Give a running or paused rollout whose execution is gone a new one (named after the
    rollout and numbered), which goes on from where the rollout stands."""
    if item.state not in ("running", "paused") or item.execution is None \
            or _executions.running(item.execution):
        return
    number = int(item.executions or 1) + 1
    name = f"{item.id}-{number}"
    try:
        item.update(actions=[RolloutItem.execution.set(name), RolloutItem.executions.set(number),
                             RolloutItem.task_token.remove()],
                    condition=RolloutItem.execution == item.execution)
    except UpdateError as exc:
        if condition_failed(exc):
            return
        raise
    logger.warning("rollout %s lost its execution; driving it on as %s", item.id, name)
    _executions.start(name, item.tenant, item.id)


def redrive_lost() -> int:
    """Give every running or paused rollout whose execution is gone a new one (the sweep, and
    the local stack after a restart); returns how many were driven on."""
    count = 0
    active = RolloutItem.state.is_in("running", "paused")
    for item in RolloutItem.scan(filter_condition=active):
        before = item.execution
        _redrive(item)
        count += item.execution != before
    return count


# --- the execution's tasks ----------------------------------------------------------------------

def _answer(following: str, wait: float = 0) -> dict[str, Any]:
    return {"next": following, "waitSeconds": max(0, math.ceil(wait))}


def _elsewhere(item: RolloutItem) -> dict[str, Any] | None:
    """The answer of a task for a rollout not running: hold while paused, else stop."""
    if item.state == "paused":
        return _answer("hold")
    if item.state != "running":
        return _answer("stop")
    return None


def _opened_at(item: RolloutItem) -> list[datetime]:
    return [datetime.fromisoformat(value) for value in item.opened]


def open_wave(tenant: str, rollout_id: str) -> dict[str, Any]:
    """Open the next wave once the gate cleared the last one (the first one at once), and bake
    it. After a lost execution, a wave already open is baked for what is left of its time."""
    item = _load(tenant, rollout_id)
    stopped = _elsewhere(item)
    if stopped is not None:
        return stopped
    bake = _strategy(item).bake_seconds
    count = len(item.opened)
    if count > int(item.cleared):
        elapsed = (deps().clock.now() - _opened_at(item)[-1]).total_seconds()
        return _answer("bake", bake - elapsed)
    thresholds = [int(value) for value in item.thresholds or []]
    if count >= len(thresholds):
        return _answer("evaluate")
    now = deps().clock.now()
    size = int((item.sizes or [0])[count]) - (int(item.sizes[count - 1]) if count else 0)
    opened = [*item.opened, now.isoformat()]
    condition = (RolloutItem.state == "running") & (RolloutItem.cleared == count)
    written = _commit(
        item, [RolloutItem.opened.set(opened), RolloutItem.updated_at.set(now)], condition,
        [_event(item, "wave-opened", {"wave": count + 1, "targeted": size,
                                      "percent": _strategy(item).percentages()[count]})],
        lambda tx: _group_update(tx, item, [GroupItem.rollout.set(
            _group_split(item, thresholds[count]))]))
    if not written:
        return open_wave(tenant, rollout_id)
    return _answer("bake", bake)


def _standings(item: RolloutItem) -> list[health.WaveCounts]:
    """Where the agents of each open wave stand (every wave is listed; those not open yet
    count nobody), from the group's roster and, for agents not there yet, whether they are
    online."""
    found = Cohorts(sizes=tuple(int(v) for v in item.sizes or []),
                    thresholds=tuple(int(v) for v in item.thresholds or []))
    open_count = len(item.opened)
    sizes = list(found.sizes)
    waves = [health.WaveCounts(targeted=sizes[index] - (sizes[index - 1] if index else 0))
             for index in range(len(sizes))]
    waiting: list[tuple[str, int]] = []
    target = item.configuration_id, int(item.version)
    for entry in _agents.group_views(item.tenant, item.group_id, presence=False):
        if REMOTE_CONFIG not in (entry.get("capabilities") or ()):
            continue  # never sent a configuration: nothing to wait for
        wave = found.wave_of(key(item.id, str(entry["id"])))
        if wave >= open_count:
            continue
        standing = health.standing(entry, None, *target)
        if standing == "pending":
            waiting.append((str(entry["id"]), wave))
        else:
            waves[wave].counts[standing] += 1
    online = _agents.online_of(item.tenant, [agent_id for agent_id, _ in waiting])
    for agent_id, wave in waiting:
        waves[wave].counts["offline" if online.get(agent_id) is False else "pending"] += 1
    return waves


def _gate(strategy: Strategy) -> health.Gate:
    budget = strategy.failure_budget
    return health.Gate(bake_seconds=strategy.bake_seconds, budget_count=budget.count,
                       budget_percent=budget.percent, offline=strategy.offline.mode,
                       offline_deadline_seconds=strategy.offline.deadline_seconds,
                       wave_timeout_seconds=strategy.wave_timeout_seconds)


def evaluate(tenant: str, rollout_id: str) -> dict[str, Any]:
    """Judge the open waves' health and answer: open the next wave, wait (bake, or agents on
    their way), hold (paused), or stop (done, rolled back). Records what it found."""
    item = _load(tenant, rollout_id)
    stopped = _elsewhere(item)
    if stopped is not None:
        return stopped
    if not item.opened or int(item.cleared) >= len(item.opened):
        return _answer("open")
    strategy = _strategy(item)
    waves = _standings(item)
    now = deps().clock.now()
    decision = health.decide(_gate(strategy), waves, _opened_at(item), now)
    progress = {"waves": [wave.to_wire() for wave in waves], "updatedAt": now.isoformat()}
    changed = progress["waves"] != (item.progress or {}).get("waves")
    events = [_event(item, "progress", {"waves": progress["waves"]})] if changed else []
    running = RolloutItem.state == "running"
    if decision.verdict == "wait":
        if changed and not _commit(item, [RolloutItem.progress.set(progress)], running, events):
            return evaluate(tenant, rollout_id)
        return _answer("bake", decision.wait_seconds)
    if decision.verdict == "continue":
        cleared = [RolloutItem.progress.set(progress), RolloutItem.cleared.set(len(item.opened))]
        written = _commit(item, cleared, running & (RolloutItem.cleared < len(item.opened)),
                          events)
        return _answer("open") if written else evaluate(tenant, rollout_id)
    if decision.verdict == "done":
        events.append(_groups.put_on_event(tenant, item.group_id, item.configuration_id,
                                           int(item.version)))
        return _finish(item, "complete", progress, events, decision.reason, lambda tx:
                       _group_update(tx, item, [
                           GroupItem.desired_configuration_id.set(item.configuration_id),
                           GroupItem.desired_version.set(int(item.version)),
                           GroupItem.active_rollout_id.remove(), GroupItem.rollout.remove()]))
    if strategy.on_breach == "rollback" and item.previous is not None:
        return _finish(item, "breach-rollback", progress, events, decision.reason,
                       _rollback_writes(item))
    return _finish(item, "breach-pause", progress, events, decision.reason, None)


def _finish(item: RolloutItem, action: str, progress: dict[str, Any], events: list[Any],
            reason: str, group: Callable[[Any], None] | None) -> dict[str, Any]:
    """The execution moves the rollout by ``action`` (done, or a breach)."""
    after, actions = _moved(item, action, None, reason, [RolloutItem.progress.set(progress)])
    if action.startswith("breach"):
        actions.append(RolloutItem.cause.set(reason))
    kind = {"succeeded": "succeeded", "paused": "paused", "rolled-back": "rolled-back"}[after]
    events = [*events, _event(item, kind, {"reason": reason, "by": "gate"}, after)]
    if not _commit(item, actions, RolloutItem.state == "running", events, group):
        return evaluate(item.tenant, item.id)
    return _answer("hold" if after == "paused" else "stop")


class NotPaused(Exception):
    """The rollout is no longer paused: the Hold task goes straight on (machine.NOT_PAUSED)."""


def hold(tenant: str, rollout_id: str, token: str) -> None:
    """Keep the token a paused rollout's execution waits on, for resume to hand back."""
    item = _load(tenant, rollout_id)
    try:
        item.update(actions=[RolloutItem.task_token.set(token)],
                    condition=RolloutItem.state == "paused")
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotPaused(f"rollout {rollout_id} is {_load(tenant, rollout_id).state}") from exc
        raise


def _cause(error: dict[str, Any]) -> str:
    """A task error in one line: a Lambda function error's cause is its JSON error payload."""
    message = str(error.get("Cause") or "")
    try:
        payload = json.loads(message)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "errorMessage" in payload:
        message = str(payload["errorMessage"])
    return f"{error.get('Error') or 'error'}: {message}".strip()[:2000]


def fail(tenant: str, rollout_id: str, error: dict[str, Any] | None) -> dict[str, Any]:
    """A task failed for good: the rollout is failed, with the cause (it keeps its group
    until an operator aborts or rolls it back)."""
    item = _load(tenant, rollout_id)
    if item.state not in ("running", "paused"):
        return _answer("stop")
    cause = _cause(error or {})
    after, actions = _moved(item, "fail", None, cause, [RolloutItem.cause.set(cause)])
    events = [_event(item, "failed", {"cause": cause}, after)]
    if not _commit(item, actions, RolloutItem.state == item.state, events):
        return fail(tenant, rollout_id, error)
    return _answer("stop")
