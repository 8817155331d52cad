"""The OpenAPI document: valid 3.1, complete for every route, and generated, never hand-kept."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import computed_field

import app
from chalicelib.core.access import Role
from chalicelib.core.http import OPERATIONS, Operation
from chalicelib.core.openapi import build_document
from chalicelib.core.problems import PROBLEM_TYPES, problem_type_url
from chalicelib.core.schema import Schema
from chalicelib.opamp.routes import PATH as OPAMP_PATH

DOCS = "https://docs.example.test"
ROOT = Path(__file__).resolve().parents[2]
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
OPS = list(OPERATIONS)
by_name = pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(OPS, docs_url=DOCS)


def operation_of(document: dict[str, Any], op: Operation) -> dict[str, Any]:
    return document["paths"][op.path][op.method.lower()]


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []


def parameters(item: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in item.get("parameters", []) if p["in"] == where}


# --- fakes: operations no feature declares, to prove the generator reacts to declarations ---


class WidgetIn(Schema):
    """A widget to create."""

    display_name: str
    max_count: int = 3


class Gauge(Schema):
    """A model whose output differs from its input (a computed field)."""

    raw_value: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def double_value(self) -> int:
        """Twice the raw value."""
        return self.raw_value * 2


class WidgetQuery(Schema):
    """Filters of the widget list."""

    owner_id: str | None = None
    kind: str


def fake(**overrides: Any) -> Operation:
    fields: dict[str, Any] = {"method": "GET", "path": "/api/widgets", "name": "widgets.list",
                              "summary": "List widgets", "resource": "widget",
                              "role": Role.VIEWER, "tag": "Widgets"}
    refs = {f"{k}_ref": overrides.pop(k) for k in ("body", "query", "response") if k in overrides}
    return Operation(**{**fields, **overrides, **refs})


# --- the real document -----------------------------------------------------------------


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    # Given every operation of the app / When the document is built / Then it is valid 3.1
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_document_is_json_and_independent_of_registration_order() -> None:
    # Given the same operations in two orders / When each is turned into a document
    forward = build_document(OPS, docs_url=DOCS)
    backward = build_document(list(reversed(OPS)), docs_url=DOCS)
    # Then both serialize to the very same JSON
    assert json.dumps(forward) == json.dumps(backward)


def test_the_served_document_with_opamp_is_valid_openapi() -> None:
    from chalicelib.meta.service import document as served

    validate(served(), cls=OpenAPIV31SpecValidator)
    assert OPAMP_PATH in served()["paths"]


def test_every_chalice_route_is_documented_and_nothing_else() -> None:
    # Given every route Chalice actually serves (REST operations and the OpAMP endpoint)
    from chalicelib.meta.service import document as served

    routes = {(path, method.lower()) for path, methods in app.app.routes.items()
              for method in methods}
    # When the path/method pairs of the served document are listed
    documented = {(path, method) for path, item in served()["paths"].items() for method in item}
    # Then they are exactly the same set
    assert routes, "the app registered no routes"
    assert documented == routes


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = refs_in(document)
    assert refs
    for ref in refs:
        assert resolve(document, ref), ref


def test_info_servers_and_version_match_the_package(document: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert document["info"]["title"] == "Ampora"
    assert document["info"]["version"] == project["version"]
    assert document["servers"] == [{"url": "/"}]


def test_both_credentials_are_bearer_schemes_required_globally(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["oidc"] == schemes["oidc"] | {"type": "http", "scheme": "bearer",
                                                 "bearerFormat": "JWT"}
    assert schemes["pat"]["scheme"] == "bearer"
    assert "amp-pat.<base32>.<crc>" in schemes["pat"]["bearerFormat"]
    assert {name for req in document["security"] for name in req} == {"oidc", "pat"}


@by_name
def test_operation_identity_role_and_tags(document: dict[str, Any], op: Operation) -> None:
    item = operation_of(document, op)
    assert item["operationId"] == op.name
    assert item["summary"] == op.summary
    assert item["x-ampora-role"] == op.role.label
    assert item["tags"] == [op.tag or op.resource]


@by_name
def test_path_parameters_come_from_the_template(document: dict[str, Any], op: Operation) -> None:
    names = re.findall(r"\{([^}]+)\}", op.path)
    declared = parameters(operation_of(document, op), "path")
    assert sorted(declared) == sorted(names)
    assert all(p["required"] is True for p in declared.values())


@by_name
def test_query_parameters_are_the_query_schema_fields(document: dict[str, Any],
                                                      op: Operation) -> None:
    # Given the operation's query schema / Then each field is a query parameter by wire name
    declared = parameters(operation_of(document, op), "query")
    paging = {"limit", "offset", "cursor"} if op.paged else set()
    fields = op.query.model_fields if op.query else {}
    expected = {(f.alias or n) for n, f in fields.items()}
    assert set(declared) == expected | paging
    for name in expected:
        assert CAMEL.match(name), name
        assert declared[name]["required"] is fields[_field_name(op, name)].is_required()


def _field_name(op: Operation, alias: str) -> str:
    assert op.query is not None
    return next(n for n, f in op.query.model_fields.items() if (f.alias or n) == alias)


@by_name
def test_every_problem_status_is_answered(document: dict[str, Any], op: Operation) -> None:
    # Given the problems the operation can answer
    responses = operation_of(document, op)["responses"]
    for slug in op.all_problems():
        kind = PROBLEM_TYPES[slug]
        # Then its status is a problem+json response whose description links the type
        response = responses[str(kind.status)]
        assert list(response["content"]) == ["application/problem+json"]
        assert problem_type_url(DOCS, slug) in response["description"]
    statuses = {str(PROBLEM_TYPES[s].status) for s in op.all_problems()}
    assert {code for code in responses if int(code) >= 400} == statuses


@by_name
def test_validation_failures_have_their_errors_shape(document: dict[str, Any],
                                                     op: Operation) -> None:
    response = operation_of(document, op)["responses"].get("422")
    if "validation-failed" not in op.all_problems():
        assert response is None or "/errors/validation-failed" not in response["description"]
        return
    assert response is not None
    schema = response["content"]["application/problem+json"]["schema"]
    # one 422 problem: its shape; several (e.g. policy-denied too): the validation one among them
    refs = [option["$ref"] for option in schema.get("anyOf", [schema])]
    shapes = [resolve(document, ref) for ref in refs]
    [shape] = [s for s in shapes if "allOf" in s and "errors" in s["allOf"][1]["properties"]]
    errors = shape["allOf"][1]["properties"]["errors"]
    assert resolve(document, errors["items"]["$ref"])["required"] == ["pointer", "detail"]


@by_name
def test_success_response(document: dict[str, Any], op: Operation) -> None:
    success = operation_of(document, op)["responses"][str(op.status)]
    headers = success.get("headers", {})
    assert ("ETag" in headers) is op.etag
    assert ({"X-Total-Count", "Link"} <= set(headers)) is op.paged
    if op.status == 204:
        assert "content" not in success
        return
    schema = success["content"]["application/json"]["schema"]
    if op.paged:
        assert schema["type"] == "array"
        schema = schema["items"]
    if op.response is not None:
        assert resolve(document, schema["$ref"])["title"] == op.response.__name__


@by_name
def test_paging_parameters(document: dict[str, Any], op: Operation) -> None:
    query = parameters(operation_of(document, op), "query")
    if not op.paged:
        assert not {"limit", "offset", "cursor"} & set(query)
        return
    assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000,
                                        "default": 50}
    assert query["offset"]["schema"]["minimum"] == 0
    assert query["cursor"]["schema"]["type"] == "string"


@by_name
def test_if_match_on_etag_mutations(document: dict[str, Any], op: Operation) -> None:
    item = operation_of(document, op)
    expected = op.etag and op.mutating
    assert ("If-Match" in parameters(item, "header")) is expected
    if expected:
        assert "ETag" in item["responses"]["412"]["headers"]
        assert "428" in item["responses"]


@by_name
def test_request_body_schema_is_camel_case_and_closed(document: dict[str, Any],
                                                      op: Operation) -> None:
    item = operation_of(document, op)
    if op.body is None:
        assert "requestBody" not in item
        return
    ref = item["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = resolve(document, ref)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {f.alias or n for n, f in op.body.model_fields.items()}
    assert all(CAMEL.match(name) for name in schema["properties"])


# --- the generator reacts to what is declared (these fail if it ignores a declaration) ---


@pytest.mark.parametrize(("op", "has_body"), [
    (fake(method="POST", name="widgets.create", body=WidgetIn, status=201), True),
    (fake(method="POST", name="widgets.poke"), False),
], ids=["with-body", "without-body"])
def test_a_declared_body_becomes_a_request_body(op: Operation, has_body: bool) -> None:
    document = build_document([op], docs_url=DOCS)
    validate(document, cls=OpenAPIV31SpecValidator)
    item = operation_of(document, op)
    assert ("requestBody" in item) is has_body
    if has_body:
        body = item["requestBody"]
        assert body["required"] is True
        schema = resolve(document, body["content"]["application/json"]["schema"]["$ref"])
        assert set(schema["properties"]) == {"displayName", "maxCount"}
        assert schema["additionalProperties"] is False
        assert "422" in item["responses"]


@pytest.mark.parametrize(("op", "expected"), [
    (fake(paged=True, response=Gauge), {"limit", "offset", "cursor"}),
    (fake(query=WidgetQuery), {"ownerId", "kind"}),
    (fake(), set()),
], ids=["paged", "query", "plain"])
def test_query_and_paging_parameters_follow_the_declaration(op: Operation,
                                                            expected: set[str]) -> None:
    document = build_document([op], docs_url=DOCS)
    validate(document, cls=OpenAPIV31SpecValidator)
    declared = parameters(operation_of(document, op), "query")
    assert set(declared) == expected
    if op.query is not None:
        assert declared["kind"]["required"] is True
        assert declared["ownerId"]["required"] is False
        assert declared["ownerId"]["schema"] == {"type": "string"}


def test_input_and_output_variants_of_one_model_get_distinct_components() -> None:
    # Given a model used as a body and as a response, whose output has an extra field
    op = fake(method="PUT", path="/api/gauges/{id}", name="gauges.put", body=Gauge,
              response=Gauge)
    # When the document is built
    document = build_document([op], docs_url=DOCS)
    item = operation_of(document, op)
    body_ref = item["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    out_ref = item["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    # Then body and response point at different components, each with its own shape
    assert body_ref != out_ref
    assert "doubleValue" not in resolve(document, body_ref)["properties"]
    assert "doubleValue" in resolve(document, out_ref)["properties"]
    validate(document, cls=OpenAPIV31SpecValidator)


def test_a_204_has_no_content_and_an_etag_get_answers_etag() -> None:
    deleted = fake(method="DELETE", path="/api/widgets/{id}", name="widgets.delete",
                   status=204, etag=True)
    document = build_document([deleted], docs_url=DOCS)
    item = operation_of(document, deleted)
    assert "content" not in item["responses"]["204"]
    assert "If-Match" in parameters(item, "header")
    assert parameters(item, "path")["id"]["required"] is True


def test_slugs_sharing_a_status_are_all_listed_with_links() -> None:
    op = fake(problems=("not-found", "conflict"), paged=True)
    document = build_document([op], docs_url=DOCS)
    description = operation_of(document, op)["responses"]["400"]["description"]
    for slug in ("invalid-paging", "invalid-cursor", "invalid-query"):
        assert f"[`{slug}`]({DOCS}/errors/{slug})" in description
    assert "404" in operation_of(document, op)["responses"]
    assert "409" in operation_of(document, op)["responses"]


@pytest.mark.parametrize(("ops", "message"), [
    ([fake(problems=("no-such-problem",))], "unknown problem slug"),
    ([fake(), fake(name="widgets.other")], "duplicate route"),
    ([fake(), fake(method="POST")], "duplicate operationId"),
], ids=["unknown-slug", "same-route", "same-operation-id"])
def test_inconsistent_declarations_are_refused(ops: list[Operation], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_document(ops, docs_url=DOCS)
