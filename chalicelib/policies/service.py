"""Policy use cases: the policies themselves, their draft → approval lifecycle, enforcing
them on pushes, and the dry run.

A policy's name is unique within its tenant (a claim item written in the same
transaction, as for groups). Every change is one conditional write on the policy's
revision (its ETag) together with its event. The rules of the lifecycle live in
:mod:`chalicelib.policies.lifecycle`; the CEL engine in :mod:`chalicelib.policies.cel`
(loaded only when an expression is compiled, so a push in a tenant without policies
never loads it). Compiled programs are kept per process, keyed by tenant, policy and
approved revision number: a revision never changes, so the cache is never stale.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.core.access import Principal
from chalicelib.core.concurrency import IfMatch, new_revision
from chalicelib.core.db import find, query_page
from chalicelib.core.deps import deps
from chalicelib.core.events import EventRecord, event_item
from chalicelib.core.lazy import LazyModule
from chalicelib.core.metadata import name_key
from chalicelib.core.named import Named
from chalicelib.core.observability import logger
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.problems import (
    AmporaError,
    Conflict,
    NotFound,
    ValidationFailed,
)
from chalicelib.policies import lifecycle
from chalicelib.policies.lifecycle import Author, Lifecycle, Revision
from chalicelib.policies.models import PolicyItem, PolicyNameItem
from chalicelib.policies.schemas import (
    Counts,
    EvaluatedRule,
    EvaluationRequest,
    EvaluationResult,
    EvaluationTarget,
    Policy,
    PolicyCreate,
    PolicyPatch,
    PolicyQuery,
    Verdict,
)

if TYPE_CHECKING:
    from chalicelib.policies.cel import Compiled

#: How policies and their name claims are stored and changed.
POLICIES = Named(PolicyItem, PolicyNameItem, owner="policy_id", noun="policy")
#: A denial lists at most this many violations (and as many warnings), with their totals.
MAX_LISTED = 100
#: Compiled programs kept per process.
PROGRAM_CACHE_SIZE = 1024
#: How deep a token's creator is followed (a token created by a token...).
CREATOR_DEPTH = 5

_cel = LazyModule("chalicelib.policies.cel")
_inputs = LazyModule("chalicelib.policies.inputs")
_agents = LazyModule("chalicelib.agents.service")
_groups = LazyModule("chalicelib.groups.service")
_configurations = LazyModule("chalicelib.configurations.service")
_tokens = LazyModule("chalicelib.tokens.service")

_programs: OrderedDict[tuple[str, str, int], Compiled | str] = OrderedDict()


# --- views, items, events --------------------------------------------------------------------


def _lifecycle(item: PolicyItem) -> Lifecycle:
    return Lifecycle(
        approved=None if item.approved is None else Revision.from_dict(item.approved),
        draft=None if item.draft is None else Revision.from_dict(item.draft),
        disabled=item.disabled_at is not None, last_number=int(item.last_number or 0))


def _stored(lc: Lifecycle) -> dict[str, Any]:
    """The item attributes that hold ``lc`` (but whether it is disabled: see callers)."""
    return {"approved": None if lc.approved is None else lc.approved.to_dict(),
            "draft": None if lc.draft is None else lc.draft.to_dict(),
            "last_number": lc.last_number}


def _revision_view(revision: Revision | None) -> dict[str, Any] | None:
    if revision is None:
        return None
    return {"number": revision.number, "expression": revision.expression,
            "mode": revision.mode, "authors": list(revision.authors),
            "created_at": revision.created_at, "approved_by": revision.approved_by,
            "approved_at": revision.approved_at}


def _view(item: PolicyItem) -> Policy:
    lc = _lifecycle(item)
    return Policy.model_validate({
        "id": item.id, "name": item.name, "description": item.description,
        "scope": item.scope, "state": lc.state, "approved": _revision_view(lc.approved),
        "draft": _revision_view(lc.draft), "disabled_at": item.disabled_at,
        "disabled_by": item.disabled_by, "created_at": item.created_at,
        "created_by": item.created_by, "updated_at": item.updated_at,
    })


def _event(kind: str, item: PolicyItem) -> EventRecord:
    d = deps()
    return event_item(tenant=item.tenant, event_type=f"policy.{kind}",
                      subject=f"policies/{item.id}", data=_view(item).to_wire(),
                      at=d.clock.now(), event_id=d.new_id(), random_hex=d.random_bytes(4).hex())


# --- who stands behind a change --------------------------------------------------------------


def _creator_keys(tenant: str, token_id: str, depth: int) -> list[str]:
    """The people behind a personal access token: whoever created it (and so on up)."""
    if depth <= 0:
        return []
    try:
        creator = _tokens.get(tenant, token_id).created_by
    except NotFound:
        return []
    keys = [f"{creator.type}:{creator.id}"]
    if creator.type == "pat":
        keys += _creator_keys(tenant, creator.id, depth - 1)
    return keys


def _author(principal: Principal) -> Author:
    """``principal`` as the author or approver of a revision.

    A token stands for the person who created it: approving one's own draft through a
    token one made is still self-approval.
    """
    if principal.kind != "pat":
        return Author(actor=principal.actor, keys=(f"user:{principal.subject}",))
    token_id = principal.token_id or ""
    keys = [f"pat:{token_id}", *_creator_keys(principal.tenant, token_id, CREATOR_DEPTH)]
    return Author(actor=principal.actor, keys=tuple(dict.fromkeys(keys)))


# --- compiling -------------------------------------------------------------------------------


def _compiled(expression: str, scope: str, pointer: str = "/expression") -> Compiled:
    """``expression`` compiled for ``scope``, or the 422 naming where it fails."""
    try:
        return _cel.compile_expression(expression, scope)  # type: ignore[no-any-return]
    except _cel.ExpressionError as exc:
        detail = f"line {exc.line}, column {exc.column}: {exc.message}"
        raise ValidationFailed([{"pointer": pointer, "detail": detail}],
                               f"the expression does not compile: {exc.message}",
                               line=exc.line, column=exc.column) from exc


def _program(tenant: str, policy_id: str, revision: Revision, scope: str) -> Compiled | str:
    """The compiled program of a revision in force (cached), or why it does not compile."""
    key = (tenant, policy_id, revision.number)
    found = _programs.get(key)
    if found is None:
        try:
            found = _cel.compile_expression(revision.expression, scope)
        except _cel.ExpressionError as exc:
            found = f"does not compile: {exc.message}"
        _programs[key] = found
        if len(_programs) > PROGRAM_CACHE_SIZE:
            _programs.popitem(last=False)
    else:
        _programs.move_to_end(key)
    return found


def forget_programs() -> None:
    """Drop the compiled programs of this process (tests reset the tables)."""
    _programs.clear()


# --- reading ---------------------------------------------------------------------------------


def _fetch(tenant: str, policy_id: str) -> PolicyItem | None:
    return find(PolicyItem, tenant, policy_id)


def _load(tenant: str, policy_id: str) -> PolicyItem:
    item = _fetch(tenant, policy_id)
    if item is None:
        raise NotFound(f"no policy {policy_id!r}")
    return item


def get(tenant: str, policy_id: str) -> tuple[Policy, str]:
    """One policy of the tenant and its revision (the ETag)."""
    item = _load(tenant, policy_id)
    return _view(item), item.revision


_STATE_FILTERS: dict[str, Callable[[], Any]] = {
    lifecycle.DISABLED: lambda: PolicyItem.disabled_at.exists(),
    lifecycle.APPROVED: lambda: PolicyItem.disabled_at.does_not_exist()
    & PolicyItem.approved.exists(),
    lifecycle.DRAFT: lambda: PolicyItem.disabled_at.does_not_exist()
    & PolicyItem.approved.does_not_exist(),
}


def _list_filter(query: PolicyQuery) -> Any:
    conditions: list[Any] = []
    if query.name:
        conditions.append(PolicyItem.name_key.startswith(name_key(query.name)))
    if query.scope is not None:
        conditions.append(PolicyItem.scope == query.scope)
    if query.state is not None:
        conditions.append(_STATE_FILTERS[query.state]())
    if query.pending is not None:
        conditions.append(PolicyItem.draft.exists() if query.pending
                          else PolicyItem.draft.does_not_exist())
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined & condition
    return combined


def list_policies(tenant: str, page: PageRequest, query: PolicyQuery) -> Page[Policy]:
    """The tenant's policies by id, filtered by name prefix, scope, state and pending, paged."""
    found = query_page(PolicyItem, tenant, page, filter_condition=_list_filter(query))
    return found.map(_view)


# --- creating and changing -------------------------------------------------------------------


def create(principal: Principal, spec: PolicyCreate) -> tuple[Policy, str]:
    """A new policy whose rule is a draft; 409 if the tenant has one of that name."""
    _compiled(spec.expression, spec.scope)
    now = deps().clock.now()
    lc = lifecycle.create(spec.expression, spec.mode, _author(principal), now)
    item = PolicyItem(
        tenant=principal.tenant, id=deps().new_id(), name=spec.name,
        name_key=name_key(spec.name), description=spec.description, scope=spec.scope,
        revision=new_revision(deps().random_bytes), created_at=now,
        created_by=principal.actor, updated_at=now, **_stored(lc))
    _insert(item)
    return _view(item), item.revision


def _insert(item: PolicyItem) -> None:
    POLICIES.insert(item, _event("created", item))


Change = Callable[[PolicyItem], "PolicyItem | None"]


def _mutate(tenant: str, policy_id: str, if_match: IfMatch | None, change: Change,
            kind: str) -> PolicyItem:
    """Read, ``change`` and conditionally write a policy with its ``policy.<kind>`` event,
    retrying lost races (a 412 when the caller's If-Match names a revision now gone)."""
    return POLICIES.mutate(lambda: _load(tenant, policy_id), if_match, change,
                           lambda current, new: POLICIES.write(current, new, _event(kind, new)))


def _patched(principal: Principal, patch: PolicyPatch) -> Change:
    given = patch.model_fields_set
    author = _author(principal)

    def change(current: PolicyItem) -> PolicyItem | None:
        lc = _lifecycle(current)
        newest = lc.current
        assert newest is not None  # a policy always has a revision
        if "expression" in given and patch.expression is not None:
            _compiled(patch.expression, current.scope)
        expression = patch.expression if "expression" in given else newest.expression
        mode = patch.mode if "mode" in given else newest.mode
        revised = lifecycle.revise(lc, str(expression), str(mode), author, deps().clock.now())
        name = patch.name if "name" in given and patch.name is not None else current.name
        description = patch.description if "description" in given else current.description
        if revised is None and (name, description) == (current.name, current.description):
            return None
        return POLICIES.successor(current, name=name, name_key=name_key(name),
                          description=description, **_stored(revised or lc))

    return change


def update(principal: Principal, policy_id: str, patch: PolicyPatch,
           if_match: IfMatch | None) -> tuple[Policy, str]:
    """Merge-patch a policy: a new expression or mode becomes a draft revision (the approved
    one stays in force); name and description change at once. Emits ``policy.updated``."""
    item = _mutate(principal.tenant, policy_id, if_match, _patched(principal, patch),
                   "updated")
    return _view(item), item.revision


def _approval(principal: Principal) -> Change:
    approver = _author(principal)

    def change(current: PolicyItem) -> PolicyItem:
        try:
            approved = lifecycle.approve(_lifecycle(current), approver, deps().clock.now())
        except lifecycle.NothingToApprove:
            raise Conflict(f"policy {current.name!r} has no draft to approve") from None
        except lifecycle.SelfApproval as exc:
            raise AmporaError(
                f"you wrote (part of) revision {exc.number} of policy {current.name!r}; "
                "another Admin must approve it", slug="self-approval") from None
        assert approved.approved is not None
        _compiled(approved.approved.expression, current.scope)
        return POLICIES.successor(current, **_stored(approved))

    return change


def approve(principal: Principal, policy_id: str,
            if_match: IfMatch | None) -> tuple[Policy, str]:
    """Put a policy's draft in force; refused (403) to anyone who wrote part of the draft,
    409 without a draft. Emits ``policy.approved``."""
    item = _mutate(principal.tenant, policy_id, if_match, _approval(principal), "approved")
    return _view(item), item.revision


def _switched(principal: Principal, disabled: bool) -> Change:
    def change(current: PolicyItem) -> PolicyItem | None:
        if lifecycle.set_disabled(_lifecycle(current), disabled) is None:
            return None
        if disabled:
            return POLICIES.successor(current, disabled_at=deps().clock.now(),
                              disabled_by=principal.actor)
        return POLICIES.successor(current, disabled_at=None, disabled_by=None)

    return change


def set_disabled(principal: Principal, policy_id: str, disabled: bool,
                 if_match: IfMatch | None) -> tuple[Policy, str]:
    """Disable a policy (it is never evaluated) or enable it again (its approved revision is
    in force again); doing what is already done changes nothing. Emits ``policy.disabled``
    or ``policy.enabled``."""
    kind = "disabled" if disabled else "enabled"
    item = _mutate(principal.tenant, policy_id, if_match, _switched(principal, disabled), kind)
    return _view(item), item.revision


# --- evaluating ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule to evaluate: a policy's revision, or an inline expression."""

    policy_id: str | None
    name: str | None
    number: int | None
    mode: str | None
    program: Compiled | str

    def judge(self, variables: dict[str, Any] | str) -> tuple[bool, str | None]:
        """Whether ``variables`` are allowed, and the error if they could not be evaluated
        (which never allows: evaluation fails closed). ``variables`` is a string when the
        inputs themselves could not be built: that string is the error."""
        if isinstance(self.program, str):
            return False, self.program
        if isinstance(variables, str):
            return False, variables
        try:
            verdict = self.program.evaluate(variables)
        except Exception as exc:  # noqa: BLE001 - an engine failure denies, never allows
            logger.exception("policy evaluation raised", extra={"policy": self.policy_id})
            return False, f"evaluation failed: {type(exc).__name__}"
        if verdict.error is not None:
            return False, str(verdict.error)
        return bool(verdict.allowed), None


def _message(allowed: bool, error: str | None) -> str:
    if error is not None:
        return f"could not be evaluated: {error}"
    return "returned true" if allowed else "returned false"


@dataclass(frozen=True)
class Finding:
    """A policy that did not allow a target: who, what, and why."""

    policy_id: str
    policy: str
    revision: int
    agent: str | None
    message: str
    error: str | None

    def to_wire(self) -> dict[str, Any]:
        """How a problem lists it."""
        return {"policy": self.policy, "policyId": self.policy_id, "revision": self.revision,
                "agent": self.agent, "message": self.message}


@dataclass
class Report:
    """What the policies in force said about a push (enforce and warn alike)."""

    evaluations: int = 0
    violations: list[Finding] = field(default_factory=list)
    total: int = 0
    warnings: list[Finding] = field(default_factory=list)
    warnings_total: int = 0

    @property
    def denied(self) -> bool:
        """Whether an ``enforce`` policy denied the push."""
        return self.total > 0

    def add(self, rule: Rule, agent: str | None, error: str | None) -> None:
        """Record that ``rule`` did not allow ``agent``'s push."""
        assert rule.policy_id is not None and rule.name is not None and rule.number is not None
        finding = Finding(rule.policy_id, rule.name, rule.number, agent,
                          _message(False, error), error)
        if rule.mode == "warn":
            self.warnings_total += 1
            if len(self.warnings) < MAX_LISTED:
                self.warnings.append(finding)
            return
        self.total += 1
        if len(self.violations) < MAX_LISTED:
            self.violations.append(finding)

    def extensions(self) -> dict[str, Any]:
        """The findings as members of a problem (or of any answer)."""
        found: dict[str, Any] = {"violations": [v.to_wire() for v in self.violations],
                                 "total": self.total}
        if self.warnings_total:
            found.update(warnings=[w.to_wire() for w in self.warnings],
                         warningsTotal=self.warnings_total)
        return found


def _detail(finding: Finding, target: str) -> str:
    if finding.error is None:
        return f"Policy '{finding.policy}' returned false for {target}"
    return f"Policy '{finding.policy}' could not be evaluated for {target}: {finding.error}"


def _deny(report: Report, target: Callable[[Finding], str]) -> None:
    """Raise the ``policy-denied`` problem when an enforce policy denied; log warnings."""
    if report.warnings_total:
        logger.info("policy warnings", extra={"warnings": report.warnings_total})
    if not report.denied:
        return
    first = report.violations[0]
    raise AmporaError(_detail(first, target(first)), slug="policy-denied",
                      **report.extensions())


def _in_force(tenant: str, scope: str) -> list[Rule]:
    """The tenant's approved, enabled policies of ``scope``, by name, ready to evaluate."""
    condition = (PolicyItem.scope == scope) & PolicyItem.approved.exists() \
        & PolicyItem.disabled_at.does_not_exist()
    items = sorted(PolicyItem.query(tenant, filter_condition=condition, consistent_read=True),
                   key=lambda item: (item.name_key, item.id))
    rules = []
    for item in items:
        revision = _lifecycle(item).in_force
        if revision is not None:
            rules.append(Rule(item.id, item.name, revision.number, revision.mode,
                              _program(tenant, item.id, revision, scope)))
    return rules


def _with_agent(shared: dict[str, Any], agent: dict[str, Any]) -> dict[str, Any] | str:
    """The variables for one agent, or why its input cannot be built (then it is denied)."""
    try:
        return {**shared, "agent": _inputs.agent_input(agent)}
    except ValueError as exc:
        return f"the agent's input is not usable: {exc}"


def _config_variable(config: dict[str, Any]) -> Any:
    return _inputs.config_input(
        config["content_type"], config["text"], configuration_id=config["configuration_id"],
        version=config["version"], name=config["name"], file_name=config["file_name"])


def config_facts(tenant: str, configuration_id: str, version: int) -> dict[str, Any]:
    """What policies see of a configuration version (404 for an unknown one); the ``config``
    argument of :func:`enforce_rollout` and :func:`enforce_publish`."""
    container, _ = _configurations.get(tenant, configuration_id)
    found = _configurations.get_version(tenant, configuration_id, version)
    return {"content_type": found.content_type, "text": found.content,
            "configuration_id": configuration_id, "version": version,
            "name": container.name, "file_name": found.file_name}


def rollout_reads_presence(tenant: str) -> bool:
    """Whether the tenant's rollout-scope policies in force read where agents stand now: the
    agents given to :func:`enforce_rollout` must then carry ``status`` and ``online``."""
    return reads_presence(_in_force(tenant, "rollout"))


def enforce_rollout(tenant: str, agents: Iterable[dict[str, Any]], config: dict[str, Any],
                    rollout: dict[str, Any]) -> Report:
    """Evaluate the tenant's rollout-scope policies for each targeted agent.

    ``agents`` are agents as the API shows them (wire form), ``config`` is what
    :func:`config_facts` returns, ``rollout`` the rollout as expressions see it. Raises
    the ``policy-denied`` problem (422) when an enforce policy returns false or cannot
    be evaluated for some agent; otherwise returns the report (with warn-mode hits).
    """
    rules = _in_force(tenant, "rollout")
    report = Report()
    if not rules:
        return report
    shared = {"config": _config_variable(config), "rollout": _inputs.rollout_input(rollout)}
    for agent in agents:
        variables = _with_agent(shared, agent)
        for rule in rules:
            allowed, error = rule.judge(variables)
            report.evaluations += 1
            if not allowed:
                report.add(rule, str(agent["id"]), error)
    _deny(report, lambda finding: f"agent {finding.agent}")
    return report


def enforce_publish(tenant: str, config: dict[str, Any]) -> Report:
    """Evaluate the tenant's publish-scope policies for a configuration version about to be
    published (``config`` as :func:`config_facts` returns it). Raises the ``policy-denied``
    problem when an enforce policy returns false or cannot be evaluated."""
    rules = _in_force(tenant, "publish")
    report = Report()
    if not rules:
        return report
    variables = {"config": _config_variable(config)}
    for rule in rules:
        allowed, error = rule.judge(variables)
        report.evaluations += 1
        if not allowed:
            report.add(rule, None, error)
    target = f"configuration {config['configuration_id']} version {config['version']}"
    _deny(report, lambda _finding: target)
    return report


# --- the dry run -----------------------------------------------------------------------------


def _revision_of(item: PolicyItem, wanted: str | None) -> Revision:
    lc = _lifecycle(item)
    revision = {"draft": lc.draft, "approved": lc.approved, None: lc.current}[wanted]
    if revision is None:
        raise NotFound(f"policy {item.name!r} has no {wanted} revision")
    return revision


def _dry_rule(tenant: str, request: EvaluationRequest) -> tuple[Rule, EvaluatedRule]:
    if request.policy_id is None:
        scope, expression = request.scope or "rollout", str(request.expression)
        rule = Rule(None, None, None, None, _compiled(expression, scope))
        return rule, EvaluatedRule(policy_id=None, name=None, revision=None,
                                   expression=expression, scope=scope, mode=None)
    item = _load(tenant, request.policy_id)
    revision = _revision_of(item, request.revision)
    rule = Rule(item.id, item.name, revision.number, revision.mode,
                _compiled(revision.expression, item.scope))
    return rule, EvaluatedRule.model_validate({
        "policy_id": item.id, "name": item.name, "revision": revision.number,
        "expression": revision.expression, "scope": item.scope, "mode": revision.mode})


@dataclass
class _Tally:
    """Counts every verdict; keeps the first ``limit`` of those asked for."""

    request: EvaluationRequest
    evaluated: int = 0
    allowed: int = 0
    errors: int = 0
    listed: list[Verdict] = field(default_factory=list)
    more: bool = False

    def add(self, agent: str | None, allowed: bool, error: str | None) -> None:
        self.evaluated += 1
        self.allowed += allowed
        self.errors += error is not None
        if allowed and self.request.show == "denied":
            return
        after = self.request.after
        if agent is not None and after is not None and agent <= after:
            return
        if len(self.listed) == self.request.limit:
            self.more = True
            return
        self.listed.append(Verdict(agent=agent, allowed=allowed, error=error,
                                   message=_message(allowed, error)))

    def counts(self) -> Counts:
        return Counts(evaluated=self.evaluated, allowed=self.allowed,
                      denied=self.evaluated - self.allowed, errors=self.errors)


def _judge_all(rule: Rule, variables: Iterator[tuple[str | None, dict[str, Any] | str]],
               tally: _Tally) -> None:
    for agent, values in variables:
        allowed, error = rule.judge(values)
        tally.add(agent, allowed, error)


def reads_presence(rules: Iterable[Rule]) -> bool:
    """Whether any of ``rules`` may read where agents stand now (``agent.status``,
    ``agent.online``): only then must a group's agents be read one by one, not from its
    roster alone (``agents.service.group_views``)."""
    return any(not isinstance(rule.program, str)
               and (rule.program.reads("agent", "status") or rule.program.reads("agent", "online"))
               for rule in rules)


def _rollout_variables(tenant: str, group_id: str, config: Any, rollout: dict[str, Any],
                       rule: Rule) -> Iterator[tuple[str | None, dict[str, Any] | str]]:
    shared = {"config": config, "rollout": _inputs.rollout_input(rollout)}
    for agent in _agents.group_views(tenant, group_id, presence=reads_presence([rule])):
        yield str(agent["id"]), _with_agent(shared, agent)


def _target_for(scope: str, request: EvaluationRequest) -> str | None:
    """The group to evaluate (rollout scope), checking the target fits the scope."""
    if scope == "publish" and request.group_id is not None:
        raise ValidationFailed([{"pointer": "/groupId", "detail": "a publish-scope rule is "
                                 "evaluated against the configuration version alone"}])
    if scope == "rollout" and request.group_id is None:
        raise ValidationFailed([{"pointer": "/groupId",
                                 "detail": "a rollout-scope rule needs the group to evaluate"}])
    return request.group_id


def evaluate(tenant: str, request: EvaluationRequest) -> EvaluationResult:
    """A dry run: a policy's revision (or an inline expression) evaluated for every agent of
    a group (rollout scope) or for a configuration version (publish scope), enforcing
    nothing. Counts cover every agent; verdicts list the first ``limit`` asked for."""
    rule, shown = _dry_rule(tenant, request)
    group_id = _target_for(shown.scope, request)
    if group_id is not None:
        _groups.require_active(tenant, group_id)
    config = _config_variable(config_facts(tenant, request.configuration_id, request.version))
    tally = _Tally(request)
    if group_id is None:
        _judge_all(rule, iter([(None, {"config": config})]), tally)
    else:
        rollout = {"groupId": group_id, "configurationId": request.configuration_id,
                   "configurationVersion": request.version, **request.rollout}
        _judge_all(rule, _rollout_variables(tenant, group_id, config, rollout, rule), tally)
    listed = tally.listed
    return EvaluationResult(
        rule=shown, counts=tally.counts(), verdicts=listed,
        target=EvaluationTarget(group_id=group_id, configuration_id=request.configuration_id,
                                version=request.version),
        next=listed[-1].agent if tally.more and listed else None)
