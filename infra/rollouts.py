"""The rollout state machine: Step Functions Standard, running the definition the app generates
(``chalicelib.rollouts.machine``) with its tasks on the app's task functions.

The definition is deployed as the app wrote it: each task's function ARN is a placeholder
filled in by CloudFormation (``DefinitionSubstitutions``). The machine's ARN is built from its
name, never referenced: every function is told it and granted on it, the machine's own tasks
too, and a reference from a task function to the machine would be a dependency cycle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import ArnFormat, CfnResource, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from chalicelib.rollouts.machine import definition

#: The setting that tells the functions which machine runs rollouts.
MACHINE_ARN_SETTING = "AMPORA_ROLLOUT_STATE_MACHINE_ARN"


def _placeholder(role: str) -> str:
    return f"{role}FunctionArn"


class RolloutMachine(Construct):
    """The machine, its role (may invoke the task functions only) and its callers' grants."""

    def __init__(self, scope: Construct, construct_id: str, *, name: str,
                 tasks: Mapping[str, lambda_.IFunction], tracing: bool) -> None:
        super().__init__(scope, construct_id)
        body = definition({role: f"${{{_placeholder(role)}}}" for role in tasks})
        self.state_machine = sfn.StateMachine(
            self, "StateMachine", state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(body)),
            definition_substitutions={_placeholder(role): function.function_arn
                                      for role, function in tasks.items()},
            tracing_enabled=tracing)
        for function in tasks.values():
            function.grant_invoke(self.state_machine)
        self._depend_on_grants_only()
        self.arn = self._arn("stateMachine", name)
        self.executions_arn = self._arn("execution", f"{name}:*")

    def _depend_on_grants_only(self) -> None:
        """Keep the machine's dependency on its role's policy (its tasks may run at once) but
        not the one on the role, which ``RoleArn`` implies (cfn-lint W3005)."""
        machine = self.state_machine.node.default_child
        policy = self.state_machine.role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(machine, CfnResource) and isinstance(policy, CfnResource)
        machine.add_override("DependsOn", [Stack.of(self).get_logical_id(policy)])

    def _arn(self, resource: str, resource_name: str) -> str:
        return Stack.of(self).format_arn(service="states", resource=resource,
                                         resource_name=resource_name,
                                         arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def caller_statements(self) -> list[iam.PolicyStatement]:
        """Start an execution, read and stop the machine's executions, hand a paused one its
        task token back, and find the machine by name (when its ARN is not set)."""
        return [
            iam.PolicyStatement(sid="RolloutExecutionStart", actions=["states:StartExecution"],
                                resources=[self.arn]),
            iam.PolicyStatement(sid="RolloutExecutions",
                                actions=["states:DescribeExecution", "states:StopExecution"],
                                resources=[self.executions_arn]),
            # A task token names no resource: these actions take no resource-level permission.
            iam.PolicyStatement(sid="RolloutTaskTokens",
                                actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                                resources=["*"]),
            iam.PolicyStatement(sid="RolloutMachineLookup",
                                actions=["states:ListStateMachines"], resources=["*"]),
        ]
