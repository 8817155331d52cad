"""The deployable stack, synthesized as a user would: routes, the app's other functions, the
rollout state machine, tables, settings, gateway, package, the agents' HTTP API and its
mutual-TLS domain, the live-updates websocket API and the events stream's fan-out.

Both synths (function-per-endpoint with the agents' custom domain, then
``-c singleFunction=true`` without it) run once for this module; every test reads the templates and assets they wrote. They live in one module
so that ``pytest -n 2 --dist loadfile`` never packages the app twice at once.
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from pynamodb.attributes import Attribute
from pynamodb.indexes import GlobalSecondaryIndex, Index, LocalSecondaryIndex
from pynamodb.models import Model

from tests.infra.synth import ROOT, Synth, synth

pytestmark = pytest.mark.infra

CONTEXT = {
    "stage": "ci",
    "oidcAuthority": "https://idp.example.test/realms/ampora",
    "oidcAudience": "ampora-ci",
    "docsUrl": "https://docs.example.test",
}
#: The agents' mutual-TLS custom domain, given to the default synth only.
DOMAIN = {
    "agentDomainName": "agents.example.test",
    "agentCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c",
}
PREFIX = "ampora-ci-"
FUNCTION = "AWS::Serverless::Function"
#: What the test resolves the template's pseudo parameters to.
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::URLSuffix": "amazonaws.com"}


# --- Given: the app as the code defines it ---------------------------------------------

@pytest.fixture(scope="module")
def routes() -> list[tuple[str, str]]:
    """Every (method, path) of the Chalice app's route table."""
    import app

    return [(method, path) for path, methods in app.app.routes.items() for method in methods]


@pytest.fixture(scope="module")
def agent_routes(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The routes agents call, served by the HTTP API."""
    from infra.functions import AGENT_ROUTES

    return [r for r in routes if r in {(a.method, a.path) for a in AGENT_ROUTES}]


@pytest.fixture(scope="module")
def rest_routes(routes: list[tuple[str, str]], agent_routes: list[tuple[str, str]]
                ) -> list[tuple[str, str]]:
    """The routes operators call, served by the REST API."""
    return [r for r in routes if r not in agent_routes]


@pytest.fixture(scope="module")
def lambdas() -> dict[str, tuple[str, str]]:
    """The app's functions that serve no route (``@lambda_function``, ``@schedule``): their
    (name, handler) by the logical id ``chalice package`` gives them."""
    from chalice.utils import to_cfn_resource_name

    import app

    functions: list[Any] = [*app.app.pure_lambda_functions, *app.app.event_sources]
    return {to_cfn_resource_name(f.name): (f.name, f.handler_string) for f in functions}


@pytest.fixture(scope="module")
def models() -> list[type[Model]]:
    """Every pynamodb table model of every feature."""
    from chalicelib.bootstrap import all_models

    return all_models()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack as deployed by default: one function per route (and the agents' domain)."""
    return synth(tmp_path_factory.mktemp("per-route"), **CONTEXT, **DOMAIN)


@pytest.fixture(scope="module")
def single(stack: Synth, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with ``-c singleFunction=true`` (after ``stack``: reuses Chalice's cache)."""
    return synth(tmp_path_factory.mktemp("single"), singleFunction="true", **CONTEXT)  # no domain


def _functions(synthesized: Synth) -> dict[str, Any]:
    return synthesized.of_type(FUNCTION)


def _integration_target(swagger: dict[str, Any], method: str, path: str) -> str:
    """The logical id of the function an operation's integration invokes."""
    uri = swagger["paths"][path][method.lower()]["x-amazon-apigateway-integration"]["uri"]
    found = re.search(r"/functions/\$\{(\w+)\.Arn\}/invocations$", uri["Fn::Sub"])
    assert found, uri
    return found.group(1)


# --- Function per endpoint ----------------------------------------------------------------

def test_every_route_has_a_function_of_its_own(stack: Synth, rest_routes: list[tuple[str, str]],
                                               agent_routes: list[tuple[str, str]],
                                               lambdas: dict[str, tuple[str, str]]) -> None:
    targets = [_integration_target(stack.swagger, method, path) for method, path in rest_routes]
    targets += [_http_api_target(stack, method, path) for method, path in agent_routes]

    assert len(set(targets)) == len(rest_routes) + len(agent_routes), "two routes share a function"
    assert sorted(targets) == sorted(_route_functions(stack, lambdas)), "a function serves no route"
    for target in targets:
        props = _functions(stack)[target]["Properties"]
        assert (props["Handler"], props["Runtime"]) == ("app.app", "python3.11")


def test_functions_are_named_from_method_and_path(stack: Synth) -> None:
    names = {rid: f["Properties"]["FunctionName"] for rid, f in _functions(stack).items()}

    assert names["GetApiTenantFunction"] == f"{PREFIX}get-api-tenant"
    assert names["PostApiApiTokensIdRevokeFunction"] == f"{PREFIX}post-api-api-tokens-id-revoke"
    assert all(len(name) <= 64 for name in names.values())


def test_api_gateway_may_invoke_each_function_for_its_route_only(
    stack: Synth, rest_routes: list[tuple[str, str]]
) -> None:
    permissions = {p["Properties"]["FunctionName"]["Ref"]: p["Properties"]
                   for p in stack.of_type("AWS::Lambda::Permission").values()
                   if "Ref" in p["Properties"]["FunctionName"]}

    for method, path in rest_routes:
        permission = permissions[_integration_target(stack.swagger, method, path)]
        arn_path = re.sub(r"\{[^}]+\}", "*", path)
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert permission["SourceArn"]["Fn::Sub"].endswith(f"${{RestAPI}}/*/{method}{arn_path}")


def test_every_declared_operation_is_served(stack: Synth, routes: list[tuple[str, str]]) -> None:
    from chalicelib.core.http import OPERATIONS

    assert OPERATIONS, "the app declares operations"
    assert {(op.method, op.path) for op in OPERATIONS} <= set(routes)


def test_single_function_switch_deploys_one_function_for_all_routes(
    single: Synth, rest_routes: list[tuple[str, str]], agent_routes: list[tuple[str, str]],
    lambdas: dict[str, tuple[str, str]]
) -> None:
    (only,) = _route_functions(single, lambdas)

    assert {_integration_target(single.swagger, m, p) for m, p in rest_routes} == {only}
    assert {_http_api_target(single, m, p) for m, p in agent_routes} <= {only}
    assert len(single.of_type("AWS::DynamoDB::Table")) == len(stack_tables(single))


def _route_functions(synthesized: Synth, lambdas: dict[str, tuple[str, str]]) -> set[str]:
    """The functions that serve REST or agent routes: all but the app's other functions and
    its websocket handlers."""
    websocket = _websocket_targets(synthesized).values()
    return set(_functions(synthesized)) - set(lambdas) - set(websocket)


def stack_tables(synthesized: Synth) -> dict[str, Any]:
    """The DynamoDB tables of a synthesized stack, by table name."""
    return {t["Properties"]["TableName"]: t["Properties"]
            for t in synthesized.of_type("AWS::DynamoDB::Table").values()}


# --- Settings -------------------------------------------------------------------------------

def _environments(synthesized: Synth) -> dict[str, dict[str, Any]]:
    return {rid: f["Properties"]["Environment"]["Variables"]
            for rid, f in _functions(synthesized).items()}


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_every_required_setting_reaches_every_function(variant: str,
                                                       request: pytest.FixtureRequest) -> None:
    from chalicelib.core.settings import REQUIRED

    synthesized: Synth = request.getfixturevalue(variant)
    (secret,) = synthesized.of_type("AWS::SecretsManager::Secret")

    for function, env in _environments(synthesized).items():
        assert set(REQUIRED) <= set(env), f"{function} lacks {set(REQUIRED) - set(env)}"
        assert env["AMPORA_CURSOR_SECRET_ARN"] == {"Ref": secret}


def test_settings_come_from_context(stack: Synth) -> None:
    for env in _environments(stack).values():
        assert env["AMPORA_STAGE"] == "ci"
        assert env["AMPORA_TABLE_PREFIX"] == PREFIX
        assert env["AMPORA_OIDC_AUTHORITY"] == CONTEXT["oidcAuthority"]
        assert env["AMPORA_OIDC_AUDIENCE"] == CONTEXT["oidcAudience"]
        assert env["AMPORA_DOCS_URL"] == CONTEXT["docsUrl"]
        assert {"AMPORA_OIDC_ROLE_CLAIM", "AMPORA_OIDC_TENANT_CLAIM",
                "AMPORA_AUDIT_RETENTION_DAYS"} <= set(env)


def test_cursor_secret_is_generated_and_readable_by_the_functions(stack: Synth) -> None:
    (secret_id, secret), = stack.of_type("AWS::SecretsManager::Secret").items()
    statements = _role_statements(stack)

    assert "GenerateSecretString" in secret["Properties"]
    assert any("secretsmanager:GetSecretValue" in _actions(s) and s["Resource"] == {"Ref": secret_id}
               for s in statements)


# --- Tables ---------------------------------------------------------------------------------

def _short(model: type[Model]) -> str:
    from chalicelib.core.db import table_name

    return str(model.Meta.table_name).removeprefix(table_name(""))


def _keys(attributes: list[Attribute[Any]]) -> list[dict[str, str]]:
    hash_keys = [{"AttributeName": a.attr_name, "KeyType": "HASH"}
                 for a in attributes if a.is_hash_key]
    range_keys = [{"AttributeName": a.attr_name, "KeyType": "RANGE"}
                  for a in attributes if a.is_range_key]
    return hash_keys + range_keys


def _index_attributes(index: Index[Any]) -> list[Attribute[Any]]:
    return [a for a in vars(type(index)).values() if isinstance(a, Attribute)]


def _indexes(model: type[Model], kind: type[Index[Any]]) -> list[dict[str, Any]]:
    """What the model declares for each index of ``kind``, as CloudFormation spells it."""
    declared = [v for v in vars(model).values() if isinstance(v, kind)]
    result = []
    for index in declared:
        projection: dict[str, Any] = {"ProjectionType": index.Meta.projection.projection_type}
        if getattr(index.Meta.projection, "non_key_attributes", None):
            projection["NonKeyAttributes"] = index.Meta.projection.non_key_attributes
        result.append({"IndexName": index.Meta.index_name,
                       "KeySchema": _keys(_index_attributes(index)),
                       "Projection": projection})
    return result


def _attribute_definitions(model: type[Model]) -> list[dict[str, str]]:
    keys = [a for a in model.get_attributes().values() if a.is_hash_key or a.is_range_key]
    for index in vars(model).values():
        if isinstance(index, Index):
            keys += _index_attributes(index)
    return [{"AttributeName": a.attr_name, "AttributeType": a.attr_type} for a in keys]


def _expected_table(model: type[Model]) -> dict[str, Any]:
    from chalicelib.core.db import ttl_attribute

    expected: dict[str, Any] = {
        "TableName": f"{PREFIX}{_short(model)}",
        "KeySchema": _keys(list(model.get_attributes().values())),
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "DeletionProtectionEnabled": True,
        "GlobalSecondaryIndexes": _indexes(model, GlobalSecondaryIndex) or Match.absent(),
        "LocalSecondaryIndexes": _indexes(model, LocalSecondaryIndex) or Match.absent(),
        "TimeToLiveSpecification": Match.absent(),
        "StreamSpecification": Match.absent(),
    }
    if ttl_attribute(model):
        expected["TimeToLiveSpecification"] = {"AttributeName": ttl_attribute(model),
                                               "Enabled": True}
    if getattr(model.Meta, "stream_view_type", None):
        expected["StreamSpecification"] = {"StreamViewType": model.Meta.stream_view_type}
    return expected


@pytest.fixture(scope="module")
def template(stack: Synth) -> Template:
    """The default stack as a CDK assertions template."""
    return Template.from_json(stack.template)


def test_every_model_has_its_table(template: Template, models: list[type[Model]]) -> None:
    template.resource_count_is("AWS::DynamoDB::Table", len(models))
    for model in models:
        template.has_resource("AWS::DynamoDB::Table", {
            "Properties": _expected_table(model),
            "DeletionPolicy": "Retain",
        })


def test_every_key_attribute_has_its_type(stack: Synth, models: list[type[Model]]) -> None:
    tables = stack_tables(stack)

    for model in models:
        deployed = tables[f"{PREFIX}{_short(model)}"]["AttributeDefinitions"]
        assert _sorted(deployed) == _sorted(_attribute_definitions(model)), model.__name__


def _sorted(definitions: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted({(d["AttributeName"], d["AttributeType"]) for d in definitions})


def test_functions_may_read_and_write_every_table_and_index(stack: Synth) -> None:
    granted = [s for s in _role_statements(stack) if "dynamodb:PutItem" in _actions(s)]
    resources = [r for s in granted for r in _as_list(s["Resource"])]

    for table_id, table in stack.of_type("AWS::DynamoDB::Table").items():
        assert {"Fn::GetAtt": [table_id, "Arn"]} in resources
        if table["Properties"].get("GlobalSecondaryIndexes"):
            assert any(table_id in str(r) and "/index/*" in str(r) for r in resources)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions(statement: dict[str, Any]) -> list[str]:
    return _as_list(statement["Action"])


def _role_statements(synthesized: Synth) -> list[dict[str, Any]]:
    """The statements of every policy attached to the functions' role (they all share one)."""
    roles = {json.dumps(f["Properties"]["Role"]) for f in _functions(synthesized).values()}
    assert len(roles) == 1, roles
    (role_id,) = json.loads(roles.pop())["Fn::GetAtt"][:1]  # not the custom resources' roles
    return _statements(synthesized, role_id)


def _statements(synthesized: Synth, role_id: str) -> list[dict[str, Any]]:
    """The statements of every policy attached to the role ``role_id``."""
    return [s for p in synthesized.of_type("AWS::IAM::Policy").values()
            if f'"{role_id}"' in json.dumps(p["Properties"]["Roles"])
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


# --- Problems at the gateway ----------------------------------------------------------------

def test_unknown_routes_answer_a_not_found_problem(stack: Synth) -> None:
    responses = stack.swagger["x-amazon-apigateway-gateway-responses"]

    for kind in ("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND"):
        response = responses[kind]
        assert response["statusCode"] == "404"
        assert response["responseParameters"]["gatewayresponse.header.Content-Type"] == \
            "'application/problem+json'"
        assert '"type": "https://docs.example.test/errors/not-found"' in \
            response["responseTemplates"]["application/json"]


def test_other_methods_on_a_known_path_answer_405_with_allow(stack: Synth,
                                                             rest_routes: list[tuple[str, str]]
                                                             ) -> None:
    for path in {p for _, p in rest_routes}:
        allow = ", ".join(sorted(m for m, p in rest_routes if p == path))
        mock = stack.swagger["paths"][path]["x-amazon-apigateway-any-method"]
        integration = mock["x-amazon-apigateway-integration"]
        response = integration["responses"]["default"]

        assert integration["type"] == "mock"
        assert response["statusCode"] == "405"
        assert response["responseParameters"]["method.response.header.Allow"] == f"'{allow}'"
        assert "/errors/method-not-allowed" in response["responseTemplates"]["application/json"]


# --- The agents' HTTP API, mutual TLS and the tenant CAs -------------------------------------

def _apis(synthesized: Synth, protocol: str) -> dict[str, Any]:
    """The API Gateway v2 APIs of one protocol (``HTTP``, ``WEBSOCKET``), by logical id."""
    return {rid: api for rid, api in synthesized.of_type("AWS::ApiGatewayV2::Api").items()
            if api["Properties"]["ProtocolType"] == protocol}


def _of_api(synthesized: Synth, kind: str, api_id: str) -> dict[str, Any]:
    """The properties of the API Gateway v2 resources of ``kind`` (``Stage``, ``Route``, ...)
    of the API ``api_id``, by logical id."""
    resources = synthesized.of_type(f"AWS::ApiGatewayV2::{kind}")
    return {rid: r["Properties"] for rid, r in resources.items()
            if r["Properties"]["ApiId"] == {"Ref": api_id}}


def _http_api_integration(synthesized: Synth, method: str, path: str) -> dict[str, Any]:
    """The HTTP API integration that serves ``method path``."""
    (route,) = [r["Properties"] for r in synthesized.of_type("AWS::ApiGatewayV2::Route").values()
                if r["Properties"]["RouteKey"] == f"{method} {path}"]
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    return dict(synthesized.resources[integration_id]["Properties"])


def _http_api_target(synthesized: Synth, method: str, path: str) -> str:
    """The logical id of the function the HTTP API invokes for ``method path``."""
    uri = _http_api_integration(synthesized, method, path)["IntegrationUri"]
    return str(uri["Fn::GetAtt"][0])


@pytest.fixture
def opamp(agent_routes: list[tuple[str, str]]) -> tuple[str, str]:
    """The OpAMP route (skips until the app serves it)."""
    if ("POST", "/v1/opamp") not in agent_routes:
        pytest.skip("the app has no POST /v1/opamp yet")
    return ("POST", "/v1/opamp")


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_opamp_is_on_the_http_api_with_payload_1_0_not_on_the_rest_api(
        variant: str, opamp: tuple[str, str], request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(variant)
    (api_id,) = _apis(synthesized, "HTTP")

    integration = _http_api_integration(synthesized, *opamp)

    assert integration["ApiId"] == {"Ref": api_id}
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == (
        "AWS_PROXY", "1.0")
    assert "/v1/opamp" not in synthesized.swagger["paths"]
    stages = _of_api(synthesized, "Stage", api_id).values()
    assert [(x["StageName"], x["AutoDeploy"]) for x in stages] == [("$default", True)]


def test_opamp_has_its_own_function_running_the_same_handler(stack: Synth,
                                                             opamp: tuple[str, str]) -> None:
    target = _http_api_target(stack, *opamp)
    function = _functions(stack)[target]["Properties"]
    other = _functions(stack)["GetApiTenantFunction"]["Properties"]

    assert target == "PostV1OpampFunction"
    assert function["FunctionName"] == f"{PREFIX}post-v1-opamp"
    assert (function["Handler"], function["CodeUri"], function["Role"]) == (
        other["Handler"], other["CodeUri"], other["Role"])


def test_the_http_api_may_invoke_the_opamp_function_for_its_route(stack: Synth,
                                                                   opamp: tuple[str, str]
                                                                   ) -> None:
    (api_id,) = _apis(stack, "HTTP")
    target = _http_api_target(stack, *opamp)
    granted = [p["Properties"] for p in stack.of_type("AWS::Lambda::Permission").values()
               if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [target, "Arn"]}]

    (permission,) = granted
    assert permission["Principal"] == "apigateway.amazonaws.com"
    parts = permission["SourceArn"]["Fn::Join"][1]
    assert {"Ref": api_id} in parts
    assert parts[-1].endswith("/v1/opamp")


def test_the_truststore_bucket_is_private_versioned_and_kept(stack: Synth,
                                                             opamp: tuple[str, str]) -> None:
    (bucket,) = stack.of_type("AWS::S3::Bucket").values()
    props = bucket["Properties"]

    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert "BucketEncryption" in props
    assert bucket["DeletionPolicy"] == "Retain"


def test_the_agent_domain_requires_client_certificates_from_the_truststore(
        stack: Synth, opamp: tuple[str, str]) -> None:
    (domain,) = stack.of_type("AWS::ApiGatewayV2::DomainName").values()
    (bucket_id,) = stack.of_type("AWS::S3::Bucket")
    (api_id,) = _apis(stack, "HTTP")
    (mapping,) = stack.of_type("AWS::ApiGatewayV2::ApiMapping").values()
    props = domain["Properties"]

    assert props["DomainName"] == DOMAIN["agentDomainName"]
    assert props["DomainNameConfigurations"][0]["CertificateArn"] == DOMAIN["agentCertificateArn"]
    assert props["DomainNameConfigurations"][0]["SecurityPolicy"] == "TLS_1_2"
    assert props["MutualTlsAuthentication"]["TruststoreUri"] == {
        "Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/truststore.pem"]]}
    assert mapping["Properties"]["ApiId"] == {"Ref": api_id}


def test_without_domain_context_the_http_api_has_no_custom_domain(single: Synth,
                                                                  opamp: tuple[str, str]
                                                                  ) -> None:
    assert single.of_type("AWS::ApiGatewayV2::DomainName") == {}
    assert single.of_type("AWS::ApiGatewayV2::ApiMapping") == {}
    assert len(_apis(single, "HTTP")) == 1


def test_the_first_deploy_writes_a_truststore_only_if_there_is_none(
        stack: Synth, opamp: tuple[str, str]) -> None:
    (bucket_id,) = stack.of_type("AWS::S3::Bucket")
    (seed_id, seed), = stack.of_type("Custom::AWS").items()
    (domain,) = stack.of_type("AWS::ApiGatewayV2::DomainName").values()
    create = json.dumps(seed["Properties"]["Create"])

    assert '\\"action\\":\\"putObject\\"' in create
    assert '\\"IfNoneMatch\\":\\"*\\"' in create
    assert "PreconditionFailed" in create
    assert "Update" not in seed["Properties"]  # later deploys leave the runtime's truststore be
    assert {"Ref": bucket_id} in seed["Properties"]["Create"]["Fn::Join"][1]
    assert seed_id in _as_list(domain["DependsOn"])


def test_functions_know_the_truststore_and_the_agent_domain(stack: Synth) -> None:
    (bucket_id,) = stack.of_type("AWS::S3::Bucket")

    for function, env in _environments(stack).items():
        assert env["AMPORA_TRUSTSTORE_BUCKET"] == {"Ref": bucket_id}, function
        assert env["AMPORA_AGENT_DOMAIN_NAME"] == DOMAIN["agentDomainName"], function


def test_without_a_domain_functions_are_not_told_of_one(single: Synth) -> None:
    for env in _environments(single).values():
        assert "AMPORA_TRUSTSTORE_BUCKET" in env
        assert "AMPORA_AGENT_DOMAIN_NAME" not in env
    assert not [s for s in _role_statements(single) if "apigateway:PATCH" in _actions(s)]


def test_functions_may_rewrite_the_truststore_and_repoint_the_domain_only(stack: Synth) -> None:
    (bucket_id,) = stack.of_type("AWS::S3::Bucket")
    statements = _role_statements(stack)
    (objects,) = [s for s in statements if "s3:PutObject" in _actions(s)]
    (patch,) = [s for s in statements if "apigateway:PATCH" in _actions(s)]

    assert set(_actions(objects)) == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}
    assert objects["Resource"] == {"Fn::Join": ["", [
        {"Fn::GetAtt": [bucket_id, "Arn"]}, "/truststore.pem"]]}
    assert _actions(patch) == ["apigateway:PATCH"]
    arn = patch["Resource"]["Fn::Join"][1]
    assert arn[-1] == f":apigateway:us-east-1::/domainnames/{DOMAIN['agentDomainName']}"


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_functions_may_create_and_read_the_tenant_ca_secrets_only(
        variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(variant)
    statements = [s for s in _role_statements(synthesized)
                  if "secretsmanager:CreateSecret" in _actions(s)]

    (statement,) = statements
    assert set(_actions(statement)) == {"secretsmanager:CreateSecret",
                                        "secretsmanager:GetSecretValue",
                                        "secretsmanager:DescribeSecret"}
    resource = statement["Resource"]["Fn::Join"][1]
    assert resource[-1] == ":secret:ampora/ci/ca/*"
    assert {"Ref": "AWS::AccountId"} in resource


# --- Rollouts: the task functions, the sweep and the state machine ---------------------------
# (No dependency cycle among them: cfn-lint, below, checks the template for one.)

def _resolve(synthesized: Synth, value: Any) -> Any:
    """``value`` as CloudFormation resolves it: pseudo parameters as :data:`PSEUDO`, another
    ``Ref`` as ``${<logical id>}``, a function's ``Arn`` from its name."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"], f"${{{value['Ref']}}}")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(synthesized, part) for part in parts)
    if "Fn::Select" in value:
        index, items = value["Fn::Select"]
        return _resolve(synthesized, items)[index]
    if "Fn::Split" in value:
        separator, item = value["Fn::Split"]
        return _resolve(synthesized, item).split(separator)
    if "Fn::GetAtt" in value:
        function_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return _function_arn(_functions(synthesized)[function_id]["Properties"]["FunctionName"])
    raise AssertionError(f"cannot resolve {value}")


def _function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{PSEUDO['AWS::AccountId']}:function:{name}"


def _states_arn(resource: str) -> str:
    return f"arn:aws:states:us-east-1:{PSEUDO['AWS::AccountId']}:{resource}"


def _machine(synthesized: Synth) -> tuple[str, dict[str, Any]]:
    """The rollout state machine's logical id and properties."""
    ((machine_id, machine),) = synthesized.of_type("AWS::StepFunctions::StateMachine").items()
    return machine_id, dict(machine["Properties"])


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_the_apps_other_functions_are_deployed_once_each_with_their_handler(
        variant: str, request: pytest.FixtureRequest, lambdas: dict[str, tuple[str, str]]) -> None:
    from chalicelib.rollouts.machine import TASKS

    synthesized: Synth = request.getfixturevalue(variant)
    functions = [f["Properties"] for f in _functions(synthesized).values()]

    assert {*TASKS.values(), "rollout-sweep"} <= {name for name, _ in lambdas.values()}
    for logical_id, (name, handler) in lambdas.items():
        function = _functions(synthesized)[logical_id]["Properties"]
        assert (function["Handler"], function["FunctionName"]) == (handler, f"{PREFIX}{name}")
        assert [f["Handler"] for f in functions].count(handler) == 1, f"{name} is duplicated"


def test_the_sweep_runs_every_five_minutes(stack: Synth,
                                           lambdas: dict[str, tuple[str, str]]) -> None:
    (sweep,) = [lid for lid, (name, _) in lambdas.items() if name == "rollout-sweep"]

    events = _functions(stack)[sweep]["Properties"]["Events"]

    assert list(events.values()) == [{"Type": "Schedule",
                                      "Properties": {"Schedule": "rate(5 minutes)"}}]


def test_the_rollout_machine_is_standard_and_named_as_the_app_looks_it_up(
        stack: Synth, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.core.settings import settings
    from chalicelib.rollouts.executions import machine_name

    _, machine = _machine(stack)
    (prefix,) = {env["AMPORA_TABLE_PREFIX"] for env in _environments(stack).values()}
    monkeypatch.setenv("AMPORA_TABLE_PREFIX", prefix)  # as a deployed function reads it
    settings.cache_clear()
    try:
        looked_up = machine_name()
    finally:
        settings.cache_clear()

    assert machine["StateMachineType"] == "STANDARD"
    assert machine["StateMachineName"] == looked_up == f"{PREFIX}rollouts"


def test_the_machine_runs_the_definition_the_app_generates_on_its_task_functions(
        stack: Synth) -> None:
    from chalicelib.rollouts.machine import TASKS, definition

    _, machine = _machine(stack)
    deployed = machine["DefinitionString"]
    for key, value in machine["DefinitionSubstitutions"].items():
        deployed = deployed.replace(f"${{{key}}}", _resolve(stack, value))

    tasks = {role: _function_arn(f"{PREFIX}{name}") for role, name in TASKS.items()}
    assert json.loads(deployed) == definition(tasks)


def test_the_machine_may_invoke_the_task_functions_only(stack: Synth) -> None:
    from chalicelib.rollouts.machine import TASKS

    _, machine = _machine(stack)
    (role_id, _) = machine["RoleArn"]["Fn::GetAtt"]
    statements = _statements(stack, role_id)
    trust = stack.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    tasks = [_function_arn(f"{PREFIX}{name}") for name in TASKS.values()]
    assert {a for s in statements for a in _actions(s)} == {"lambda:InvokeFunction"}
    assert {_resolve(stack, r) for s in statements for r in _as_list(s["Resource"])} == \
        {*tasks, *(f"{arn}:*" for arn in tasks)}
    assert [s["Principal"] for s in trust] == [{"Service": "states.amazonaws.com"}]


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_every_function_is_told_the_machine_arn_without_referencing_the_machine(
        variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(variant)
    machine_id, machine = _machine(synthesized)
    arn = _states_arn(f"stateMachine:{machine['StateMachineName']}")

    for function_id, function in _functions(synthesized).items():
        env = function["Properties"]["Environment"]["Variables"]
        assert _resolve(synthesized, env["AMPORA_ROLLOUT_STATE_MACHINE_ARN"]) == arn, function_id
        assert machine_id not in json.dumps(function), f"{function_id} -> machine -> tasks: cycle"


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_functions_may_start_describe_stop_and_wake_the_machines_executions_only(
        variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(variant)
    name = _machine(synthesized)[1]["StateMachineName"]
    granted: dict[str, set[str]] = {}
    for statement in _role_statements(synthesized):
        for action in [a for a in _actions(statement) if a.startswith("states:")]:
            granted.setdefault(action, set()).update(
                _resolve(synthesized, r) for r in _as_list(statement["Resource"]))

    executions = {_states_arn(f"execution:{name}:*")}
    assert granted == {
        "states:StartExecution": {_states_arn(f"stateMachine:{name}")},
        "states:DescribeExecution": executions,
        "states:StopExecution": executions,
        "states:SendTaskSuccess": {"*"},  # task tokens take no resource-level permission
        "states:SendTaskFailure": {"*"},
        "states:ListStateMachines": {"*"},
    }


# --- Live updates: the websocket API, the events stream's fan-out, the connections table -----

#: The function ``chalice package`` gives each websocket route key, as the stack names it.
WEBSOCKET_FUNCTIONS = {"$connect": f"{PREFIX}websocket-connect",
                       "$default": f"{PREFIX}websocket-message",
                       "$disconnect": f"{PREFIX}websocket-disconnect"}


@pytest.fixture(scope="module")
def websocket_handlers() -> dict[str, str]:
    """The handler of each websocket route key of the Chalice app."""
    import app

    return {key: h.handler_string for key, h in app.app.websocket_handlers.items()}


def _websocket_api(synthesized: Synth) -> str:
    """The logical id of the (one) websocket API."""
    (api_id,) = _apis(synthesized, "WEBSOCKET")
    return str(api_id)


def _websocket_targets(synthesized: Synth) -> dict[str, str]:
    """The logical id of the function each route of the websocket API invokes, by route key."""
    api_id = _websocket_api(synthesized)
    targets = {}
    for route in _of_api(synthesized, "Route", api_id).values():
        separator, (prefix, integration_id) = route["Target"]["Fn::Join"]
        assert f"{prefix}{separator}" == "integrations/"
        integration = synthesized.resources[integration_id["Ref"]]["Properties"]
        assert (integration["ApiId"], integration["IntegrationType"]) == ({"Ref": api_id},
                                                                          "AWS_PROXY")
        uri, names = integration["IntegrationUri"]["Fn::Sub"]
        assert uri.endswith(":function:${WebsocketHandler}/invocations"), uri
        targets[route["RouteKey"]] = names["WebsocketHandler"]["Ref"]
    return targets


def _table_id(synthesized: Synth, name: str) -> str:
    (table_id,) = [tid for tid, t in synthesized.of_type("AWS::DynamoDB::Table").items()
                   if t["Properties"]["TableName"] == name]
    return str(table_id)


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_each_websocket_route_invokes_its_handler_in_a_function_of_its_own(
        variant: str, request: pytest.FixtureRequest, websocket_handlers: dict[str, str]) -> None:
    synthesized: Synth = request.getfixturevalue(variant)
    api = synthesized.resources[_websocket_api(synthesized)]["Properties"]

    targets = _websocket_targets(synthesized)

    assert set(targets) == set(websocket_handlers) == set(WEBSOCKET_FUNCTIONS)
    assert len(set(targets.values())) == len(targets)
    for key, target in targets.items():
        function = _functions(synthesized)[target]["Properties"]
        assert (function["Handler"], function["FunctionName"]) == (websocket_handlers[key],
                                                                  WEBSOCKET_FUNCTIONS[key])
    # Chalice's: the hub's messages carry "type", not "action", so every one takes $default.
    assert api["RouteSelectionExpression"] == "$request.body.action"


def test_the_websocket_api_is_deployed_to_a_stage_named_like_the_rest_apis(stack: Synth) -> None:
    api_id = _websocket_api(stack)
    (stage,) = _of_api(stack, "Stage", api_id).values()
    deployment = stack.resources[stage["DeploymentId"]["Ref"]]

    assert stage["StageName"] == stack.resources["RestAPI"]["Properties"]["StageName"] == "ci"
    assert deployment["Properties"]["ApiId"] == {"Ref": api_id}
    # deployed once the routes exist
    assert sorted(deployment["DependsOn"]) == sorted(_of_api(stack, "Route", api_id))


def test_api_gateway_may_invoke_each_websocket_function_from_its_api(stack: Synth) -> None:
    api_id = _websocket_api(stack)

    for target in _websocket_targets(stack).values():
        (permission,) = [p["Properties"] for p in stack.of_type("AWS::Lambda::Permission").values()
                         if p["Properties"]["FunctionName"] == {"Ref": target}]
        arn, names = permission["SourceArn"]["Fn::Sub"]
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert arn.endswith(":${WebsocketAPIId}/*") and names == {"WebsocketAPIId": {"Ref": api_id}}


def test_the_websocket_url_is_a_stack_output(stack: Synth) -> None:
    api_id = _websocket_api(stack)
    (stage_id,) = _of_api(stack, "Stage", api_id)  # its Ref is its name

    output = stack.template["Outputs"]["WebsocketConnectEndpointURL"]

    assert _resolve(stack, output["Value"]) == \
        f"wss://${{{api_id}}}.execute-api.us-east-1.amazonaws.com/${{{stage_id}}}"


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_functions_may_post_to_and_close_the_hubs_connections_only(
        variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(variant)
    api_id = _websocket_api(synthesized)
    granted = [s for s in _role_statements(synthesized)  # the handlers' and the fan-out's role
               if any(a.startswith("execute-api:") for a in _actions(s))]

    (statement,) = granted
    assert _actions(statement) == ["execute-api:ManageConnections"]
    assert {_resolve(synthesized, r) for r in _as_list(statement["Resource"])} == {
        f"arn:aws:execute-api:us-east-1:123456789012:${{{api_id}}}/*/{method}/@connections/*"
        for method in ("POST", "DELETE")}


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_the_events_stream_feeds_the_fan_out_function_in_bounded_batches(
        variant: str, request: pytest.FixtureRequest) -> None:
    from chalicelib.live.routes import FAN_OUT

    synthesized: Synth = request.getfixturevalue(variant)
    events = _table_id(synthesized, f"{PREFIX}events")
    (mapping,) = synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]

    assert stack_tables(synthesized)[f"{PREFIX}events"]["StreamSpecification"] == {
        "StreamViewType": "NEW_IMAGE"}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [events, "StreamArn"]}
    assert _resolve(synthesized, props["FunctionName"]) == f"{PREFIX}{FAN_OUT}"
    assert (props["StartingPosition"], props["BatchSize"]) == ("LATEST", 100)
    assert 0 < props["MaximumBatchingWindowInSeconds"] <= 5
    # A failing batch is split, then skipped: -1 (the default) would retry it until it expires.
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 <= props["MaximumRetryAttempts"] <= 10
    assert props.get("ParallelizationFactor", 1) == 1  # a shard's events in order


def test_the_fan_out_may_read_the_stream_before_its_mapping_is_created(stack: Synth) -> None:
    stream = {"Fn::GetAtt": [_table_id(stack, f"{PREFIX}events"), "StreamArn"]}
    statements = _role_statements(stack)
    (mapping,) = stack.of_type("AWS::Lambda::EventSourceMapping").values()
    (policy,) = [pid for pid, p in stack.of_type("AWS::IAM::Policy").items()
                 if json.dumps(stream) in json.dumps(p)]

    (read,) = [s for s in statements if s["Resource"] == stream]
    assert set(_actions(read)) == {"dynamodb:DescribeStream", "dynamodb:GetRecords",
                                   "dynamodb:GetShardIterator"}
    assert any(_actions(s) == ["dynamodb:ListStreams"] and s["Resource"] == "*"  # no resource
               for s in statements)                                              # level for it
    assert policy in _as_list(mapping["DependsOn"])


def test_the_connections_table_has_its_indexes_and_expiry(stack: Synth) -> None:
    table = stack_tables(stack)[f"{PREFIX}connections"]
    indexes = {i["IndexName"]: (i["KeySchema"], i["Projection"])
               for i in table["GlobalSecondaryIndexes"]}

    assert table["KeySchema"] == [{"AttributeName": "connection_id", "KeyType": "HASH"}]
    assert indexes == {
        "by-tenant": ([{"AttributeName": "tenant", "KeyType": "HASH"},
                       {"AttributeName": "connection_id", "KeyType": "RANGE"}],
                      {"ProjectionType": "ALL"}),
        "by-token": ([{"AttributeName": "token_id", "KeyType": "HASH"},
                      {"AttributeName": "connection_id", "KeyType": "RANGE"}],
                     {"ProjectionType": "KEYS_ONLY"}),
    }
    assert _sorted(table["AttributeDefinitions"]) == [("connection_id", "S"), ("tenant", "S"),
                                                      ("token_id", "S")]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


# --- The template is valid CloudFormation ----------------------------------------------------

@pytest.mark.parametrize("variant", ["stack", "single"])
def test_cfn_lint_passes(variant: str, request: pytest.FixtureRequest) -> None:
    from cfnlint.api import ManualArgs, lint_file

    synthesized: Synth = request.getfixturevalue(variant)
    path = synthesized.outdir / f"{synthesized.stack}.template.json"

    matches = lint_file(path, config=ManualArgs(regions=["us-east-1"]))

    assert [str(m) for m in matches] == []


# --- What Lambda ships -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def package(stack: Synth) -> Iterator[zipfile.ZipFile]:
    """The deployment package every function runs."""
    (asset,) = stack.file_assets()
    with zipfile.ZipFile(asset) as archive:
        yield archive


def _is_x86_64_elf(header: bytes) -> bool:
    """An ELF64 shared object for x86-64 (``e_machine`` 62), as Lambda's x86_64 runs."""
    return header[:4] == b"\x7fELF" and header[4] == 2 and header[18:20] == b"\x3e\x00"


def _wheel_tags(archive: zipfile.ZipFile, dist: str) -> list[str]:
    (wheel,) = [n for n in archive.namelist() if re.fullmatch(rf"{dist}-[^/]+\.dist-info/WHEEL", n)]
    return re.findall(r"^Tag: (\S+)$", archive.read(wheel).decode(), flags=re.MULTILINE)


@pytest.mark.parametrize(("dist", "binary", "tag"), [
    ("cryptography", "cryptography/hazmat/bindings/_rust.abi3.so",
     r"cp311-abi3-manylinux\w*_x86_64"),
    ("pydantic_core", "pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so",
     r"cp311-cp311-manylinux\w*_x86_64"),
    ("pyyaml", "yaml/_yaml.cpython-311-x86_64-linux-gnu.so", r"cp311-cp311-manylinux\w*_x86_64"),
    ("common_expression_language", "cel/cel.cpython-311-x86_64-linux-gnu.so",
     r"cp311-cp311-manylinux\w*_x86_64"),
])
def test_compiled_dependencies_are_built_for_lambda(package: zipfile.ZipFile, dist: str,
                                                    binary: str, tag: str) -> None:
    with package.open(binary) as shared_object:
        assert _is_x86_64_elf(shared_object.read(20))
    assert any(re.fullmatch(tag, t) for t in _wheel_tags(package, dist))


def _pins() -> list[tuple[str, str]]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return [tuple(pin.split("==")) for pin in pins if "==" in pin]  # type: ignore[misc]


def test_every_pinned_requirement_is_packaged(package: zipfile.ZipFile) -> None:
    names = set(package.namelist())
    dist_infos = {n.split("/")[0].lower() for n in names if ".dist-info/" in n}

    for name, version in _pins():
        assert f"{re.sub(r'[-.]+', '_', name).lower()}-{version}.dist-info" in dist_infos, name
    for module in ("app.py", "chalicelib/__init__.py", "chalice/app.py", "pynamodb/__init__.py",
                   "jwt/__init__.py", "aws_lambda_powertools/__init__.py",
                   "pydantic/__init__.py", "boto3/__init__.py", "yaml/__init__.py",
                   "cel/__init__.py"):
        assert module in names, module


@pytest.mark.parametrize("variant", ["stack", "single"])
def test_every_function_runs_an_entry_point_lambda_can_call(
        variant: str, request: pytest.FixtureRequest) -> None:
    """Lambda imports a function's handler and calls ``handler(event, context)``: only what
    Chalice wraps for Lambda takes that. (Chalice 1.34 leaves a websocket handler registered on a
    Blueprint as the bare function, ``def handler(event)``.)"""
    from chalice import Chalice
    from chalice.app import EventSourceHandler

    synthesized: Synth = request.getfixturevalue(variant)

    for function_id, function in _functions(synthesized).items():
        module, _, name = function["Properties"]["Handler"].rpartition(".")
        entry = getattr(importlib.import_module(module), name)
        assert isinstance(entry, Chalice | EventSourceHandler), \
            f"{function_id} runs {module}.{name}, not a Lambda entry point: {entry!r}"


def test_package_fits_lambda(package: zipfile.ZipFile) -> None:
    unzipped = sum(info.file_size for info in package.infolist())

    assert unzipped < 250 * 1024 * 1024


def test_synth_writes_a_cloud_assembly(stack: Synth) -> None:
    assert (stack.outdir / "manifest.json").is_file()


def test_the_group_rosters_table_is_deployed(stack: Synth) -> None:
    rosters = stack_tables(stack)[f"{PREFIX}rosters"]
    assert rosters["KeySchema"] == [{"AttributeName": "group_key", "KeyType": "HASH"},
                                    {"AttributeName": "shard", "KeyType": "RANGE"}]
    assert _sorted(rosters["AttributeDefinitions"]) == [("group_key", "S"), ("shard", "N")]
