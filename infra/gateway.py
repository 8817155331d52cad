"""Problem responses at the gateway: what API Gateway answers by itself, as RFC 9457 problems.

API Gateway never invokes a function for a path it does not know (it answers
403 ``MISSING_AUTHENTICATION_TOKEN``) or for a method a known path does not serve.
These rewrites of the API's swagger make those answers the same problems the local
stack gives: 404 ``not-found`` for unknown routes, 405 ``method-not-allowed`` with an
``Allow`` header for a known path with another method (a MOCK integration on the
path's ``ANY`` method, which API Gateway only picks when no specific method matches).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from chalicelib.core.problems import PROBLEM_TYPES, problem_type_url

PROBLEM_JSON = "application/problem+json"
ANY_METHOD = "x-amazon-apigateway-any-method"
GATEWAY_RESPONSES = "x-amazon-apigateway-gateway-responses"
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def _problem_template(docs_url: str, slug: str, detail: str) -> str:
    """A problem body as a mapping template (``$context`` variables are filled by the gateway).

    Status, title and type come from the app's one problem table, so the gateway and the
    app cannot disagree about them; ``instance`` is the requested path, as the app answers.
    """
    kind = PROBLEM_TYPES[slug]
    return json.dumps({"type": problem_type_url(docs_url, slug), "title": kind.title,
                       "status": kind.status, "detail": detail, "instance": "$context.path"})


def _gateway_response(slug: str, detail: str, docs_url: str) -> dict[str, Any]:
    return {
        "statusCode": str(PROBLEM_TYPES[slug].status),
        "responseParameters": {"gatewayresponse.header.Content-Type": f"'{PROBLEM_JSON}'"},
        "responseTemplates": {"application/json": _problem_template(docs_url, slug, detail)},
    }


def gateway_responses(docs_url: str) -> dict[str, Any]:
    """The gateway responses that would otherwise leave API Gateway as non-problem bodies."""
    not_found = _gateway_response("not-found", "no route matches $context.path", docs_url)
    return {
        "MISSING_AUTHENTICATION_TOKEN": not_found,
        "RESOURCE_NOT_FOUND": not_found,
        "UNSUPPORTED_MEDIA_TYPE": _gateway_response(
            "unsupported-media-type", "this content type is not accepted here", docs_url),
        "REQUEST_TOO_LARGE": _gateway_response(
            "payload-too-large", "the request exceeds the gateway's limit", docs_url),
    }


def allowed_methods(path_item: dict[str, Any]) -> list[str]:
    """The HTTP methods a swagger path item serves, as an ``Allow`` list (sorted)."""
    return sorted(m.upper() for m in path_item if m in _HTTP_METHODS)


def _content_types(path_item: dict[str, Any]) -> list[str]:
    """What the path's operations consume: the MOCK needs a request template for each."""
    consumed = [ct for method, op in path_item.items() if method in _HTTP_METHODS
                for ct in op.get("consumes", [])]
    return list(dict.fromkeys(["application/json", *consumed]))


def method_not_allowed(docs_url: str, path_item: dict[str, Any]) -> dict[str, Any]:
    """The ``ANY`` operation that answers 405 for every method ``path_item`` lacks."""
    allow = ", ".join(allowed_methods(path_item))
    body = _problem_template(
        docs_url, "method-not-allowed",
        f"$context.httpMethod is not allowed on $context.resourcePath; allowed: {allow}")
    headers = {"Allow": {"type": "string"}, "Content-Type": {"type": "string"}}
    return {
        "produces": [PROBLEM_JSON],
        "responses": {"405": {"description": "405 response", "headers": headers}},
        "x-amazon-apigateway-integration": {
            "type": "mock",
            "passthroughBehavior": "never",
            "requestTemplates": {ct: '{"statusCode": 405}'
                                 for ct in _content_types(path_item)},
            "responses": {"default": {
                "statusCode": "405",
                "responseParameters": {
                    "method.response.header.Allow": f"'{allow}'",
                    "method.response.header.Content-Type": f"'{PROBLEM_JSON}'",
                },
                "responseTemplates": {"application/json": body},
            }},
        },
    }


def with_problem_responses(swagger: dict[str, Any], docs_url: str) -> dict[str, Any]:
    """``swagger`` with gateway responses and a 405 ``ANY`` operation on every path."""
    result = copy.deepcopy(swagger)
    for path_item in result["paths"].values():
        path_item[ANY_METHOD] = method_not_allowed(docs_url, path_item)
    result[GATEWAY_RESPONSES] = gateway_responses(docs_url)
    return result
