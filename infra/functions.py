"""Function-per-endpoint: split Chalice's one API handler into one Lambda function per route.

``chalice package`` puts every route behind one ``APIHandler`` function. This module
rewrites that SAM template: each (method, path) of the app's route table gets a copy of
the handler (same deployment package, same ``app.app`` entry point, so Chalice routes
the event exactly as before), its own API Gateway integration and its own invoke
permission scoped to that method and path. A route added to the app gets its function
at the next synth, with no edit here. The agents' routes (:data:`AGENT_ROUTES`) are taken
out of the REST API: they get their function too, served by the HTTP API instead.

The app's other functions (``@app.lambda_function``, ``@app.schedule`` and other event
handlers, the websocket handlers) are not REST routes: they stay as Chalice packaged them,
named with the stage's prefix and running as the API handler's role (:func:`share_role`), like
every route's function.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalice import Chalice
from chalice.utils import to_cfn_resource_name

#: The resource type of every Lambda function in the packaged (SAM) template.
FUNCTION = "AWS::Serverless::Function"
#: The logical id Chalice gives its single REST API handler, and what hangs off it.
API_HANDLER = "APIHandler"
_HANDLER_LEFTOVERS = ("APIHandlerInvokePermission",)
_HANDLER_OUTPUTS = ("APIHandlerName", "APIHandlerArn")
_MAX_FUNCTION_NAME = 64
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options",
                      "x-amazon-apigateway-any-method"})
_INVOCATION_URI = ("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31"
                   "/functions/${%s.Arn}/invocations")
_SOURCE_ARN = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RestAPI}/*/%s%s"


def function_name(prefix: str, slug: str) -> str:
    """``<prefix><slug>``, shortened (deterministically) to Lambda's 64 characters if longer."""
    name = f"{prefix}{slug}"
    if len(name) <= _MAX_FUNCTION_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:_MAX_FUNCTION_NAME - 9]}-{digest}"


@dataclass(frozen=True)
class Route:
    """One REST operation of the app: an HTTP method on a path template."""

    method: str
    path: str

    @property
    def logical_id(self) -> str:
        """The function's CloudFormation logical id, e.g. ``GetApiTenantFunction``."""
        words = re.findall(r"[A-Za-z0-9]+", f"{self.method.lower()} {self.path}")
        return "".join(w[:1].upper() + w[1:] for w in words) + "Function"

    def function_name(self, prefix: str) -> str:
        """The deployed function name: ``<prefix><method>-<path>``, at most 64 characters."""
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.method} {self.path}".lower()).strip("-")
        return function_name(prefix, slug)

    @property
    def arn_path(self) -> str:
        """The path as it appears in an execute-api ARN (each parameter is ``*``)."""
        return re.sub(r"\{[^}]+\}", "*", self.path)


def routes_of(route_table: dict[str, dict[str, Any]]) -> list[Route]:
    """Every (method, path) of a Chalice app's ``routes`` table, in registration order."""
    return [Route(method=method, path=path)
            for path, methods in route_table.items() for method in methods]


def lambda_functions(app: Chalice) -> dict[str, str]:
    """The Chalice app's functions that serve no REST route (``@app.lambda_function``, event
    handlers such as ``@app.schedule``, websocket handlers): their name by the logical id
    ``chalice package`` gives them."""
    names = [f.name for f in app.pure_lambda_functions] + [e.name for e in app.event_sources]
    return {**{to_cfn_resource_name(name): name for name in names}, **_websocket_functions(app)}


#: The websocket route keys with a function of their own; every other key is a message.
_WEBSOCKET_KINDS = {"$connect": "connect", "$disconnect": "disconnect"}


def _websocket_functions(app: Chalice) -> dict[str, str]:
    """The functions ``chalice package`` makes for the app's websocket handlers (one for
    ``$connect``, one for ``$disconnect``, one for every other route key: the messages):
    ``websocket-connect``, ``-message``, ``-disconnect`` by their logical id."""
    kinds = {_WEBSOCKET_KINDS.get(key, "message") for key in app.websocket_handlers}
    return {to_cfn_resource_name(f"websocket_{kind}"): f"websocket-{kind}" for kind in kinds}


#: Routes agents call: served by the HTTP API (payload 1.0), never by the REST API.
AGENT_ROUTES = frozenset({Route("POST", "/v1/opamp")})


def agent_routes(routes: Iterable[Route]) -> list[Route]:
    """The routes of ``routes`` that the agents' HTTP API serves."""
    return [route for route in routes if route in AGENT_ROUTES]


def rest_routes(routes: Iterable[Route]) -> list[Route]:
    """The routes of ``routes`` that the operators' REST API serves."""
    return [route for route in routes if route not in AGENT_ROUTES]


def without_routes(swagger: dict[str, Any], routes: Iterable[Route]) -> dict[str, Any]:
    """``swagger`` minus the operations of ``routes`` (and any path left with none)."""
    result = copy.deepcopy(swagger)
    for route in routes:
        path_item = result["paths"].get(route.path, {})
        path_item.pop(route.method.lower(), None)
        if not any(key.lower() in _METHODS for key in path_item):
            result["paths"].pop(route.path, None)
    return result


def _check_logical_ids(routes: Iterable[Route], resources: Mapping[str, Any]) -> None:
    seen: dict[str, Route] = {}
    for route in routes:
        other = seen.setdefault(route.logical_id, route)
        if other != route:
            raise ValueError(f"{route} and {other} would share the function {route.logical_id}")
        if route.logical_id in resources:
            raise ValueError(f"{route}'s function would replace the package's {route.logical_id}")


def _integration(swagger: dict[str, Any], route: Route) -> dict[str, Any]:
    try:
        operation = swagger["paths"][route.path][route.method.lower()]
    except KeyError as exc:
        raise ValueError(f"{route.method} {route.path} is not in the packaged API") from exc
    integration: dict[str, Any] = operation["x-amazon-apigateway-integration"]
    return integration


def _permission(route: Route) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "FunctionName": {"Ref": route.logical_id},
            "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": {"Fn::Sub": _SOURCE_ARN % (route.method, route.arn_path)},
        },
    }


def split_functions(template: dict[str, Any], routes: list[Route], name_prefix: str, *,
                    http_routes: Iterable[Route] = ()) -> dict[str, Any]:
    """``template`` with one function per route in place of Chalice's single handler.

    ``routes`` are wired to the REST API; ``http_routes`` only get their function (the
    stack puts them on the agents' HTTP API, which grants its own invoke permission).
    """
    http_routes = list(http_routes)
    result = copy.deepcopy(template)
    resources: dict[str, Any] = result["Resources"]
    _check_logical_ids([*routes, *http_routes], resources)
    handler = resources.pop(API_HANDLER)
    swagger = resources["RestAPI"]["Properties"]["DefinitionBody"]
    for route in [*routes, *http_routes]:
        function = copy.deepcopy(handler)
        function["Properties"]["FunctionName"] = route.function_name(name_prefix)
        resources[route.logical_id] = function
    for route in routes:
        resources[f"{route.logical_id}InvokePermission"] = _permission(route)
        _integration(swagger, route)["uri"] = {"Fn::Sub": _INVOCATION_URI % route.logical_id}
    for leftover in _HANDLER_LEFTOVERS:
        resources.pop(leftover, None)
    for output in _HANDLER_OUTPUTS:
        result.get("Outputs", {}).pop(output, None)
    return result


def function_ids(template: dict[str, Any]) -> list[str]:
    """The logical ids of every Lambda function of a SAM template."""
    return [rid for rid, resource in template["Resources"].items()
            if resource["Type"] == FUNCTION]


def _role_id(function: dict[str, Any]) -> str:
    role = function["Properties"].get("Role")
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise ValueError(f"a function runs as a role the package did not make: {role}")
    return str(role["Fn::GetAtt"][0])


def _grants(role: dict[str, Any]) -> dict[str, Any]:
    """What a role of the package allows (its policies' documents, without their names)."""
    properties = dict(role["Properties"])
    properties["Policies"] = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    return properties


def share_role(template: dict[str, Any], role_id: str) -> dict[str, Any]:
    """``template`` with every function running as the role ``role_id``.

    With ``autogen_policy`` off, ``chalice package`` gives each function that is not the API
    handler a role of its own with the same policy file; the stack grants one role everything
    the app does, so those copies go. A function whose role allows something else fails.
    """
    result = copy.deepcopy(template)
    resources: dict[str, Any] = result["Resources"]
    own = {fid: _role_id(resources[fid]) for fid in function_ids(result)}
    for function_id, role in own.items():
        if _grants(resources[role]) != _grants(resources[role_id]):
            raise ValueError(f"{function_id} has a policy of its own ({role}): "
                             "grant it in infra instead")
        resources[function_id]["Properties"]["Role"] = {"Fn::GetAtt": [role_id, "Arn"]}
    for role in set(own.values()) - {role_id}:
        del resources[role]
    return result


def name_functions(template: dict[str, Any], names: Mapping[str, str], prefix: str
                   ) -> dict[str, Any]:
    """``template`` with each function of ``names`` (logical id → Chalice name) deployed as
    ``<prefix><name>``; a function missing from the package fails."""
    result = copy.deepcopy(template)
    resources: dict[str, Any] = result["Resources"]
    for logical_id, name in names.items():
        if resources.get(logical_id, {}).get("Type") != FUNCTION:
            raise ValueError(f"the app's function {name!r} is not in the package")
        resources[logical_id]["Properties"]["FunctionName"] = function_name(prefix, name)
    return result
