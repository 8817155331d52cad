"""Wire schemas of rollouts: create (with its strategy), list filters, actions and views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from chalicelib.core.schema import Actor, Description, Schema
from chalicelib.rollouts import waves as _waves
from chalicelib.rollouts.lifecycle import STATES

ShortId = Annotated[str, Field(min_length=1, max_length=64)]
State = Literal["created", "running", "paused", "succeeded", "failed", "aborted", "rolled-back"]
_WEEK = 7 * 86_400
Seconds = Annotated[int, Field(ge=0, le=_WEEK)]
assert set(STATES) == set(State.__args__)  # type: ignore[attr-defined]


class Generator(Schema):
    """Waves generated instead of listed: a linear ``step`` (step, 2 step, ... 100), or an
    exponential ``start`` and ``factor`` (start, start x factor, ... 100)."""

    kind: Literal["linear", "exponential"]
    step: float | None = Field(default=None, gt=0, le=100)
    start: float | None = Field(default=None, gt=0, le=100)
    factor: float | None = Field(default=None, gt=1, le=100)

    @model_validator(mode="after")
    def _complete(self) -> Generator:
        if self.kind == "linear" and (self.step is None or self.start or self.factor):
            raise ValueError("a linear generator takes step alone")
        if self.kind == "exponential" and (self.start is None or self.factor is None
                                           or self.step is not None):
            raise ValueError("an exponential generator takes start and factor")
        return self


class FailureBudget(Schema):
    """How many failed agents a wave may have before it is a breach: a ``count``, or a
    ``percent`` of the wave (rounded down)."""

    count: int | None = Field(default=None, ge=0, le=10_000_000)
    percent: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> FailureBudget:
        if (self.count is None) == (self.percent is None):
            raise ValueError("give exactly one of count and percent")
        return self


class Offline(Schema):
    """What offline agents of an open wave count as: ``skip`` (ignored), ``wait`` (the wave
    waits for them up to ``deadlineSeconds`` after it opened, then counts them as failed)
    or ``fail`` (failed at once)."""

    mode: Literal["skip", "wait", "fail"] = "skip"
    deadline_seconds: Seconds = 600


class Strategy(Schema):
    """How the rollout moves: its waves, how long each bakes, what a wave may lose, and what
    a breach does. Every field has a default."""

    waves: list[float] | None = Field(
        default=None, description="Cumulative percentages of the group, rising, the last one "
                                  "100, e.g. [1, 10, 50, 100] (or give generator). Default "
                                  "[10, 50, 100].")
    generator: Generator | None = None
    bake_seconds: Seconds = Field(default=300, description="How long each wave runs before "
                                                           "its health is judged.")
    failure_budget: FailureBudget = Field(default_factory=lambda: FailureBudget(count=0))
    offline: Offline = Field(default_factory=Offline)
    wave_timeout_seconds: int = Field(
        default=3600, ge=1, le=_WEEK, description="Agents of a wave still on their way this "
                                                  "long after it opened count as failed.")
    on_breach: Literal["pause", "rollback"] = Field(
        default="pause", description="What a wave over its failure budget does: pause the "
                                     "rollout, or roll it back.")

    @field_validator("waves")
    @classmethod
    def _cumulative(cls, value: list[float] | None) -> list[float] | None:
        return None if value is None else _waves.check(value)

    @model_validator(mode="after")
    def _one_source(self) -> Strategy:
        if self.waves is not None and self.generator is not None:
            raise ValueError("give waves or generator, not both")
        return self

    def percentages(self) -> list[float]:
        """The cumulative percentages of the waves."""
        if self.generator is not None:
            found = self.generator
            return _waves.generate(step=found.step, start=found.start, factor=found.factor)
        return list(self.waves or [10, 50, 100])


class RolloutCreate(Schema):
    """A new rollout (created, not started): a published version, a group, a strategy."""

    configuration_id: ShortId
    version: int = Field(ge=1, le=999_999_999)
    group_id: ShortId
    strategy: Strategy = Field(default_factory=Strategy)
    description: Description | None = None


class RolloutAction(Schema):
    """The optional body of start, pause, resume, abort and rollback."""

    reason: str | None = Field(default=None, max_length=1000,
                               description="Why: kept in the rollout's history.")


class RolloutQuery(Schema):
    """Filters of the rollout list (all must hold)."""

    status: State | None = None
    group: str | None = Field(default=None, max_length=64, description="Group id.")
    configuration: str | None = Field(default=None, max_length=64,
                                      description="Configuration id.")


class VersionRef(Schema):
    """A configuration version."""

    configuration_id: str
    version: int


class WaveProgress(Schema):
    """One wave: its share and size, when it opened, and where its agents stand."""

    number: int = Field(description="From 1.")
    percent: float = Field(description="Cumulative share of the group.")
    targeted: int = Field(description="Agents of the wave alone, fixed at the start.")
    opened_at: datetime | None
    members: int = Field(description="Agents of the group in the wave now.")
    applied: int
    unhealthy: int = Field(description="Applied, but reporting themselves unhealthy.")
    failed: int
    pending: int
    offline: int


class Progress(Schema):
    """Where the rollout's agents stand, as its last evaluation found them."""

    open_waves: int
    targeted: int
    applied: int
    unhealthy: int
    failed: int
    pending: int
    offline: int
    updated_at: datetime | None


class HistoryEntry(Schema):
    """One state change."""

    at: datetime
    action: str
    by: Actor | None = Field(description="null when the rollout's execution did it.")
    reason: str | None
    from_state: State | None
    to_state: State


class Rollout(Schema):
    """A rollout as the API shows it."""

    id: str
    description: str | None
    group_id: str
    configuration_id: str
    version: int
    previous: VersionRef | None = Field(description="What the group ran when the rollout "
                                                    "started: what a rollback returns to.")
    strategy: Strategy
    state: State
    cause: str | None = Field(description="Why it failed, or paused or rolled back on its own.")
    waves: list[WaveProgress]
    progress: Progress
    history: list[HistoryEntry]
    execution: str | None = Field(description="The name of the execution driving it.")
    created_at: datetime
    created_by: Actor
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
