"""The template rewrites on their own (no synth): function per route, gateway problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.functions import Route, function_ids, routes_of, split_functions
from infra.gateway import with_problem_responses

pytestmark = pytest.mark.infra
ROOT = Path(__file__).resolve().parents[2]

_URI = ("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        "${APIHandler.Arn}/invocations")


def _operation() -> dict[str, Any]:
    return {"consumes": ["application/json"],
            "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": {"Fn::Sub": _URI}}}


def _packaged(paths: dict[str, list[str]]) -> dict[str, Any]:
    """A template shaped like ``chalice package`` output for ``paths``."""
    swagger = {"paths": {p: {m.lower(): _operation() for m in ms} for p, ms in paths.items()}}
    return {
        "Resources": {
            "APIHandler": {"Type": "AWS::Serverless::Function",
                           "Properties": {"Handler": "app.app", "Runtime": "python3.11"}},
            "APIHandlerInvokePermission": {"Type": "AWS::Lambda::Permission"},
            "RestAPI": {"Type": "AWS::Serverless::Api",
                        "Properties": {"DefinitionBody": swagger}},
        },
        "Outputs": {"APIHandlerArn": {}, "EndpointURL": {}},
    }


def test_a_new_route_gets_its_function_without_editing_infra() -> None:
    # Given an app with one more route than before
    table = {"/api/widgets": {"GET": None, "POST": None}, "/api/widgets/{id}": {"DELETE": None}}

    # When the packaged template is split
    split = split_functions(_packaged({p: list(m) for p, m in table.items()}),
                            routes_of(table), "ampora-dev-")

    # Then each route has its own function, integration and permission
    assert function_ids(split) == ["GetApiWidgetsFunction", "PostApiWidgetsFunction",
                                   "DeleteApiWidgetsIdFunction"]
    uri = split["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"][
        "/api/widgets/{id}"]["delete"]["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    assert "${DeleteApiWidgetsIdFunction.Arn}" in uri
    assert "DeleteApiWidgetsIdFunctionInvokePermission" in split["Resources"]
    assert "APIHandler" not in split["Resources"] and "APIHandlerArn" not in split["Outputs"]


def test_a_route_missing_from_the_package_fails_the_synth() -> None:
    with pytest.raises(ValueError, match="not in the packaged API"):
        split_functions(_packaged({"/a": ["GET"]}), [Route("GET", "/b")], "p-")


def test_routes_that_would_share_a_logical_id_fail_the_synth() -> None:
    routes = [Route("GET", "/api/a-b"), Route("GET", "/api/a_b")]

    with pytest.raises(ValueError, match="would share"):
        split_functions(_packaged({"/api/a-b": ["GET"], "/api/a_b": ["GET"]}), routes, "p-")


def test_long_function_names_are_shortened_deterministically() -> None:
    route = Route("POST", "/api/" + "/".join(["segment"] * 12))

    name = route.function_name("ampora-production-")

    assert len(name) == 64 and name == route.function_name("ampora-production-")


def test_each_path_answers_405_for_the_methods_it_lacks() -> None:
    swagger = _packaged({"/api/x": ["PUT", "GET"]})["Resources"]["RestAPI"]["Properties"][
        "DefinitionBody"]

    rewritten = with_problem_responses(swagger, "https://docs.example.test")

    response = rewritten["paths"]["/api/x"]["x-amazon-apigateway-any-method"][
        "x-amazon-apigateway-integration"]["responses"]["default"]
    assert response["statusCode"] == "405"
    assert response["responseParameters"]["method.response.header.Allow"] == "'GET, PUT'"
    assert "https://docs.example.test/errors/method-not-allowed" in \
        response["responseTemplates"]["application/json"]


def test_every_problem_the_gateway_answers_is_documented() -> None:
    from infra.gateway import gateway_responses, method_not_allowed

    bodies = [r["responseTemplates"]["application/json"]
              for r in gateway_responses("https://d").values()]
    bodies.append(method_not_allowed("https://d", {"get": {}})["x-amazon-apigateway-integration"]
                  ["responses"]["default"]["responseTemplates"]["application/json"])

    for body in bodies:
        slug = json.loads(body)["type"].removeprefix("https://d/errors/")
        assert (ROOT / "docs" / "errors" / f"{slug}.md").is_file(), slug


def test_agent_routes_leave_the_rest_api_but_keep_a_function() -> None:
    from infra.functions import agent_routes, rest_routes, without_routes

    # Given an app with an operator route and the agents' OpAMP route on one path table
    table = {"/api/agents": {"GET": None}, "/v1/opamp": {"POST": None}}
    routes = routes_of(table)
    packaged = _packaged({p: list(m) for p, m in table.items()})
    api = packaged["Resources"]["RestAPI"]["Properties"]

    # When the REST API loses the agents' routes and the handler is split
    api["DefinitionBody"] = without_routes(api["DefinitionBody"], agent_routes(routes))
    split = split_functions(packaged, rest_routes(routes), "ampora-dev-",
                            http_routes=agent_routes(routes))

    # Then OpAMP has its function but no REST path, integration or REST permission
    paths = split["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert list(paths) == ["/api/agents"]
    assert function_ids(split) == ["GetApiAgentsFunction", "PostV1OpampFunction"]
    assert split["Resources"]["PostV1OpampFunction"]["Properties"]["FunctionName"] == \
        "ampora-dev-post-v1-opamp"
    assert "PostV1OpampFunctionInvokePermission" not in split["Resources"]


def test_removing_one_method_keeps_the_others_on_the_path() -> None:
    from infra.functions import without_routes

    swagger = _packaged({"/x": ["GET", "POST"]})["Resources"]["RestAPI"]["Properties"][
        "DefinitionBody"]

    kept = without_routes(swagger, [Route("POST", "/x")])

    assert list(kept["paths"]["/x"]) == ["get"]
    assert list(swagger["paths"]["/x"]) == ["get", "post"]  # the input is left as it was
