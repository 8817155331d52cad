"""The local stack's Step Functions: real state machines on moto, their Lambdas in-process.

Under ``mock_aws(config=MOTO_CONFIG)`` moto interprets Amazon States Language (Task,
Wait, Choice, Retry, Catch, Map, ``.waitForTaskToken``...) in a thread per execution,
and calls its Lambda backend for each Lambda task. :class:`LocalStateMachines` makes a
Lambda function whose name is registered run a Python handler in that thread; to
Step Functions an exception in the handler is a Lambda function error, so ``Retry``
and ``Catch`` see its class name as the error, and (as on AWS) the Lambda error
payload ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` as the cause.

Wait states (``Seconds``, ``SecondsPath``, ``Timestamp``, ``TimestampPath``) and
Retry intervals are scaled by ``time_scale``, so that tests need not wait real time;
a ``Timestamp`` is read as UTC whatever the machine's time zone (moto reads it as local).
An execution started without a name gets a unique one, as on AWS (moto names it
``None``). Product code never imports this module: it calls boto3, and this module
only decides what answers. Invoking a function that does not exist fails as on AWS
(``Lambda.ResourceNotFoundException`` to Step Functions; moto would answer anyway).
"""

from __future__ import annotations

import io
import json
import logging
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.local.patches import Installed, Patches

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

#: What ``mock_aws`` must be given for state machines to run and Lambdas not to need docker.
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
#: The IAM role the local functions and state machines run as (moto wants one to exist).
ROLE_NAME = "ampora-local-stepfunctions"
#: A function's timeout, as its context reports it (Lambda's largest).
FUNCTION_TIMEOUT_SECONDS = 900

Handler = Callable[[Any, Any], Any]
log = logging.getLogger("ampora.local.stepfunctions")

_TRUST_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
        "Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}],
})


@dataclass(frozen=True)
class LambdaContext:
    """What a handler gets as its Lambda context (the attributes handlers commonly read)."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 128
    deadline: float = field(
        default_factory=lambda: time.monotonic() + FUNCTION_TIMEOUT_SECONDS)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function would time out."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _run_handler(handler: Handler, event: Any, context: LambdaContext) -> tuple[str, bool]:
    """The handler's result as a Lambda payload, and whether it is a function error."""
    try:
        result = handler(event, context)
    except Exception as exc:  # any exception is the function's error
        log.warning("local Lambda %s raised %s", context.function_name,
                    type(exc).__name__, exc_info=True)
        return _error_payload(type(exc).__name__, exc, context), True
    try:
        return json.dumps(result), False
    except (TypeError, ValueError) as exc:
        log.warning("local Lambda %s returned what JSON cannot hold: %s",
                    context.function_name, exc)
        return _error_payload("Runtime.MarshalError", exc, context), True


def _error_payload(error_type: str, exc: Exception, context: LambdaContext) -> str:
    """A function error as Lambda's Python runtime reports it."""
    return json.dumps({
        "errorMessage": str(exc), "errorType": error_type,
        "requestId": context.aws_request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    })


def _installed() -> LocalStateMachines | None:
    return _patches.owner


class _ScaledTime:
    """The ``time`` module as moto's Retry sees it: its sleeps scaled."""

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * _time_scale())

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _time_scale() -> float:
    found = _installed()
    return 1.0 if found is None else found.time_scale


def _function_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def _handler_for(function: Any) -> Handler | None:
    """The handler registered for a moto Lambda function (any version of it), if any."""
    found = _installed()
    if found is None:
        return None
    arn = _function_arn(function.region, function.account_id, function.function_name)
    return found.handlers.get(arn)


def _install_patches() -> None:
    _patch_lambda()
    _patch_waits()
    _patch_executions()


_patches: Patches[LocalStateMachines] = Patches(_install_patches)


def _patch_lambda() -> None:
    """Registered functions run their handler; the others are moto's (docker or canned)."""
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        handler = _handler_for(self)
        if handler is None:
            return invoke_in_docker(self, event)
        context = LambdaContext(self.function_name, self.function_arn)
        payload, errored = _run_handler(handler, event, context)
        return payload, errored, ""

    def simple_invoke(self: Any, function_name: str, qualifier: str | None, body: Any,
                      headers: Any, response_headers: Any) -> Any:
        function = self.get_function(function_name, qualifier)  # a missing one: not found
        if _handler_for(function) is None:
            return canned(self, function_name, qualifier, body, headers, response_headers)
        return function.invoke(body, headers, response_headers)

    invoke_in_docker = _patches.replace(LambdaFunction, "_invoke_lambda", invoke_lambda)
    canned = _patches.replace(LambdaSimpleBackend, "invoke", simple_invoke)


def _patch_waits() -> None:
    """Wait states and Retry intervals last ``time_scale`` times as long; timestamps are UTC."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import (
        Timestamp,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    def wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds * _time_scale()
        while env.is_running() and (left := deadline - time.monotonic()) > 0:
            env.program_state_event.wait(left)  # set when the execution stops

    def seconds_until_timestamp(self: Any, env: Any) -> int:
        # moto subtracts the local time from the (UTC) timestamp: add the local offset back
        offset = datetime.now().astimezone().utcoffset() or timedelta()
        return int(until_timestamp(self, env) + offset.total_seconds())

    _patches.replace(WaitFunction, "_wait_interval", wait_interval)
    until_timestamp = _patches.replace(Timestamp, "_get_wait_seconds", seconds_until_timestamp)
    _patches.replace(retrier_decl, "time", _ScaledTime())


def _patch_executions() -> None:
    """Unnamed executions get a unique name; stopping one paused on a token aborts it."""
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import (
        ExecutionState,
    )
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    def start_execution(self: Any, state_machine_arn: str, name: str | None = None,
                        *args: Any, **kwargs: Any) -> Any:
        return start(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    def stop_worker(self: Any, *args: Any, **kwargs: Any) -> None:
        stop(self, *args, **kwargs)
        for endpoint in list(self.env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()  # moto would keep waiting for the token

    def evaluate_unless_stopped(self: Any, env: Any) -> None:
        try:
            evaluate(self, env)
        except Exception:
            if env.is_running():
                raise  # otherwise the task was interrupted by the stop: no error to handle

    start = _patches.replace(StepFunctionsParserBackend, "start_execution", start_execution)
    stop = _patches.replace(ExecutionWorker, "stop", stop_worker)
    evaluate = _patches.replace(ExecutionState, "_evaluate_with_timeout",
                                evaluate_unless_stopped)


class LocalStateMachines(Installed):
    """State machines on moto whose Lambda tasks run registered Python handlers.

    Use inside an active ``mock_aws(config=MOTO_CONFIG)``; install it (or use it as a
    context manager), register the handlers, create the state machines, then drive
    executions with the ``stepfunctions`` boto3 client as on AWS. Only one instance is
    installed at a time: installing another replaces it.
    """

    patches = _patches

    def __init__(self, *, time_scale: float = 1.0, region: str | None = None) -> None:
        self.time_scale = time_scale
        self.region = region or boto3.session.Session().region_name or "us-east-1"
        self.handlers: dict[str, Handler] = {}
        self._account: str | None = None

    def function_arn(self, name: str) -> str:
        """The ARN the handler registered as ``name`` answers at."""
        return _function_arn(self.region, self.account(), name)

    def state_machine_arn(self, name: str) -> str:
        """The ARN of the state machine called ``name``."""
        return f"arn:aws:states:{self.region}:{self.account()}:stateMachine:{name}"

    def register(self, name: str, handler: Handler) -> str:
        """Answer the Lambda function ``name`` with ``handler(event, context)``, creating the
        function if it is missing; its ARN."""
        arn = self.function_arn(name)
        self.handlers[arn] = handler
        try:
            self._client("lambda").create_function(
                FunctionName=name, Runtime="python3.12", Role=self.role_arn(),
                Handler=f"{name}.handler", Code={"ZipFile": _empty_zip()},
                Timeout=FUNCTION_TIMEOUT_SECONDS)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceConflictException":
                raise
        return arn

    def create(self, name: str, definition: dict[str, Any]) -> str:
        """Create the state machine ``name`` running ``definition``, or update it; its ARN."""
        client, arn = self._client("stepfunctions"), self.state_machine_arn(name)
        try:
            client.describe_state_machine(stateMachineArn=arn)
        except client.exceptions.StateMachineDoesNotExist:
            return str(client.create_state_machine(
                name=name, definition=json.dumps(definition),
                roleArn=self.role_arn())["stateMachineArn"])
        client.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))
        return arn

    def role_arn(self) -> str:
        """The IAM role local functions and state machines run as (created if missing)."""
        iam = self._client("iam")
        try:
            return str(iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            return str(iam.create_role(RoleName=ROLE_NAME,
                                       AssumeRolePolicyDocument=_TRUST_POLICY)["Role"]["Arn"])

    def account(self) -> str:
        """The (moto) account id everything is created in."""
        if self._account is None:
            self._account = str(self._client("sts").get_caller_identity()["Account"])
        return self._account

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


def _empty_zip() -> bytes:
    """A deployment package: Lambda wants one, the handler never reads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "")
    return buffer.getvalue()
