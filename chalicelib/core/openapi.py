"""The OpenAPI 3.1 document, generated from the operation table so that it cannot drift.

Every path, parameter, body, response and problem response comes from an
:class:`~chalicelib.core.http.Operation` declaration and its pydantic schemas;
nothing here is written by hand except the shapes every operation shares
(problem bodies, paging, ETags, security). :func:`build_document` is pure and
deterministic: the same operations always give the same document, whatever
their order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.core.paging import DEFAULT_LIMIT, MAX_LIMIT
from chalicelib.core.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPES, problem_type_url

if TYPE_CHECKING:
    from chalicelib.core.http import Operation

OPENAPI_VERSION = "3.1.0"
#: The API's version, kept equal to the package version (a test checks pyproject.toml).
API_VERSION = "0.1.0"
JSON = "application/json"
SCHEMA_REF = "#/components/schemas/{model}"
PROBLEM = "Problem"
VALIDATION_PROBLEM = "ValidationProblem"
FIELD_ERROR = "FieldError"
_PATH_PARAM = re.compile(r"\{([^}]+)\}")
_METHOD_ORDER = ("get", "head", "put", "post", "patch", "delete", "options")

ModelKey = tuple[type[BaseModel], JsonSchemaMode]
Refs = dict[ModelKey, dict[str, Any]]


def build_document(
    operations: Iterable[Operation], *, docs_url: str, version: str = API_VERSION
) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``operations``; problem types link under ``docs_url``."""
    ops = list(operations)
    _check_unique(ops)
    refs, schemas = _component_schemas(ops)
    return {
        "openapi": OPENAPI_VERSION,
        "info": _info(docs_url, version),
        "servers": [{"url": "/"}],
        "security": [{"oidc": []}, {"pat": []}],
        "tags": [{"name": tag} for tag in sorted({_tag(op) for op in ops})],
        "paths": _paths(ops, refs, schemas, docs_url),
        "components": {"schemas": schemas, "securitySchemes": _security_schemes()},
    }


def _check_unique(ops: Sequence[Operation]) -> None:
    routes = Counter(f"{op.method.upper()} {op.path}" for op in ops)
    names = Counter(op.name for op in ops)
    for label, counts in (("route", routes), ("operationId", names)):
        duplicates = sorted(value for value, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"duplicate {label}(s) in the operation table: {duplicates}")


def _info(docs_url: str, version: str) -> dict[str, Any]:
    return {
        "title": "Ampora",
        "version": version,
        "summary": "Control plane for fleets of OpAMP agents.",
        "description": (
            "Version configurations, group agents and roll configurations out in waves. "
            "Errors are RFC 9457 problems (`application/problem+json`); each problem's "
            f"`type` is the URL of its page under {docs_url.rstrip('/')}/errors/. "
            "Each operation's `x-ampora-role` names the least role that may call it."
        ),
    }


def _tag(op: Operation) -> str:
    return op.tag or op.resource


def _security_schemes() -> dict[str, Any]:
    return {
        "oidc": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "A bearer JWT from the configured OIDC provider, verified against "
                           "its JWKS; the role claim names Viewer, Operator or Admin.",
        },
        "pat": {
            "type": "http", "scheme": "bearer", "bearerFormat": "amp-pat.<base32>.<crc>",
            "description": "A personal access token: `amp-pat.` + RFC 4648 base32 (uppercase, "
                           "no padding) of 20 random bytes + `.` + base32 (no padding) of the "
                           "big-endian CRC-32 of everything before the last dot. It carries a "
                           "role and an optional allow-list of endpoints.",
        },
    }


# --- components -------------------------------------------------------------------------


def _models_of(op: Operation) -> list[ModelKey]:
    wanted: list[ModelKey] = []
    for model in (op.body, op.query):
        if model is not None:
            wanted.append((model, "validation"))
    if op.response is not None:
        wanted.append((op.response, "serialization"))
    return wanted


def _component_schemas(ops: Sequence[Operation]) -> tuple[Refs, dict[str, Any]]:
    """Every schema the operations use, as components; input/output variants get apart names."""
    keys = sorted({key for op in ops for key in _models_of(op)},
                  key=lambda key: (key[0].__module__, key[0].__qualname__, key[1]))
    refs: Refs = {}
    schemas: dict[str, Any] = {}
    if keys:
        found, top = models_json_schema(keys, by_alias=True, ref_template=SCHEMA_REF)
        refs = cast(Refs, dict(found))
        schemas = dict(top.get("$defs", {}))
    shared = _problem_schemas()
    clash = sorted(schemas.keys() & shared.keys())
    if clash:
        raise ValueError(f"schema name(s) {clash} are reserved for problem bodies")
    return refs, dict(sorted({**schemas, **shared}.items()))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMA_REF.format(model=name)}


def _problem_schemas() -> dict[str, Any]:
    problem = {
        "type": "object",
        "description": "An RFC 9457 problem; some types add members (see each type's page).",
        "properties": {
            "type": {"type": "string", "format": "uri",
                     "description": "The problem type: the URL of the page explaining it."},
            "title": {"type": "string", "description": "The type's stable, human title."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What went wrong with this request."},
            "instance": {"type": "string", "description": "The path of the request."},
        },
        "required": ["type", "title", "status", "detail", "instance"],
        "additionalProperties": True,
    }
    errors = {"type": "array", "items": _ref(FIELD_ERROR), "minItems": 1}
    validation = {"allOf": [_ref(PROBLEM), {"type": "object", "required": ["errors"],
                                            "properties": {"errors": errors}}]}
    field_error = {
        "type": "object", "additionalProperties": False, "required": ["pointer", "detail"],
        "properties": {
            "pointer": {"type": "string", "description": "JSON Pointer (RFC 6901) to the field."},
            "detail": {"type": "string", "description": "Why the field was refused."},
        },
    }
    return {PROBLEM: problem, VALIDATION_PROBLEM: validation, FIELD_ERROR: field_error}


# --- paths ------------------------------------------------------------------------------


def _paths(ops: Sequence[Operation], refs: Refs, schemas: dict[str, Any],
           docs_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, schemas, docs_url)
    return {path: dict(sorted(items.items(), key=lambda item: _method_rank(item[0])))
            for path, items in sorted(paths.items())}


def _method_rank(method: str) -> tuple[int, str]:
    rank = _METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER)
    return rank, method


def _operation(op: Operation, refs: Refs, schemas: dict[str, Any],
               docs_url: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [_tag(op)],
        "x-ampora-role": op.role.label,
    }
    parameters = _parameters(op, refs, schemas)
    if parameters:
        item["parameters"] = parameters
    if op.body is not None:
        item["requestBody"] = _request_body(op.body, refs)
    item["responses"] = {**_success(op, refs), **_problem_responses(op, docs_url)}
    return item


# --- parameters -------------------------------------------------------------------------


def _parameters(op: Operation, refs: Refs, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = [*_path_parameters(op), *_query_parameters(op, refs, schemas)]
    if op.paged:
        parameters += _paging_parameters()
    if op.etag and op.mutating:
        parameters.append(_if_match_parameter())
    seen = [(p["in"], p["name"]) for p in parameters]
    if len(set(seen)) != len(seen):
        raise ValueError(f"{op.name}: parameters declared twice: {sorted(seen)}")
    return parameters


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
             "description": f"The `{name}` of the {op.resource}."}
            for name in _PATH_PARAM.findall(op.path)]


def _query_parameters(op: Operation, refs: Refs,
                      schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """One parameter per field of the query schema, named by its wire (camelCase) alias."""
    if op.query is None:
        return []
    name = refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]
    component = schemas[name]
    required = set(component.get("required", []))
    parameters = []
    for alias, prop in component.get("properties", {}).items():
        parameter = {"name": alias, "in": "query", "required": alias in required,
                     "schema": _parameter_schema(prop)}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _parameter_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A field's schema as a query parameter: an absent parameter, not ``null``, means unset."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "description", "anyOf")}
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    options = [option for option in prop.get("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    return schema


def _paging_parameters() -> list[dict[str, Any]]:
    return [
        {"name": "limit", "in": "query", "required": False,
         "description": "How many items to return.",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT}},
        {"name": "offset", "in": "query", "required": False,
         "description": "How many items to skip; not together with `cursor`.",
         "schema": {"type": "integer", "minimum": 0, "default": 0}},
        {"name": "cursor", "in": "query", "required": False,
         "description": "The opaque cursor from a previous page's `Link: rel=\"next\"`; "
                        "not together with `offset`.",
         "schema": {"type": "string", "minLength": 1}},
    ]


def _if_match_parameter() -> dict[str, Any]:
    return {"name": "If-Match", "in": "header", "required": False,
            "description": "The ETag from a GET. A mismatch answers 412 with the current "
                           "ETag; a tenant with `requireIfMatch` answers 428 without it.",
            "schema": {"type": "string"}}


# --- bodies and responses ---------------------------------------------------------------


def _request_body(body: type[BaseModel], refs: Refs) -> dict[str, Any]:
    required = any(field.is_required() for field in body.model_fields.values())
    return {"required": required,
            "content": {JSON: {"schema": dict(refs[(body, "validation")])}}}


def _success(op: Operation, refs: Refs) -> dict[str, Any]:
    response: dict[str, Any] = {"description": op.summary}
    headers = _success_headers(op)
    if headers:
        response["headers"] = headers
    if op.status != 204:
        response["content"] = {JSON: {"schema": _success_schema(op, refs)}}
        response["content"].update({media_type: {"schema": {"type": "string"}}
                                    for media_type in op.media_types})
    return {str(op.status): response}


def _success_schema(op: Operation, refs: Refs) -> dict[str, Any]:
    if op.response is None:
        return {}
    ref = dict(refs[(op.response, "serialization")])
    return {"type": "array", "items": ref} if op.paged else ref


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


def _success_headers(op: Operation) -> dict[str, Any]:
    headers: dict[str, Any] = {name: _header(text) for name, text in op.response_headers}
    if op.etag:
        headers["ETag"] = _header("The strong ETag of the resource; send it back as If-Match.")
    if op.media_types:
        headers["Vary"] = _header("`Accept`: the representation follows the Accept header.")
    if op.paged:
        headers["X-Total-Count"] = _header("How many items match, across all pages.",
                                           {"type": "integer", "minimum": 0})
        headers["Link"] = _header('`<url>; rel="next"` while more items remain; the URL '
                                  "keeps the filters.")
    return headers


_PROBLEM_HEADERS = {
    401: ("WWW-Authenticate", "The Bearer challenge, e.g. `Bearer error=\"invalid_token\"`."),
    405: ("Allow", "The methods this path answers."),
    412: ("ETag", "The resource's current ETag."),
}


def _problem_responses(op: Operation, docs_url: str) -> dict[str, Any]:
    """One response per problem status the operation can answer."""
    by_status: dict[int, list[str]] = {}
    for slug in op.all_problems():
        if slug not in PROBLEM_TYPES:
            raise ValueError(f"{op.name}: unknown problem slug {slug!r}")
        by_status.setdefault(PROBLEM_TYPES[slug].status, []).append(slug)
    return {str(status): _problem_response(status, slugs, docs_url)
            for status, slugs in sorted(by_status.items())}


def _problem_response(status: int, slugs: list[str], docs_url: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _problem_description(slugs, docs_url),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": _problem_schema(slugs)}},
    }
    if status in _PROBLEM_HEADERS:
        name, description = _PROBLEM_HEADERS[status]
        response["headers"] = {name: _header(description)}
    return response


def _problem_description(slugs: list[str], docs_url: str) -> str:
    links = [f"[`{slug}`]({problem_type_url(docs_url, slug)}): {PROBLEM_TYPES[slug].title}"
             for slug in slugs]
    if len(links) == 1:
        return links[0]
    return "One of these problems:\n\n" + "\n".join(f"- {link}" for link in links)


def _problem_schema(slugs: list[str]) -> dict[str, Any]:
    if "validation-failed" not in slugs:
        return _ref(PROBLEM)
    if len(slugs) == 1:
        return _ref(VALIDATION_PROBLEM)
    return {"anyOf": [_ref(VALIDATION_PROBLEM), _ref(PROBLEM)]}
