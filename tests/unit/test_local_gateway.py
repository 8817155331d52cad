"""The local gateway's pure parts: route matching as API Gateway does it, and event shape."""

from __future__ import annotations

import base64

import pytest

from chalicelib.local.events import (
    HttpRequest,
    Invocation,
    build_event,
    encode_body,
    request_time,
    single_and_multi,
    to_http_response,
)
from chalicelib.local.routing import Match, RouteTable
from chalicelib.local.tables import decode_item, encode_item

ROUTES = RouteTable({
    "/api/tenant": ["GET", "PUT"],
    "/api/api-tokens": ["GET", "POST"],
    "/api/api-tokens/{id}": ["GET"],
    "/api/api-tokens/{id}/revoke": ["POST"],
    "/api/agents/{id}": ["GET"],
    "/api/agents/search": ["POST"],
    "/api/files/{path+}": ["GET"],
    "/": ["GET"],
})


@pytest.mark.parametrize(("path", "template", "params"), [
    ("/api/tenant", "/api/tenant", {}),
    ("/api/tenant/", "/api/tenant", {}),
    ("/api/api-tokens/abc", "/api/api-tokens/{id}", {"id": "abc"}),
    ("/api/api-tokens/abc/revoke", "/api/api-tokens/{id}/revoke", {"id": "abc"}),
    ("/api/agents/search", "/api/agents/search", {}),  # literal beats {id}
    ("/api/agents/searching", "/api/agents/{id}", {"id": "searching"}),
    ("/api/agents/a%20b", "/api/agents/{id}", {"id": "a b"}),
    ("/api/agents/a%2Fb", "/api/agents/{id}", {"id": "a/b"}),
    ("/api/files/a/b/c.txt", "/api/files/{path+}", {"path": "a/b/c.txt"}),
    ("/", "/", {}),
])
def test_a_path_resolves_to_the_most_specific_template(path: str, template: str,
                                                       params: dict[str, str]) -> None:
    match = ROUTES.resolve(path)
    assert match is not None
    assert (match.template, match.params) == (template, params)


@pytest.mark.parametrize("path", [
    "/api", "/api/nothing", "/api/api-tokens/abc/revoke/more", "/api/files", "/api//tenant",
    "/api/api-tokens//revoke",
])
def test_a_path_that_fits_no_template_resolves_to_nothing(path: str) -> None:
    assert ROUTES.resolve(path) is None


def test_a_match_lists_the_methods_for_allow() -> None:
    match = ROUTES.resolve("/api/tenant")
    assert match is not None
    assert match.methods == frozenset({"GET", "PUT"})


INVOCATION = Invocation(request_id="req-1", epoch_ms=1_767_600_000_000, host="127.0.0.1:8000",
                        port=8000, binary_types=("application/x-protobuf", "image/*"))
MATCH = Match(template="/api/api-tokens/{id}", params={"id": "t1"}, methods=frozenset({"GET"}))


def _event(**overrides: object) -> dict:
    fields: dict = {"method": "GET", "path": "/api/api-tokens/t1", "source_ip": "10.0.0.9",
                    "headers": [("Accept", "application/json"), ("X-Trace", "a"),
                                ("X-Trace", "b"), ("User-Agent", "curl/8")]}
    fields.update(overrides)
    return build_event(HttpRequest(**fields), MATCH, INVOCATION)


def test_the_event_has_every_member_of_an_api_gateway_rest_proxy_event() -> None:
    event = _event()
    assert set(event) == {"resource", "path", "httpMethod", "headers", "multiValueHeaders",
                          "queryStringParameters", "multiValueQueryStringParameters",
                          "pathParameters", "stageVariables", "requestContext", "body",
                          "isBase64Encoded"}
    assert (event["resource"], event["path"], event["httpMethod"]) == (
        "/api/api-tokens/{id}", "/api/api-tokens/t1", "GET")
    assert event["pathParameters"] == {"id": "t1"}
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_the_request_context_carries_request_id_time_and_source_ip() -> None:
    context = _event()["requestContext"]
    assert context["requestId"] == "req-1"
    assert context["requestTimeEpoch"] == 1_767_600_000_000
    assert context["requestTime"] == request_time(1_767_600_000_000)
    assert context["identity"]["sourceIp"] == "10.0.0.9"
    assert context["identity"]["userAgent"] == "curl/8"
    assert (context["resourcePath"], context["httpMethod"], context["path"]) == (
        "/api/api-tokens/{id}", "GET", "/api/api-tokens/t1")
    assert context["stage"] == "local"


def test_repeated_headers_keep_the_last_value_and_all_values() -> None:
    event = _event()
    assert event["headers"]["X-Trace"] == "b"
    assert event["multiValueHeaders"]["X-Trace"] == ["a", "b"]


def test_the_gateway_adds_host_and_forwarding_headers() -> None:
    headers = _event()["headers"]
    assert headers["Host"] == "127.0.0.1:8000"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-For"] == "10.0.0.9"
    assert headers["X-Forwarded-Port"] == "8000"


def test_a_forwarded_for_chain_gets_the_callers_address_appended() -> None:
    headers = _event(headers=[("X-Forwarded-For", "203.0.113.7")])["headers"]
    assert headers["X-Forwarded-For"] == "203.0.113.7, 10.0.0.9"


def test_the_clients_host_header_is_kept() -> None:
    headers = _event(headers=[("host", "localhost:8000")])["headers"]
    assert headers["Host"] == "localhost:8000"
    assert "host" not in headers


def test_query_parameters_are_none_when_absent_and_multi_valued_when_repeated() -> None:
    assert _event()["queryStringParameters"] is None
    assert _event()["multiValueQueryStringParameters"] is None
    event = _event(query=[("status", "active"), ("tag", "a"), ("tag", "b")])
    assert event["queryStringParameters"] == {"status": "active", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"status": ["active"], "tag": ["a", "b"]}


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b"", "application/json", (None, False)),
    (b'{"a": 1}', "application/json", ('{"a": 1}', False)),
    (b"\x0a\x01\xff", "application/x-protobuf", ("CgH/", True)),
    (b"\x89PNG", "image/png; charset=binary", (base64.b64encode(b"\x89PNG").decode(), True)),
    (b"\xff\xfe", "application/json", ("//4=", True)),  # not UTF-8: never mangled
])
def test_bodies_are_text_or_base64_as_api_gateway_sends_them(
        body: bytes, content_type: str, expected: tuple) -> None:
    assert encode_body(body, content_type, INVOCATION.binary_types) == expected


def test_single_and_multi_of_nothing_is_none() -> None:
    assert single_and_multi([]) == (None, None)


def test_a_lambda_result_becomes_an_http_response_with_merged_headers() -> None:
    reply = to_http_response({
        "statusCode": 201, "headers": {"Content-Type": "application/json", "ETag": '"x"'},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "ETag": ['"y"']},
        "body": '{"ok":true}'})
    assert reply.status == 201
    assert reply.body == b'{"ok":true}'
    assert ("Set-Cookie", "a=1") in reply.headers and ("Set-Cookie", "b=2") in reply.headers
    assert [v for k, v in reply.headers if k == "ETag"] == ['"y"']


def test_a_base64_result_body_is_decoded() -> None:
    reply = to_http_response({"statusCode": 200, "body": "CgH/", "isBase64Encoded": True})
    assert reply.body == b"\x0a\x01\xff"


def test_snapshot_items_round_trip_binary_values_nested_anywhere() -> None:
    item = {
        "B": {"S": "an attribute named like a type"},
        "blob": {"B": b"\x00\x01"},
        "blobs": {"BS": [b"\x02", b"\x03"]},
        "nested": {"M": {"inner": {"L": [{"B": b"\x04"}, {"N": "5"}]}}},
        "flag": {"BOOL": True}, "nothing": {"NULL": True}, "names": {"SS": ["a"]},
    }
    encoded = encode_item(item)
    assert encoded["blob"] == {"B": "AAE="}
    assert decode_item(encoded) == item
