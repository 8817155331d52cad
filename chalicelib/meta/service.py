"""The OpenAPI document of the running app, built once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.core.http import OPERATIONS
from chalicelib.core.problems import PROBLEM_CONTENT_TYPE, problem_type_url
from chalicelib.core.settings import settings

OPAMP_PATH = "/v1/opamp"


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_CONTENT_TYPE: {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}


def opamp_path(docs_url: str) -> dict[str, Any]:
    """The agent-facing OpAMP endpoint, which speaks protobuf rather than JSON."""
    protobuf = {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}
    return {"post": {
        "operationId": "opamp.exchange", "tags": ["OpAMP"],
        "summary": "One OpAMP exchange over plain HTTP (AgentToServer in, ServerToAgent out)",
        "description": (
            "Agents authenticate with `Authorization: Bearer <bootstrap token>` (amp-bt.…) or "
            "a client certificate Ampora issued (mutual TLS). Protocol errors are answered "
            "inside ServerToAgent.error_response; problems below are for requests no "
            f"protobuf answer can be made for (see {problem_type_url(docs_url, 'bad-request')})."),
        "security": [{}],
        "requestBody": {"required": True, "content": protobuf},
        "responses": {
            "200": {"description": "A ServerToAgent message.", "content": protobuf},
            "400": _problem("The body is not an AgentToServer message with an instance_uid."),
            "401": _problem("No valid bootstrap token or client certificate."),
            "413": _problem("The body is larger than an OpAMP message may be."),
            "415": _problem("The content type is not application/x-protobuf."),
        },
    }}


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for every declared operation and the OpAMP endpoint."""
    from chalicelib.core.openapi import build_document

    docs_url = settings().docs_url
    built = build_document(OPERATIONS, docs_url=docs_url)
    built["paths"][OPAMP_PATH] = opamp_path(docs_url)
    built["tags"].append({"name": "OpAMP"})
    return built
