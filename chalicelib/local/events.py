"""API Gateway REST (payload v1) proxy events, built from an HTTP request as AWS builds them.

The local gateway turns each request into the event Lambda would receive and
each handler result back into an HTTP response, so what runs locally is what
runs behind API Gateway. Pure: no I/O, no clock, no randomness of its own.
"""

from __future__ import annotations

import base64
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.local.routing import Match


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the gateway received it (headers and query in wire order)."""

    method: str
    path: str
    query: Sequence[tuple[str, str]] = ()
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class Invocation:
    """Facts API Gateway adds to each request: ids, time, stage, its own host and, behind a
    mutual-TLS custom domain, the client certificate (``requestContext.identity.clientCert``)."""

    request_id: str
    epoch_ms: int
    stage: str = "local"
    host: str = "127.0.0.1:8000"
    port: int = 8000
    binary_types: Sequence[str] = field(default_factory=tuple)
    api_id: str = "local"
    account_id: str = "123456789012"
    scheme: str = "http"
    client_cert: dict[str, Any] | None = None


def single_and_multi(pairs: Iterable[tuple[str, str]]
                     ) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """API Gateway's two views of repeated names: last value wins, and all values (None if none)."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return (single or None), (multi or None)


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    found = [value for key, value in headers if key.lower() == name.lower()]
    return found[-1] if found else None


def gateway_headers(request: HttpRequest, invocation: Invocation) -> list[tuple[str, str]]:
    """The client's headers plus those API Gateway sets (Host, X-Forwarded-*)."""
    forwarded = _header(request.headers, "x-forwarded-for")
    added = {
        "Host": _header(request.headers, "host") or invocation.host,
        "X-Forwarded-For": f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip,
        "X-Forwarded-Port": str(invocation.port),
        "X-Forwarded-Proto": invocation.scheme,
    }
    kept = [(k, v) for k, v in request.headers if k.lower() not in {a.lower() for a in added}]
    return kept + list(added.items())


def matches_type(content_type: str | None, patterns: Iterable[str]) -> bool:
    """Whether a Content-Type (parameters ignored) matches any media-type pattern."""
    if not content_type:
        return False
    media = content_type.split(";")[0].strip().lower()
    return any(fnmatch.fnmatchcase(media, p.lower()) for p in patterns)


def encode_body(body: bytes, content_type: str | None, binary_types: Sequence[str]
                ) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``: base64 for binary media types."""
    if not body:
        return None, False
    if not matches_type(content_type, binary_types):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def request_time(epoch_ms: int) -> str:
    """``requestContext.requestTime`` in API Gateway's CLF format."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _request_context(request: HttpRequest, match: Match, invocation: Invocation,
                     user_agent: str | None) -> dict[str, Any]:
    # ``path`` is the path as the client sent it, as behind a custom domain name
    # (on the execute-api host AWS would prefix the stage).
    return {
        "resourceId": "local", "resourcePath": match.template, "httpMethod": request.method,
        "extendedRequestId": invocation.request_id, "requestTime": request_time(
            invocation.epoch_ms), "path": request.path, "accountId": invocation.account_id,
        "protocol": "HTTP/1.1", "stage": invocation.stage, "domainPrefix": "127",
        "requestTimeEpoch": invocation.epoch_ms, "requestId": invocation.request_id,
        "identity": {"sourceIp": request.source_ip, "userAgent": user_agent, "user": None,
                     "caller": None, "accessKey": None, "accountId": None,
                     "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
                     "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None,
                     "userArn": None, **_client_cert(invocation)},
        "domainName": invocation.host.split(":")[0], "apiId": invocation.api_id,
    }


def _client_cert(invocation: Invocation) -> dict[str, Any]:
    return {} if invocation.client_cert is None else {"clientCert": invocation.client_cert}


def build_event(request: HttpRequest, match: Match, invocation: Invocation) -> dict[str, Any]:
    """The API Gateway REST proxy event (payload v1) for ``request`` routed to ``match``."""
    headers, multi_headers = single_and_multi(gateway_headers(request, invocation))
    query, multi_query = single_and_multi(request.query)
    body, is_base64 = encode_body(request.body, _header(request.headers, "content-type"),
                                  invocation.binary_types)
    return {
        "resource": match.template,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": match.params or None,
        "stageVariables": None,
        "requestContext": _request_context(request, match, invocation,
                                           _header(request.headers, "user-agent")),
        "body": body,
        "isBase64Encoded": is_base64,
    }


@dataclass(frozen=True)
class HttpResponse:
    """What the gateway sends back: status, headers (repeatable) and the raw body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def to_http_response(result: dict[str, Any]) -> HttpResponse:
    """The HTTP response for a Lambda proxy result, merging single and multi-value headers."""
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers.extend((name, str(v)) for v in values)
    taken = {name.lower() for name in multi}
    headers.extend((k, str(v)) for k, v in (result.get("headers") or {}).items()
                   if k.lower() not in taken)
    raw = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    return HttpResponse(status=int(result.get("statusCode", 200)), headers=headers, body=body)
