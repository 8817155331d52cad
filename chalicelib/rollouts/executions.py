"""The rollouts' executions on Step Functions: start one, wake a paused one, stop one.

The state machine (rollouts/machine.py) is named ``<table prefix>rollouts``; its ARN comes
from the settings (infra sets it) or, on the local stack and in tests, is looked up by that
name once. Executions are named after their rollout, so a repeated start is answered with the
execution already running.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from chalicelib.core.observability import logger
from chalicelib.core.problems import ServiceUnavailable
from chalicelib.core.settings import settings


@lru_cache(maxsize=1)
def _client() -> Any:
    import boto3

    return boto3.client("stepfunctions", region_name=settings().region)


def machine_name() -> str:
    """The rollout state machine's name in this deployment."""
    return f"{settings().table_prefix}rollouts"


@lru_cache(maxsize=1)
def machine_arn() -> str:
    """The rollout state machine's ARN."""
    if settings().rollout_state_machine_arn:
        return settings().rollout_state_machine_arn
    pages = _client().get_paginator("list_state_machines").paginate()
    for page in pages:
        for machine in page["stateMachines"]:
            if machine["name"] == machine_name():
                return str(machine["stateMachineArn"])
    raise ServiceUnavailable(f"no state machine {machine_name()!r} runs rollouts here")


def forget() -> None:
    """Forget the machine's ARN and client (tests create a new one)."""
    machine_arn.cache_clear()
    _client.cache_clear()


def execution_arn(name: str) -> str:
    """The ARN of the rollout execution called ``name``."""
    prefix, _, machine = machine_arn().rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def start(name: str, tenant: str, rollout_id: str) -> None:
    """Start the execution ``name`` for a rollout (already started: nothing happens)."""
    client = _client()
    try:
        client.start_execution(stateMachineArn=machine_arn(), name=name,
                               input=json.dumps({"tenant": tenant, "rolloutId": rollout_id}))
    except client.exceptions.ExecutionAlreadyExists:
        logger.info("rollout execution %s already exists", name)


def running(name: str) -> bool:
    """Whether the execution ``name`` exists and is running."""
    client = _client()
    try:
        found = client.describe_execution(executionArn=execution_arn(name))
    except client.exceptions.ExecutionDoesNotExist:
        return False
    return bool(found["status"] == "RUNNING")


def wake(token: str) -> None:
    """Let a paused execution go on (its Hold task waits on ``token``); a token no longer
    waited on is ignored."""
    client = _client()
    try:
        client.send_task_success(taskToken=token, output="{}")
    except (client.exceptions.TaskDoesNotExist, client.exceptions.TaskTimedOut,
            client.exceptions.InvalidToken):
        logger.info("a paused rollout's task token was no longer waited on")


def stop(name: str, cause: str) -> None:
    """Stop the execution ``name`` (best effort: its tasks stop on their own anyway)."""
    client = _client()
    try:
        client.stop_execution(executionArn=execution_arn(name), cause=cause[:256])
    except client.exceptions.ExecutionDoesNotExist:
        pass
    except Exception:  # noqa: BLE001 - the rollout's own state already stops its tasks
        logger.exception("could not stop rollout execution %s", name)
