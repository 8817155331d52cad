"""The OpAMP endpoint: ``POST /v1/opamp`` (protobuf AgentToServer in, ServerToAgent out).

Not an ``operation``: agents send protobuf, not JSON, and authenticate with a
bootstrap token or a client certificate, not OIDC. This module stays lean: the
service (and protobuf with it) is imported by the first request.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from chalice.app import CaseInsensitiveMapping

from chalicelib.core.http import problem_response
from chalicelib.core.lazy import LazyModule
from chalicelib.core.problems import AmporaError

bp = Blueprint(__name__)
service = LazyModule("chalicelib.opamp.service")
PROTOBUF = "application/x-protobuf"
PATH = "/v1/opamp"


def _client_cert(context: dict[str, Any]) -> str | None:
    identity = context.get("identity") or {}
    cert = identity.get("clientCert") or {}
    pem = cert.get("clientCertPem")
    return str(pem) if pem else None


def _expect_protobuf(request: Any) -> None:
    """Mark the request as accepting protobuf: an OpAMP answer always is.

    Chalice refuses a binary answer to a request without a matching ``Accept``
    (a REST API rule); agents (e.g. Go's net/http) send none, and the HTTP API
    agents use returns the binary body whatever the request accepts.
    """
    accept = str(request.headers.get("accept") or "")
    if PROTOBUF not in accept and "*/*" not in accept:
        request.headers = CaseInsensitiveMapping({**dict(request.headers), "accept": PROTOBUF})


@bp.route(PATH, methods=["POST"], content_types=[PROTOBUF])
def opamp() -> Response:
    """One OpAMP exchange over plain HTTP."""
    request = bp.current_request
    context = request.context or {}
    _expect_protobuf(request)
    try:
        answer = service.serve(service.AgentRequest(
            body=request.raw_body or b"", authorization=request.headers.get("authorization"),
            client_cert_pem=_client_cert(context)))
    except AmporaError as error:
        return problem_response(error, instance=str(context.get("path") or PATH))
    return Response(body=answer.body, status_code=200, headers=answer.headers)
