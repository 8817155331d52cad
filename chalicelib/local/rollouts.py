"""The rollout state machine on the local stack (and in tests): the very definition infra
deploys (rollouts/machine.py), its tasks answered in-process by the app's own task functions
(rollouts/tasks.py), on moto (local/stepfunctions.py)."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.local.stepfunctions import Handler, LocalStateMachines


def install(machines: LocalStateMachines,
            wrap: Callable[[Handler], Handler] = lambda handler: handler) -> str:
    """Register the task functions (each through ``wrap``: the local stack runs them under its
    lock) and create the rollout state machine; its ARN."""
    from chalicelib.rollouts import executions, machine, tasks

    arns = {role: machines.register(machine.TASKS[role], wrap(handler))
            for role, handler in tasks.HANDLERS.items()}
    executions.forget()
    return machines.create(executions.machine_name(), machine.definition(arns))
