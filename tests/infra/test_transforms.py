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


_LOGS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:*"],
                                                "Resource": "*"}]}


def _role(name: str, document: dict[str, Any] = _LOGS) -> dict[str, Any]:
    """A role as ``chalice package`` writes it from the policy file."""
    return {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Statement": []},
        "Policies": [{"PolicyDocument": document, "PolicyName": f"{name}Policy"}]}}


def _function(handler: str, role: str, **properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::Function",
            "Properties": {"Handler": handler, "Runtime": "python3.11",
                           "Role": {"Fn::GetAtt": [role, "Arn"]}, **properties}}


def _packaged(paths: dict[str, list[str]]) -> dict[str, Any]:
    """A template shaped like ``chalice package`` output for ``paths``."""
    swagger = {"paths": {p: {m.lower(): _operation() for m in ms} for p, ms in paths.items()}}
    return {
        "Resources": {
            "ApiHandlerRole": _role("ApiHandlerRole"),
            "APIHandler": _function("app.app", "ApiHandlerRole"),
            "APIHandlerInvokePermission": {"Type": "AWS::Lambda::Permission"},
            "RestAPI": {"Type": "AWS::Serverless::Api",
                        "Properties": {"DefinitionBody": swagger}},
        },
        "Outputs": {"APIHandlerArn": {}, "EndpointURL": {}},
    }


def _with_other_functions(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` plus what ``chalice package`` writes for a ``@lambda_function`` named
    ``task`` and a ``@schedule`` named ``sweep``: a function and a role of its own each."""
    schedule = {"SweepEvent": {"Type": "Schedule",
                               "Properties": {"Schedule": "rate(5 minutes)"}}}
    template["Resources"].update({
        "TaskRole": _role("TaskRole"), "Task": _function("tasks.task", "TaskRole"),
        "SweepRole": _role("SweepRole"),
        "Sweep": _function("tasks.sweep", "SweepRole", Events=schedule),
    })
    return template


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


def test_functions_that_serve_no_route_are_kept_once_each_by_the_split() -> None:
    # Given a package with a route, a pure function and a scheduled one
    packaged = _with_other_functions(_packaged({"/api/a": ["GET"]}))

    # When the handler is split into one function per route
    split = split_functions(packaged, [Route("GET", "/api/a")], "p-")

    # Then the other functions are there, once, as packaged (with their schedule)
    assert function_ids(split) == ["Task", "Sweep", "GetApiAFunction"]
    assert split["Resources"]["Sweep"] == packaged["Resources"]["Sweep"]


def test_a_route_function_never_replaces_a_packaged_function() -> None:
    packaged = _packaged({"/api/a": ["GET"]})
    packaged["Resources"]["GetApiAFunction"] = _function("tasks.other", "ApiHandlerRole")

    with pytest.raises(ValueError, match="would replace"):
        split_functions(packaged, [Route("GET", "/api/a")], "p-")


def test_every_function_runs_as_the_api_handlers_role() -> None:
    from infra.functions import share_role

    # Given a package where each function has its own role with the same policy file
    packaged = _with_other_functions(_packaged({"/api/a": ["GET"]}))

    # When the role is shared
    shared = share_role(packaged, "ApiHandlerRole")

    # Then every function runs as the handler's role and the copies are gone
    resources = shared["Resources"]
    assert {json.dumps(resources[f]["Properties"]["Role"]) for f in function_ids(shared)} == {
        json.dumps({"Fn::GetAtt": ["ApiHandlerRole", "Arn"]})}
    assert [r for r, v in resources.items() if v["Type"] == "AWS::IAM::Role"] == ["ApiHandlerRole"]


def test_a_function_with_a_policy_of_its_own_fails_the_synth() -> None:
    from infra.functions import share_role

    packaged = _with_other_functions(_packaged({"/api/a": ["GET"]}))
    packaged["Resources"]["TaskRole"] = _role("TaskRole", {"Statement": []})

    with pytest.raises(ValueError, match="Task has a policy of its own"):
        share_role(packaged, "ApiHandlerRole")


def test_the_apps_other_functions_are_named_with_the_stage_prefix() -> None:
    from infra.functions import name_functions

    packaged = _with_other_functions(_packaged({"/api/a": ["GET"]}))

    named = name_functions(packaged, {"Task": "rollout-task", "Sweep": "rollout-sweep"},
                           "ampora-dev-")

    assert [named["Resources"][f]["Properties"].get("FunctionName")
            for f in function_ids(named)] == [None, "ampora-dev-rollout-task",
                                              "ampora-dev-rollout-sweep"]
    with pytest.raises(ValueError, match="'gone' is not in the package"):
        name_functions(packaged, {"Gone": "gone"}, "ampora-dev-")


def test_lambda_functions_are_found_by_their_packaged_logical_id() -> None:
    from chalice import Chalice, Rate

    from infra.functions import lambda_functions

    # Given an app with a pure function, a scheduled one and websocket handlers
    app = Chalice("t")
    app.lambda_function(name="rollout-open-wave")(lambda event, context: None)
    app.schedule(Rate(5, unit=Rate.MINUTES), name="rollout-sweep")(lambda event: None)
    app.on_ws_connect()(lambda event: None)
    app.on_ws_message()(lambda event: None)

    # Then each is known by the logical id chalice package gives it
    assert lambda_functions(app) == {"RolloutOpenWave": "rollout-open-wave",
                                     "RolloutSweep": "rollout-sweep",
                                     "WebsocketConnect": "websocket-connect",
                                     "WebsocketMessage": "websocket-message"}
