"""The whole deployable Ampora stack: the REST API (one function per route), the app's other
functions (rollout tasks, the sweep, the live-updates hub's), the rollout state machine, the
agents' HTTP API with its mutual-TLS domain, the live-updates websocket API fed by the events
stream, the tables, the cursor secret and the tenant CAs' permissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, ArnFormat, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.agents import TRUSTSTORE_KEY, AgentApi
from infra.api import AmporaApi, load_app
from infra.config import LATE_SETTINGS, UNSET_AUTHORITY, StageSettings
from infra.functions import (
    API_HANDLER,
    agent_routes,
    function_ids,
    lambda_functions,
    name_functions,
    rest_routes,
    routes_of,
    share_role,
    split_functions,
    without_routes,
)
from infra.gateway import with_problem_responses
from infra.live import LiveUpdates
from infra.rollouts import MACHINE_ARN_SETTING, RolloutMachine
from infra.tables import model_tables

ROOT = Path(__file__).resolve().parent.parent
#: The role Chalice creates for its API handler (``autogen_policy`` is off; see .chalice/),
#: which every function runs as.
HANDLER_ROLE = "ApiHandlerRole"


def _check_settings(environment: dict[str, str]) -> None:
    """Fail the synth if a setting the app requires would not reach the functions."""
    from chalicelib.core.settings import REQUIRED

    missing = sorted(set(REQUIRED) - set(environment) - set(LATE_SETTINGS))
    if missing:
        raise ValueError(f"settings required by the app are not deployed: {missing}")


def _machine_name(prefix: str) -> str:
    """The rollout machine's name as the app computes it, under the stage's table prefix
    (infra/app.py runs the synth with the stage's settings)."""
    from chalicelib.core.settings import settings
    from chalicelib.rollouts.executions import machine_name

    if settings().table_prefix != prefix:
        raise ValueError(f"the synth runs with table prefix {settings().table_prefix!r}, "
                         f"the stage deploys {prefix!r}")
    return machine_name()


def _models() -> list[Any]:
    """Every pynamodb table model of every feature."""
    from chalicelib.bootstrap import all_models

    return all_models()


class AmporaStack(Stack):
    """API Gateway + Lambda (Chalice), Step Functions for rollouts, live updates from the events
    stream, DynamoDB tables from the models, the cursor secret."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, stack_name=settings.stack_name, **kwargs)
        self.settings = settings
        app = load_app(ROOT)
        self.routes = routes_of(app.routes)
        self.agent_routes = agent_routes(self.routes)
        self.lambda_functions = lambda_functions(app)
        environment = settings.environment()
        _check_settings(environment)
        self.api = AmporaApi(self, "Api", source_dir=str(ROOT), rewrite=self._rewrite,
                             stage_config=self._stage_config(environment))
        self.functions = self._function_ids()
        self.cursor_secret = self._cursor_secret()
        self.tables = model_tables(self, _models(), settings.resource_prefix)
        self.agents = self._agent_api()
        self._truststore_settings()
        self.rollouts = self._rollout_machine()
        self.live = self._live_updates()
        self._grant_access(self.api.get_role(HANDLER_ROLE))
        self._warn_if_unconfigured()
        CfnOutput(self, "Stage", value=settings.stage)

    def _stage_config(self, environment: dict[str, str]) -> dict[str, Any]:
        return {"api_gateway_stage": self.settings.stage, "environment_variables": environment,
                "xray": self.settings.tracing}

    def _rewrite(self, template: dict[str, Any]) -> dict[str, Any]:
        """The packaged SAM template as this stack deploys it."""
        api = template["Resources"]["RestAPI"]["Properties"]
        api["DefinitionBody"] = with_problem_responses(
            without_routes(api["DefinitionBody"], self.agent_routes), self.settings.docs_url)
        template = name_functions(share_role(template, HANDLER_ROLE), self.lambda_functions,
                                  self.settings.resource_prefix)
        if self.settings.single_function:
            return template
        return split_functions(template, rest_routes(self.routes), self.settings.resource_prefix,
                               http_routes=self.agent_routes)

    def _agent_api(self) -> AgentApi | None:
        """The agents' HTTP API, once the app has an agent route (``POST /v1/opamp``)."""
        if not self.agent_routes:
            Annotations.of(self).add_warning_v2(
                "ampora:no-agent-routes", "the app serves no agent route: no HTTP API")
            return None
        functions = {route: self._function(
            API_HANDLER if self.settings.single_function else route.logical_id)
            for route in self.agent_routes}
        return AgentApi(self, "Agents", settings=self.settings, functions=functions)

    def _truststore_settings(self) -> None:
        """Tell every function the truststore bucket and, with a domain, the domain's name: a
        function that creates a tenant CA appends it there and re-points the domain."""
        if self.agents is None:
            return
        environment = {"AMPORA_TRUSTSTORE_BUCKET": self.agents.truststore.bucket_name}
        if self.agents.domain is not None:
            environment["AMPORA_AGENT_DOMAIN_NAME"] = self.settings.agent_domain_name
        for name, value in environment.items():
            for function in self.functions:
                self.api.add_environment_variable(name, value, function)

    def _rollout_machine(self) -> RolloutMachine:
        """The rollout state machine on the app's task functions; every function is told its
        ARN (built from its name: see infra/rollouts.py)."""
        from chalicelib.rollouts.machine import TASKS

        machine = RolloutMachine(
            self, "Rollouts", name=_machine_name(self.settings.resource_prefix),
            tasks={role: self._app_function(name) for role, name in TASKS.items()},
            tracing=self.settings.tracing)
        for function in self.functions:
            self.api.add_environment_variable(MACHINE_ARN_SETTING, machine.arn, function)
        return machine

    def _live_updates(self) -> LiveUpdates:
        """The websocket API Chalice packaged, the events table's stream feeding the fan-out
        function, and the functions' grants on connections and on the stream."""
        from chalicelib.core.events import EventRecord
        from chalicelib.live.routes import FAN_OUT

        return LiveUpdates(self, "Live", api=self.api, fan_out=self._app_function(FAN_OUT),
                           events=self.tables[EventRecord], role=self.api.get_role(HANDLER_ROLE))

    def _app_function(self, name: str) -> lambda_.IFunction:
        """One of the app's other functions (:attr:`lambda_functions`), by its Chalice name."""
        logical_ids = {found: logical_id for logical_id, found in self.lambda_functions.items()}
        return self._function(logical_ids[name])

    def _function(self, logical_id: str) -> lambda_.IFunction:
        """A function of the packaged template, which this stack may grant invoke permissions on."""
        arn = self.api.get_resource(logical_id).get_att("Arn").to_string()
        return lambda_.Function.from_function_attributes(
            self, f"{logical_id}Ref", function_arn=arn, same_environment=True)

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
        """Read/write on every table and index, read on the cursor secret, create and read the
        tenants' CA secrets, the agents' truststore, drive rollout executions, X-Ray if traced.
        (:class:`LiveUpdates` grants the live-updates connections and the events stream.)"""
        for table in self.tables.values():
            table.grant_read_write_data(role)
        self.cursor_secret.grant_read(role)
        statements = [self._ca_secrets_statement(), *self._truststore_statements(),
                      *self.rollouts.caller_statements()]
        for statement in statements:
            role.add_to_principal_policy(statement)
        if self.settings.tracing:
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]))

    def _ca_secrets_statement(self) -> iam.PolicyStatement:
        """Create (first use) and read each tenant's CA secret, ``ampora/<stage>/ca/<tenant>``."""
        arn = self.format_arn(service="secretsmanager", resource="secret",
                              resource_name=f"{self.settings.ca_secret_prefix}*",
                              arn_format=ArnFormat.COLON_RESOURCE_NAME)
        return iam.PolicyStatement(
            sid="TenantCertificateAuthorities",
            actions=["secretsmanager:CreateSecret", "secretsmanager:GetSecretValue",
                     "secretsmanager:DescribeSecret"],
            resources=[arn])

    def _truststore_statements(self) -> list[iam.PolicyStatement]:
        """Read and rewrite ``truststore.pem`` (read-modify-write; ``GetObjectVersion``: API
        Gateway checks the caller may read the version it is pointed at) and update the agents'
        domain (``UpdateDomainName`` is ``apigateway:PATCH`` on ``/domainnames/<name>``)."""
        if self.agents is None:
            return []
        statements = [iam.PolicyStatement(
            sid="AgentTruststore",
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            resources=[self.agents.truststore.arn_for_objects(TRUSTSTORE_KEY)])]
        if self.agents.domain is not None:
            domain = self.format_arn(service="apigateway", account="", resource="/domainnames",
                                     resource_name=self.settings.agent_domain_name,
                                     arn_format=ArnFormat.SLASH_RESOURCE_NAME)
            statements.append(iam.PolicyStatement(
                sid="AgentDomainTruststore", actions=["apigateway:PATCH"], resources=[domain]))
        return statements

    def _warn_if_unconfigured(self) -> None:
        if self.settings.oidc_authority == UNSET_AUTHORITY:
            Annotations.of(self).add_warning_v2(
                "ampora:oidc-authority",
                "no -c oidcAuthority=...: every authenticated call will answer 503")
        if self.agents is not None and self.agents.domain is None:
            Annotations.of(self).add_info(
                "no -c agentDomainName=... -c agentCertificateArn=...: the agents' HTTP API "
                "has no mutual-TLS custom domain (agents can enroll, not use certificates)")
