"""The whole deployable Ampora stack: the API (one function per route), its tables and secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.api import AmporaApi, load_routes
from infra.config import LATE_SETTINGS, UNSET_AUTHORITY, StageSettings
from infra.functions import function_ids, split_functions
from infra.gateway import with_problem_responses
from infra.tables import model_tables

ROOT = Path(__file__).resolve().parent.parent
#: The role Chalice creates for its API handler (``autogen_policy`` is off; see .chalice/).
HANDLER_ROLE = "ApiHandlerRole"


def _check_settings(environment: dict[str, str]) -> None:
    """Fail the synth if a setting the app requires would not reach the functions."""
    from chalicelib.core.settings import REQUIRED

    missing = sorted(set(REQUIRED) - set(environment) - set(LATE_SETTINGS))
    if missing:
        raise ValueError(f"settings required by the app are not deployed: {missing}")


def _models() -> list[Any]:
    """Every pynamodb table model of every feature."""
    from chalicelib.bootstrap import all_models

    return all_models()


class AmporaStack(Stack):
    """API Gateway + Lambda (Chalice), DynamoDB tables from the models, the cursor secret."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, stack_name=settings.stack_name, **kwargs)
        self.settings = settings
        self.routes = load_routes(ROOT)
        environment = settings.environment()
        _check_settings(environment)
        self.api = AmporaApi(self, "Api", source_dir=str(ROOT), rewrite=self._rewrite,
                             stage_config=self._stage_config(environment))
        self.functions = self._function_ids()
        self.cursor_secret = self._cursor_secret()
        self.tables = model_tables(self, _models(), settings.resource_prefix)
        self._grant_access(self.api.get_role(HANDLER_ROLE))
        self._warn_if_unconfigured()
        CfnOutput(self, "Stage", value=settings.stage)

    def _stage_config(self, environment: dict[str, str]) -> dict[str, Any]:
        return {"api_gateway_stage": self.settings.stage, "environment_variables": environment,
                "xray": self.settings.tracing}

    def _rewrite(self, template: dict[str, Any]) -> dict[str, Any]:
        """The packaged SAM template as this stack deploys it."""
        api = template["Resources"]["RestAPI"]["Properties"]
        api["DefinitionBody"] = with_problem_responses(api["DefinitionBody"],
                                                       self.settings.docs_url)
        if self.settings.single_function:
            return template
        return split_functions(template, self.routes, self.settings.resource_prefix)

    def _function_ids(self) -> list[str]:
        template = self.api.package_dir / "sam.json"
        return function_ids(json.loads(template.read_text()))

    def _cursor_secret(self) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self, "CursorSecret", description="Signs Ampora's paging cursors",
            removal_policy=RemovalPolicy.RETAIN,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True))
        for function in self.functions:
            self.api.add_environment_variable("AMPORA_CURSOR_SECRET_ARN", secret.secret_arn,
                                              function)
        return secret

    def _grant_access(self, role: iam.IRole) -> None:
        """Read/write on every table and index, read on the cursor secret, X-Ray if traced."""
        for table in self.tables:
            table.grant_read_write_data(role)
        self.cursor_secret.grant_read(role)
        if self.settings.tracing:
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]))

    def _warn_if_unconfigured(self) -> None:
        if self.settings.oidc_authority == UNSET_AUTHORITY:
            Annotations.of(self).add_warning_v2(
                "ampora:oidc-authority",
                "no -c oidcAuthority=...: every authenticated call will answer 503")
