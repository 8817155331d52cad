"""The framework's own refusals (405 from Chalice) are problems too, with their headers."""

from __future__ import annotations

import json


def event(method: str, resource: str) -> dict:
    return {"resource": resource, "path": resource, "httpMethod": method, "headers": {},
            "multiValueHeaders": {}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": resource, "httpMethod": method, "path": resource,
                               "requestId": "r1", "identity": {"sourceIp": "10.0.0.1"}}}


def test_method_not_allowed_is_a_problem_with_allow() -> None:
    import app

    answer = app.app(event("PATCH", "/api/tenant"), None)
    assert answer["statusCode"] == 405
    headers = {k.lower(): v for k, v in answer["headers"].items()}
    assert headers["content-type"] == "application/problem+json"
    assert set(headers["allow"].replace(" ", "").split(",")) == {"GET", "PUT"}
    body = json.loads(answer["body"])
    assert body["type"] == "https://docs.ampora.io/errors/method-not-allowed"
    assert body["instance"] == "/api/tenant"
