"""The rollout execution's Lambda functions (rollouts/machine.py), and the sweep that drives on
rollouts whose execution was lost.

Each task takes the execution's state (``tenant``, ``rolloutId``, ...) and calls one service
function. A throttled or contended DynamoDB call is raised as :data:`machine.TRANSIENT`, which
the machine retries; any other error is caught by the machine and fails the rollout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Rate

from chalicelib.core.lazy import LazyModule
from chalicelib.rollouts.machine import TASKS, TRANSIENT

bp = Blueprint(__name__)
service = LazyModule("chalicelib.rollouts.service")
#: DynamoDB answers worth another try.
_RETRYABLE = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                        "RequestLimitExceeded", "TransactionConflictException",
                        "InternalServerError", "ServiceUnavailable"})
#: How often the sweep looks for rollouts without a live execution.
SWEEP_MINUTES = 5


class Transient(Exception):
    """A DynamoDB call was throttled or contended: the machine retries the task."""


assert Transient.__name__ == TRANSIENT  # the error name the machine retries


def _retryable(exc: Exception) -> bool:
    code = getattr(exc, "cause_response_code", None)
    if code in _RETRYABLE:
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code in ("TransactionConflict", "ThrottlingError")
               for r in reasons)


def _task(run: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any], Any], Any]:
    @functools.wraps(run)
    def handler(event: dict[str, Any], context: Any) -> Any:
        try:
            return run(event)
        except Exception as exc:
            if _retryable(exc):
                raise Transient(str(exc)) from exc
            raise

    return handler


@bp.lambda_function(name=TASKS["open"])
@_task
def open_wave(event: dict[str, Any]) -> Any:
    """Open the rollout's next wave (or bake the open one)."""
    return service.open_wave(event["tenant"], event["rolloutId"])


@bp.lambda_function(name=TASKS["evaluate"])
@_task
def evaluate(event: dict[str, Any]) -> Any:
    """Judge the open waves' health and say what comes next."""
    return service.evaluate(event["tenant"], event["rolloutId"])


@bp.lambda_function(name=TASKS["hold"])
@_task
def hold(event: dict[str, Any]) -> Any:
    """Keep the paused execution's task token for resume."""
    service.hold(event["tenant"], event["rolloutId"], event["taskToken"])
    return {}


@bp.lambda_function(name=TASKS["fail"])
@_task
def fail(event: dict[str, Any]) -> Any:
    """Record that a task failed for good: the rollout is failed."""
    return service.fail(event["tenant"], event["rolloutId"], event.get("error"))


@bp.schedule(Rate(SWEEP_MINUTES, unit=Rate.MINUTES), name="rollout-sweep")
def sweep(event: Any) -> None:
    """Drive on every running or paused rollout whose execution is gone."""
    service.redrive_lost()


#: Each task role of the machine (machine.TASKS) and its function.
HANDLERS = {"open": open_wave, "evaluate": evaluate, "hold": hold, "fail": fail}
