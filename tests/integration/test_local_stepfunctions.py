"""The local stack's Step Functions: toy state machines on moto, Lambda tasks run in-process."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.local.stepfunctions import MOTO_CONFIG, LocalStateMachines

#: Long enough never to be reached by a working test; only there so a broken one cannot hang.
DEADLINE_SECONDS = 10.0
LAMBDA_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                 "Lambda.SdkClientException", "Lambda.TooManyRequestsException"]


class Throttled(Exception):
    """A toy error worth retrying."""


@pytest.fixture
def machines() -> Iterator[LocalStateMachines]:
    """Moto running state machines, a 30 s wait lasting 30 ms."""
    with mock_aws(config=MOTO_CONFIG), LocalStateMachines(time_scale=0.001) as local:
        yield local


def stop_all(sfn: Any) -> None:
    """Stop every running execution (so no thread is left waiting for a token)."""
    for state_machine in sfn.list_state_machines()["stateMachines"]:
        running = sfn.list_executions(stateMachineArn=state_machine["stateMachineArn"],
                                      statusFilter="RUNNING")["executions"]
        for execution in running:
            sfn.stop_execution(executionArn=execution["executionArn"])


@pytest.fixture
def sfn(machines: LocalStateMachines) -> Iterator[Any]:
    """The Step Functions client, as product code would use it."""
    client = boto3.client("stepfunctions", region_name=machines.region)
    yield client
    stop_all(client)


def lambda_task(function_arn: str, **fields: Any) -> dict[str, Any]:
    """A Task state shaped as the product's: optimized integration, result under $.result."""
    return {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
        "ResultSelector": {"value.$": "$.Payload"}, "ResultPath": "$.result",
        "Retry": [{"ErrorEquals": LAMBDA_ERRORS, "IntervalSeconds": 1, "MaxAttempts": 3,
                   "BackoffRate": 2}],
        **fields,
    }


def pause_task(function_arn: str, **fields: Any) -> dict[str, Any]:
    """A Task state that waits for its token to be answered from outside."""
    return {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": function_arn,
                       "Payload": {"input.$": "$", "taskToken.$": "$$.Task.Token"}},
        "ResultPath": "$.answer", **fields,
    }


def machine(**states: dict[str, Any]) -> dict[str, Any]:
    """A definition starting at its first state."""
    return {"StartAt": next(iter(states)), "States": states}


def start(sfn: Any, machine_arn: str, name: str, payload: Any = None) -> str:
    """Start an execution; its ARN."""
    return str(sfn.start_execution(stateMachineArn=machine_arn, name=name,
                                   input=json.dumps(payload or {}))["executionArn"])


def until(condition: Any, what: str) -> Any:
    """Poll ``condition()`` until it is truthy; its value."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def finished(sfn: Any, execution_arn: str) -> dict[str, Any]:
    """The execution's description once it is no longer running."""
    def done() -> dict[str, Any] | None:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        return None if described["status"] == "RUNNING" else described
    return dict(until(done, f"{execution_arn} to finish"))


def history(sfn: Any, execution_arn: str) -> list[str]:
    """The types of the execution's events, in order."""
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    return [event["type"] for event in events]


def test_task_wait_and_choice_loop_until_done(machines: LocalStateMachines, sfn: Any) -> None:
    # Given a machine counting to three, pausing 30 s between counts
    seen: list[Any] = []

    def count(event: dict[str, Any], context: Any) -> dict[str, int]:
        seen.append(event)
        return {"count": event.get("result", {}).get("value", {}).get("count", 0) + 1}

    arn = machines.create("counter", machine(
        Count=lambda_task(machines.register("count", count), Next="Pause"),
        Pause={"Type": "Wait", "Seconds": 30, "Next": "Enough?"},
        **{"Enough?": {"Type": "Choice", "Default": "Done", "Choices": [
            {"Variable": "$.result.value.count", "NumericLessThan": 3, "Next": "Count"}]}},
        Done={"Type": "Succeed"},
    ))

    # When it runs
    result = finished(sfn, start(sfn, arn, "count-1", {"job": "toy"}))

    # Then it counted three times, waiting (scaled) after each count, and kept its input
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"job": "toy", "result": {"value": {"count": 3}}}
    assert [event["job"] for event in seen] == ["toy"] * 3
    assert history(sfn, result["executionArn"]).count("WaitStateExited") == 3


@pytest.fixture(params=["UTC0", "EST5"])
def local_time_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                    ) -> Iterator[str]:
    """The machine's time zone: UTC, or five hours behind it."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def in_a_minute() -> str:
    """A timestamp a minute from now, as ASL writes them."""
    return (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("wait", [
    {"SecondsPath": "$.pause"}, {"TimestampPath": "$.until"},
], ids=["SecondsPath", "TimestampPath"])
def test_other_waits_are_scaled_too(machines: LocalStateMachines, sfn: Any,
                                    wait: dict[str, Any]) -> None:
    # Given a machine waiting a minute, as given by its input
    arn = machines.create("waiter", machine(Pause={"Type": "Wait", "End": True, **wait}))

    # When it runs, Then it finishes (in a scaled 60 ms)
    execution = start(sfn, arn, "wait-1", {"pause": 60, "until": in_a_minute()})
    assert finished(sfn, execution)["status"] == "SUCCEEDED"


def test_a_timestamp_is_in_utc_whatever_the_local_time_zone(
        machines: LocalStateMachines, sfn: Any, local_time_zone: str) -> None:
    # Given a machine waiting until a minute from now
    arn = machines.create("alarm", machine(
        Pause={"Type": "Wait", "Timestamp": in_a_minute(), "End": True}))

    # When it runs, Then it waits that minute (scaled), not the time zone's offset too
    execution = start(sfn, arn, "alarm-1")
    until(lambda: "WaitStateEntered" in history(sfn, execution), "the wait")
    assert finished(sfn, execution)["status"] == "SUCCEEDED"


@pytest.mark.parametrize("retry_on", [["Throttled"], ["States.TaskFailed"]])
def test_a_failing_task_is_retried_until_it_succeeds(machines: LocalStateMachines, sfn: Any,
                                                     retry_on: list[str]) -> None:
    # Given a handler failing twice before it succeeds, retried on its error's name
    # after 30 s, then 60 s (scaled: the test would give up long before 90 s)
    attempts: list[int] = []

    def flaky(event: dict[str, Any], context: Any) -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise Throttled(f"attempt {len(attempts)}")
        return "done"

    task = lambda_task(machines.register("flaky", flaky), End=True)
    task["Retry"].append({"ErrorEquals": retry_on, "IntervalSeconds": 30, "MaxAttempts": 3,
                          "BackoffRate": 2})
    arn = machines.create("retrier", machine(Flaky=task))

    # When it runs
    result = finished(sfn, start(sfn, arn, "retry-1"))

    # Then the third attempt's result is the task's
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["result"] == {"value": "done"}
    assert attempts == [1, 2, 3]
    assert history(sfn, result["executionArn"]).count("TaskFailed") == 2


def test_a_caught_error_runs_the_failure_task_then_fails(machines: LocalStateMachines,
                                                         sfn: Any) -> None:
    # Given a task that always raises, caught into a task reporting it, then a Fail state
    broken_calls: list[Any] = []
    reported: list[dict[str, Any]] = []

    def broken(event: dict[str, Any], context: Any) -> None:
        broken_calls.append(event)
        raise RuntimeError("disk on fire")

    def report(event: dict[str, Any], context: Any) -> dict[str, str]:
        reported.append(event)
        return {"reported": event["error"]["Error"]}

    arn = machines.create("doomed", machine(
        Work=lambda_task(machines.register("broken", broken), Next="Done", Catch=[
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Report"}]),
        Report=lambda_task(machines.register("report", report), Next="Failed"),
        Failed={"Type": "Fail", "Error": "ToyFailed", "Cause": "the work failed"},
        Done={"Type": "Succeed"},
    ))

    # When it runs
    result = finished(sfn, start(sfn, arn, "doomed-1", {"job": "toy"}))

    # Then the function error is not one the product retries, and the catcher sees the
    # exception's class as the error, and Lambda's error payload (with its message) as the cause
    assert len(broken_calls) == 1
    (caught,) = reported
    assert caught["job"] == "toy"
    assert caught["error"]["Error"] == "RuntimeError"
    cause = json.loads(caught["error"]["Cause"])
    assert cause["errorType"] == "RuntimeError"
    assert cause["errorMessage"] == "disk on fire"
    # And the execution failed as the Fail state says
    assert (result["status"], result["error"], result["cause"]) == (
        "FAILED", "ToyFailed", "the work failed")


def test_an_uncaught_error_fails_the_execution_and_is_logged(
        machines: LocalStateMachines, sfn: Any, caplog: pytest.LogCaptureFixture) -> None:
    # Given a task that raises, with no Catch
    def broken(event: dict[str, Any], context: Any) -> None:
        raise ValueError("no such wave")

    arn = machines.create("uncaught", machine(
        Work=lambda_task(machines.register("broken", broken), End=True)))

    # When it runs
    with caplog.at_level(logging.WARNING, logger="ampora.local.stepfunctions"):
        result = finished(sfn, start(sfn, arn, "uncaught-1"))

    # Then the execution failed with the exception's class, and the traceback was logged
    assert (result["status"], result["error"]) == ("FAILED", "ValueError")
    assert json.loads(result["cause"])["errorMessage"] == "no such wave"
    assert any(record.exc_info and "broken" in record.getMessage()
               for record in caplog.records)


def test_a_result_json_cannot_hold_is_a_marshal_error(machines: LocalStateMachines,
                                                      sfn: Any) -> None:
    # Given a handler returning something that is not JSON
    arn = machines.create("unmarshalable", machine(
        Work=lambda_task(machines.register("odd", lambda event, context: {1, 2}), End=True)))

    # When it runs, Then it fails as Lambda would
    result = finished(sfn, start(sfn, arn, "odd-1"))
    assert (result["status"], result["error"]) == ("FAILED", "Runtime.MarshalError")


def test_a_plain_function_arn_resource_runs_the_handler(machines: LocalStateMachines,
                                                        sfn: Any) -> None:
    # Given a Task whose Resource is the function's ARN itself
    contexts: list[Any] = []

    def double(event: dict[str, Any], context: Any) -> int:
        contexts.append(context)
        return int(event["n"]) * 2

    function_arn = machines.register("double", double)
    arn = machines.create("plain", machine(
        Double={"Type": "Task", "Resource": function_arn, "ResultPath": "$.doubled",
                "End": True}))

    # When it runs, Then the handler's result is the task's
    result = finished(sfn, start(sfn, arn, "plain-1", {"n": 21}))
    assert json.loads(result["output"]) == {"n": 21, "doubled": 42}
    # And the handler had a Lambda context
    (context,) = contexts
    assert (context.function_name, context.invoked_function_arn) == ("double", function_arn)
    assert context.get_remaining_time_in_millis() > 0


def test_a_missing_function_fails_the_task_as_on_aws(machines: LocalStateMachines,
                                                   sfn: Any) -> None:
    # Given a task naming a function nobody created
    arn = machines.create("dangling", machine(
        Work=lambda_task(machines.function_arn("missing"), End=True)))

    # When it runs, Then Lambda's error reaches Step Functions as a Lambda.* error
    result = finished(sfn, start(sfn, arn, "dangling-1"))
    assert (result["status"], result["error"]) == ("FAILED", "Lambda.ResourceNotFoundException")


@pytest.fixture
def tokens(machines: LocalStateMachines) -> list[dict[str, Any]]:
    """What the ``ask`` function was called with, its task tokens to answer."""
    asked: list[dict[str, Any]] = []
    machines.register("ask", lambda event, context: asked.append(event))
    return asked


@pytest.fixture
def approval(machines: LocalStateMachines, tokens: list[dict[str, Any]]) -> str:
    """A machine pausing for an answer; a sent failure is caught."""
    return machines.create("approval", machine(
        Ask=pause_task(machines.function_arn("ask"), Next="Approved", Catch=[
            {"ErrorEquals": ["Rejected"], "ResultPath": "$.error", "Next": "Rejected"}]),
        Approved={"Type": "Succeed"},
        Rejected={"Type": "Fail", "Error": "Rejected", "Cause": "no"},
    ))


def test_a_paused_task_resumes_on_task_success(sfn: Any, approval: str,
                                               tokens: list[dict[str, Any]]) -> None:
    # Given an execution paused on its task token
    execution = start(sfn, approval, "approve-1", {"wave": 1})
    asked = until(lambda: tokens, "the task token")[0]
    assert asked["input"] == {"wave": 1}
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"

    # When the answer comes from outside
    sfn.send_task_success(taskToken=asked["taskToken"], output=json.dumps({"ok": True}))

    # Then the execution resumes with it
    result = finished(sfn, execution)
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"wave": 1, "answer": {"ok": True}}


def test_a_paused_task_fails_on_task_failure(sfn: Any, approval: str,
                                             tokens: list[dict[str, Any]]) -> None:
    # Given an execution paused on its task token
    execution = start(sfn, approval, "reject-1")
    token = until(lambda: tokens, "the task token")[0]["taskToken"]

    # When a failure is sent for it
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="not today")

    # Then the failure is caught as any task error would be
    result = finished(sfn, execution)
    assert (result["status"], result["error"]) == ("FAILED", "Rejected")


def test_starting_a_running_execution_again_returns_it(sfn: Any, approval: str,
                                                       tokens: list[dict[str, Any]]) -> None:
    # Given a running execution
    first = start(sfn, approval, "same", {"wave": 1})
    until(lambda: tokens, "the task token")

    # When it is started again with the same name and input, Then it is the same execution
    assert start(sfn, approval, "same", {"wave": 1}) == first
    assert len(sfn.list_executions(stateMachineArn=approval)["executions"]) == 1
    assert len(tokens) == 1
    # But the same name with another input is refused
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        start(sfn, approval, "same", {"wave": 2})


def test_a_finished_execution_name_cannot_be_reused(sfn: Any, approval: str,
                                                    tokens: list[dict[str, Any]]) -> None:
    # Given an execution that finished
    execution = start(sfn, approval, "once")
    sfn.send_task_success(taskToken=until(lambda: tokens, "the task token")[0]["taskToken"],
                          output="{}")
    finished(sfn, execution)

    # When it is started again with the same name and input, Then it is refused
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        start(sfn, approval, "once")


def test_an_execution_started_without_a_name_gets_a_unique_one(sfn: Any,
                                                              machines: LocalStateMachines
                                                              ) -> None:
    # Given a machine
    arn = machines.create("anonymous", machine(Done={"Type": "Succeed"}))

    # When two executions are started without a name, Then each has its own
    arns = {sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(2)}
    assert len(arns) == 2


def test_stop_execution_aborts_a_long_wait(machines: LocalStateMachines, sfn: Any) -> None:
    # Given an execution in a wait of (scaled) 1000 s
    arn = machines.create("sleeper", machine(
        Sleep={"Type": "Wait", "Seconds": 1_000_000, "Next": "Done"},
        Done={"Type": "Succeed"}))
    execution = start(sfn, arn, "sleep-1")
    until(lambda: "WaitStateEntered" in history(sfn, execution), "the wait")

    # When it is stopped
    sfn.stop_execution(executionArn=execution, error="Cancelled", cause="by the test")

    # Then it is aborted at once, never reaching the next state
    result = finished(sfn, execution)
    assert result["status"] == "ABORTED"
    assert history(sfn, execution)[-2:] == ["WaitStateEntered", "ExecutionAborted"]


def test_stop_execution_aborts_a_paused_task(sfn: Any, approval: str,
                                            tokens: list[dict[str, Any]]) -> None:
    # Given an execution paused on its task token
    execution = start(sfn, approval, "cancel-1")
    until(lambda: tokens, "the task token")

    # When it is stopped
    sfn.stop_execution(executionArn=execution, error="Cancelled", cause="by the test")

    # Then it is aborted at once, as on AWS: no task failure, no Catch
    result = finished(sfn, execution)
    assert result["status"] == "ABORTED"
    assert history(sfn, execution)[-2:] == ["TaskSubmitted", "ExecutionAborted"]


def test_registering_and_creating_again_replace_what_was(machines: LocalStateMachines,
                                                         sfn: Any) -> None:
    # Given a handler and a machine, each registered or created twice
    old = machines.register("work", lambda event, context: "old")
    new = machines.register("work", lambda event, context: "new")
    first = machines.create("evolving", machine(Old={"Type": "Fail", "Error": "Old"}))
    second = machines.create("evolving", machine(Work=lambda_task(new, End=True)))

    # When it runs, Then it is the same machine and function, with the new definition and handler
    assert (old, first) == (new, second)
    result = finished(sfn, start(sfn, second, "new-1"))
    assert json.loads(result["output"])["result"] == {"value": "new"}


def test_uninstalling_gives_moto_back_its_lambda() -> None:
    # Given the local state machines installed, then uninstalled
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction._invoke_lambda
    with mock_aws(config=MOTO_CONFIG):
        local = LocalStateMachines()
        local.install()
        local.install()
        assert LambdaFunction._invoke_lambda is not original
        local.uninstall()

    # Then moto is as it was
    assert LambdaFunction._invoke_lambda is original
