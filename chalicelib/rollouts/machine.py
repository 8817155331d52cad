"""The rollout state machine (Amazon States Language), generated here and nowhere else.

Infra deploys this definition, the local stack and the tests execute it on moto. One
Standard execution per rollout, named after it, loops over the waves::

    OpenWave → Bake (Wait) → Evaluate ─┬─ continue → OpenWave
                 ↑                     ├─ wait more → Bake
                 └─────────────────────┼─ pause → Hold (waits for its task token) → Evaluate
                                       └─ done, breach (rolled back), stopped → Done

Each task is a Lambda function (``chalicelib/rollouts/tasks.py``) that decides from the
rollout as stored, so a retried or repeated task does no harm, and answers ``next`` (one of
:data:`NEXT`) and ``waitSeconds``. Lambda service errors and :data:`TRANSIENT` errors are
retried; any other error is caught and the Failed task records it on the rollout.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The task functions: their role in the machine → the Chalice function name.
TASKS = {"open": "rollout-open-wave", "evaluate": "rollout-evaluate", "hold": "rollout-hold",
         "fail": "rollout-fail"}
#: What a task may answer, and the state it leads to.
NEXT = {"open": "OpenWave", "bake": "Bake", "hold": "Hold", "evaluate": "Evaluate",
        "stop": "Done"}
#: The error a task raises for a condition worth retrying (a throttled or contended write).
TRANSIENT = "Transient"
#: The error the hold task raises when the rollout is no longer paused.
NOT_PAUSED = "NotPaused"
_LAMBDA_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                  "Lambda.SdkClientException", "Lambda.TooManyRequestsException"]
RETRY = [{"ErrorEquals": [*_LAMBDA_ERRORS, TRANSIENT], "IntervalSeconds": 1,
          "MaxAttempts": 4, "BackoffRate": 2.0}]


def _task(function_arn: str, following: str | None, *, catch: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
        "ResultSelector": {"next.$": "$.Payload.next", "waitSeconds.$": "$.Payload.waitSeconds"},
        "ResultPath": "$.step", "Retry": RETRY,
    }
    if catch:
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                           "Next": "Failed"}]
    if following is None:
        state["End"] = True
    else:
        state["Next"] = following
    return state


def _route() -> dict[str, Any]:
    return {"Type": "Choice", "Default": "Done",
            "Choices": [{"Variable": "$.step.next", "StringEquals": answer, "Next": state}
                        for answer, state in NEXT.items() if state != "Done"]}


def definition(functions: Mapping[str, str]) -> dict[str, Any]:
    """The state machine, its tasks invoking ``functions`` (task role → function ARN)."""
    hold = {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": functions["hold"],
                       "Payload": {"tenant.$": "$.tenant", "rolloutId.$": "$.rolloutId",
                                   "taskToken.$": "$$.Task.Token"}},
        "ResultPath": "$.resumed", "Retry": RETRY, "Next": "Evaluate",
        "Catch": [{"ErrorEquals": [NOT_PAUSED], "ResultPath": "$.resumed", "Next": "Evaluate"},
                  {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
    }
    failed = _task(functions["fail"], "Fail", catch=False)
    failed["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure",
                        "Next": "Fail"}]
    return {
        "Comment": "Ampora rollout: open a wave, bake, evaluate its health; repeat.",
        "StartAt": "OpenWave",
        "States": {
            "OpenWave": _task(functions["open"], "AfterOpen"),
            "AfterOpen": _route(),
            "Bake": {"Type": "Wait", "SecondsPath": "$.step.waitSeconds", "Next": "Evaluate"},
            "Evaluate": _task(functions["evaluate"], "AfterEvaluate"),
            "AfterEvaluate": _route(),
            "Hold": hold,
            "Failed": failed,
            "Fail": {"Type": "Fail", "Error": "RolloutFailed",
                     "Cause": "a rollout task failed for good; the rollout records why"},
            "Done": {"Type": "Succeed"},
        },
    }
