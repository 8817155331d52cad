"""Wire schemas of policies: create, merge-patch, list filters, views, and the dry run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from chalicelib.core.schema import NAME_PATTERN, Actor, Description, Schema

PolicyName = Annotated[str, Field(
    min_length=1, max_length=100, pattern=NAME_PATTERN,
    description="Unique within the tenant, compared case-insensitively; no leading or "
                "trailing spaces, no control characters. Denials name the policy by it.")]
Expression = Annotated[str, Field(
    min_length=1, max_length=65_536,
    description="A CEL expression that must evaluate to true for the push to be allowed "
                "(docs/policies.md lists the variables). It is compiled when saved: a syntax, "
                "name or type error, or one too long or too costly, is refused with its line "
                "and column.")]
Scope = Literal["rollout", "publish"]
Mode = Literal["enforce", "warn"]
State = Literal["draft", "approved", "disabled"]
VersionNumber = Annotated[int, Field(ge=1, le=999_999_999)]
ShortId = Annotated[str, Field(min_length=1, max_length=64)]
_SCOPE = ("rollout: evaluated per targeted agent with agent, config and rollout; "
          "publish: once per configuration version with config.")
_MODE = "enforce: a false result denies the push; warn: it is reported, the push goes on."


class PolicyCreate(Schema):
    """A new policy: its rule is a draft until an Admin other than its author approves it."""

    name: PolicyName
    description: Description | None = None
    expression: Expression
    scope: Scope = Field(description=_SCOPE + " Fixed at creation.")
    mode: Mode = Field(default="enforce", description=_MODE)


class PolicyPatch(Schema):
    """A JSON merge patch (RFC 7396) of a policy: absent fields stay.

    A new expression or mode becomes a draft revision (the approved one stays in force
    until the draft is approved); name and description change at once. The scope is
    fixed at creation.
    """

    name: PolicyName | None = Field(default=None, description="A new name (not null).")
    description: Description | None = Field(default=None, description="null removes it.")
    expression: Expression | None = Field(default=None, description="A new draft expression.")
    mode: Mode | None = Field(default=None, description="A new draft mode.")

    @field_validator("name", "expression", "mode")
    @classmethod
    def _stays(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be removed")
        return value


class Revision(Schema):
    """One numbered revision of a policy's rule."""

    number: int = Field(description="Revisions of a policy count from 1.")
    expression: str
    mode: Mode
    authors: list[Actor] = Field(description="Who wrote it (each edit of a draft adds its "
                                             "author); none of them may approve it.")
    created_at: datetime
    approved_by: Actor | None
    approved_at: datetime | None


class Policy(Schema):
    """A policy as the API shows it."""

    id: str
    name: str
    description: str | None
    scope: Scope
    state: State = Field(description="draft: nothing approved yet; approved: the approved "
                                     "revision is in force; disabled: never evaluated.")
    approved: Revision | None = Field(description="The revision in force (unless disabled).")
    draft: Revision | None = Field(description="The revision awaiting approval, if any.")
    disabled_at: datetime | None
    disabled_by: Actor | None
    created_at: datetime
    created_by: Actor
    updated_at: datetime


class PolicyQuery(Schema):
    """Filters of the policy list (all must hold)."""

    name: str | None = Field(default=None, min_length=1, max_length=100,
                             description="Only names starting with this (case-insensitive).")
    scope: Scope | None = None
    state: State | None = None
    pending: bool | None = Field(default=None,
                                 description="true: only policies with a draft awaiting "
                                             "approval; false: only those without.")


class EvaluationRequest(Schema):
    """A dry run: a policy (or an inline expression) and what to evaluate it against."""

    policy_id: ShortId | None = Field(default=None,
                                      description="A policy of the tenant (or give expression).")
    revision: Literal["draft", "approved"] | None = Field(
        default=None, description="Which revision of policyId: default its draft if it has "
                                  "one, else the approved one.")
    expression: Expression | None = Field(default=None,
                                          description="An inline expression (or give policyId).")
    scope: Scope | None = Field(default=None,
                                description="The scope of the inline expression (default "
                                            "rollout); a policy's own scope is used otherwise.")
    mode: Mode | None = Field(default=None, description="Ignored: a dry run enforces nothing.")
    group_id: ShortId | None = Field(default=None,
                                     description="Rollout scope: the group whose agents are "
                                                 "evaluated.")
    configuration_id: ShortId = Field(description="The configuration evaluated as config.")
    version: VersionNumber = Field(description="Its version (a draft may be evaluated too).")
    rollout: dict[str, Any] = Field(
        default_factory=dict,
        description="Rollout scope: the rollout as the expression sees it (strategy, waves); "
                    "its groupId, configurationId and configurationVersion default to the "
                    "target's.")
    show: Literal["denied", "all"] = Field(
        default="denied", description="Which verdicts to list: only those not allowed, or all.")
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many verdicts.")
    after: str | None = Field(default=None, max_length=64,
                              description="List verdicts of agents after this agent id (the "
                                          "next of an earlier answer).")

    @model_validator(mode="after")
    def _one_rule(self) -> EvaluationRequest:
        if (self.policy_id is None) == (self.expression is None):
            raise ValueError("give exactly one of policyId and expression")
        if self.policy_id is None and self.revision is not None:
            raise ValueError("revision goes with policyId")
        if self.policy_id is not None and self.scope is not None:
            raise ValueError("scope goes with an inline expression: a policy has its own")
        return self


class Verdict(Schema):
    """What the expression said about one agent (or, for publish scope, the version)."""

    agent: str | None = Field(description="The agent's id (null for publish scope).")
    allowed: bool
    error: str | None = Field(description="Why it could not be evaluated (then not allowed).")
    message: str


class Counts(Schema):
    """How the evaluations went."""

    evaluated: int
    allowed: int
    denied: int = Field(description="Not allowed: false, or an error (failing closed).")
    errors: int = Field(description="Of denied: those that could not be evaluated.")


class EvaluatedRule(Schema):
    """The rule that was evaluated."""

    policy_id: str | None
    name: str | None
    revision: int | None
    expression: str
    scope: Scope
    mode: Mode | None


class EvaluationTarget(Schema):
    """What the rule was evaluated against."""

    group_id: str | None
    configuration_id: str
    version: int


class EvaluationResult(Schema):
    """The dry run's outcome: counts over every agent, and the first verdicts asked for."""

    rule: EvaluatedRule
    target: EvaluationTarget
    counts: Counts
    verdicts: list[Verdict] = Field(description="In agent id order; at most limit of them.")
    next: str | None = Field(description="More verdicts follow: pass this as after.")
