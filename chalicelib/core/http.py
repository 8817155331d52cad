"""Operations: the one pipeline every REST route runs through.

A feature declares a route with :func:`operation`, naming its role, schemas and
problems. The pipeline authenticates, authorizes, parses the query and body,
checks preconditions, calls the view (one service call), renders the reply or
the problem, and audits state-changing calls. The same declarations feed the
OpenAPI document and infra's function-per-endpoint, so none of them can drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from chalice import Blueprint, Response

from chalicelib.core import auth
from chalicelib.core.access import Principal, Role, authorize
from chalicelib.core.concurrency import IfMatch, etag, parse_if_match
from chalicelib.core.deps import deps
from chalicelib.core.lazy import resolve
from chalicelib.core.observability import logger, traced
from chalicelib.core.paging import PAGING_PARAMS, Page, PageRequest, parse_page, scope_of
from chalicelib.core.problems import (
    PROBLEM_CONTENT_TYPE,
    AmporaError,
    PreconditionRequired,
    to_problem,
)
from chalicelib.core.secrets import cursor_secret
from chalicelib.core.settings import settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chalicelib.core.schema import Schema

JSON = "application/json"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Problems any operation can answer (every request is authenticated and parsed).
COMMON_PROBLEMS = ("unauthorized", "invalid-token", "forbidden", "unknown-role",
                   "endpoint-not-allowed", "invalid-query", "malformed-json",
                   "validation-failed", "payload-too-large", "unsupported-media-type",
                   "service-unavailable", "internal-error")


@dataclass(frozen=True)
class Operation:
    """One REST operation as declared by its feature."""

    method: str
    path: str
    name: str
    summary: str
    resource: str
    role: Role
    #: The module that holds the schemas named by ``*_ref`` (imported on first use).
    schemas: str = ""
    #: The body, query and response schemas: classes, or names in ``schemas``.
    body_ref: Any = None
    query_ref: Any = None
    response_ref: Any = None
    status: int = 200
    paged: bool = False
    etag: bool = False
    problems: tuple[str, ...] = ()
    tag: str = ""
    #: Extra headers of the success response: (name, description) pairs.
    response_headers: tuple[tuple[str, str], ...] = ()
    #: Media types the success response may take besides JSON, chosen by ``Accept``.
    media_types: tuple[str, ...] = ()

    @property
    def body(self) -> type[Schema] | None:
        """The request body schema (``None``: the operation takes no body)."""
        return resolve(self.schemas, self.body_ref)  # type: ignore[no-any-return]

    @property
    def query(self) -> type[Schema] | None:
        """The schema of the query parameters (besides paging)."""
        return resolve(self.schemas, self.query_ref)  # type: ignore[no-any-return]

    @property
    def response(self) -> type[BaseModel] | None:
        """The response schema (of each item, for a paged list)."""
        return resolve(self.schemas, self.response_ref)  # type: ignore[no-any-return]

    @property
    def mutating(self) -> bool:
        """Whether the operation changes state (and so is audited)."""
        return self.method in MUTATING

    def all_problems(self) -> tuple[str, ...]:
        """Every problem slug this operation can answer."""
        implied: list[str] = list(COMMON_PROBLEMS)
        if self.paged:
            implied += ["invalid-paging", "invalid-cursor"]
        if self.etag and self.mutating:
            implied += ["bad-request", "precondition-failed", "precondition-required"]
        if self.media_types:
            implied.append("not-acceptable")
        return tuple(dict.fromkeys([*implied, *self.problems]))


#: Every operation of the app, in registration order.
OPERATIONS: list[Operation] = []


@dataclass
class Call:
    """What a view receives: the caller, the parsed inputs, and request facts."""

    principal: Principal
    params: dict[str, str]
    body: Any = None
    query: Any = None
    page: PageRequest | None = None
    if_match: IfMatch | None = None
    request_id: str = ""
    source_ip: str = ""
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    #: The media type the caller accepts for the success response (see ``media_types``).
    media_type: str = "application/json"

    @property
    def tenant(self) -> str:
        """The caller's tenant: the partition of every key this call touches."""
        return self.principal.tenant


@dataclass
class Reply:
    """What a view returns: a body, and optionally status, headers and an ETag."""

    body: Any = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    revision: str | None = None
    resource_id: str | None = None
    #: A media type other than JSON: ``body`` is then sent as is (text).
    media_type: str | None = None


def operation(
    bp: Blueprint, method: str, path: str, *, name: str, summary: str, resource: str,
    role: Role | None = None, body: Any = None, query: Any = None, response: Any = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare ``method path`` on ``bp``; the decorated view takes a :class:`Call`.

    ``body``, ``query`` and ``response`` name classes of the feature's ``schemas``
    module (a sibling of the routes module), imported on the first request.
    """
    default_role = Role.VIEWER if method == "GET" else Role.OPERATOR

    def register(view: Callable[[Call], Any]) -> Callable[..., Any]:
        schemas = view.__module__.rsplit(".", 1)[0] + ".schemas"
        op = Operation(method=method, path=path, name=name, summary=summary, resource=resource,
                       role=role or default_role, schemas=schemas, body_ref=body,
                       query_ref=query, response_ref=response, **options)
        OPERATIONS.append(op)

        def handler(**params: str) -> Response:
            return run(op, view, bp, params)

        handler.__name__ = name.replace(".", "_")
        handler.__doc__ = summary
        bp.route(path, methods=[method], content_types=[JSON, "application/merge-patch+json"])(
            handler)
        return view

    return register


@dataclass
class _Facts:
    request_id: str
    source_ip: str
    path: str
    principal: Principal | None = None


def run(op: Operation, view: Callable[[Call], Any], bp: Blueprint,
        params: dict[str, str]) -> Response:
    """Serve one request of ``op``: never raises, always answers JSON or a problem."""
    request = bp.current_request
    context = request.context or {}
    facts = _Facts(
        request_id=str(context.get("requestId", "")),
        source_ip=str((context.get("identity") or {}).get("sourceIp", "")),
        path=str(context.get("path") or request.path),
    )
    resource_id = params.get("id")
    try:
        call = _prepare(op, request, params, facts)
        with traced(op.name, tenant=call.tenant, operation=op.name):
            reply = view(call)
        reply = reply if isinstance(reply, Reply) else Reply(body=reply)
        resource_id = reply.resource_id or resource_id
        response = _render(op, call, reply)
    except AmporaError as error:
        response = problem_response(error, instance=facts.path)
    except Exception:  # noqa: BLE001 - the last line of defence: log, never leak
        logger.exception("unhandled error", extra={"operation": op.name})
        response = problem_response(
            AmporaError("An internal error occurred; quote this request id to support.",
                        slug="internal-error", requestId=facts.request_id),
            instance=facts.path)
    _audit(op, facts, response.status_code, resource_id)
    logger.remove_keys(["tenant", "actor"])
    return response


def _prepare(op: Operation, request: Any, params: dict[str, str], facts: _Facts) -> Call:
    logger.append_keys(request_id=facts.request_id)
    principal = auth.authenticate(request.headers.get("authorization"),
                                  source_ip=facts.source_ip)
    facts.principal = principal
    logger.append_keys(tenant=principal.tenant, actor=principal.actor["name"])
    tenants = deps().tenants
    if tenants is not None:
        tenants.ensure(principal.tenant)
    authorize(principal, method=op.method, path_template=op.path, role=op.role)
    query, page = _parse_query(op, request)
    if page is not None:
        filters = query.to_wire() if query is not None else {}
        page = replace(page, scope=scope_of(principal.tenant, facts.path, filters),
                       secret=cursor_secret())
    call = Call(principal=principal, params=params, query=query, page=page,
                body=_parse_body(op, request), request_id=facts.request_id,
                source_ip=facts.source_ip, path=facts.path,
                headers=dict(request.headers),
                media_type=negotiate(op, request.headers.get("accept")))
    if op.etag and op.mutating:
        call.if_match = _if_match(op, request, principal)
    return call


def _if_match(op: Operation, request: Any, principal: Principal) -> IfMatch | None:
    if_match = parse_if_match(request.headers.get("if-match"))
    tenants = deps().tenants
    if if_match is None and tenants is not None and tenants.require_if_match(principal.tenant):
        raise PreconditionRequired(
            f"this tenant requires If-Match on {op.method} {op.path}; GET the resource for its ETag"
        )
    return if_match


def _accepted(header: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` header with their weights (RFC 9110 12.5.1)."""
    ranges = []
    for part in header.split(","):
        media_range, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media_range:
            ranges.append((media_range.lower(), weight))
    return ranges


def _weight(media_type: str, ranges: list[tuple[str, float]]) -> float:
    """The weight ``ranges`` give ``media_type``: the most specific matching range wins."""
    kind = media_type.split("/")[0]
    for candidate in (media_type, f"{kind}/*", "*/*"):
        weights = [weight for media_range, weight in ranges if media_range == candidate]
        if weights:
            return max(weights)
    return 0.0


def negotiate(op: Operation, accept: str | None) -> str:
    """The media type to answer ``op`` with: JSON unless ``Accept`` prefers another it offers.

    Only an operation that declares ``media_types`` negotiates; it answers 406 when
    ``Accept`` admits none of them (nor JSON).
    """
    if not op.media_types or not accept or not accept.strip():
        return JSON
    ranges = _accepted(accept)
    offered = (JSON, *op.media_types)
    weights = {media_type: _weight(media_type, ranges) for media_type in offered}
    best = max(offered, key=lambda media_type: weights[media_type])
    if weights[best] <= 0:
        raise AmporaError(f"this endpoint answers {', '.join(offered)}", slug="not-acceptable")
    return best


def _parse_query(op: Operation, request: Any) -> tuple[Any, PageRequest | None]:
    raw = dict(request.query_params or {})
    page = parse_page(raw) if op.paged else None
    filters = {k: v for k, v in raw.items() if not (op.paged and k in PAGING_PARAMS)}
    if op.query is None:
        if filters:
            raise AmporaError(f"unknown query parameter(s): {', '.join(sorted(filters))}",
                              slug="invalid-query")
        return None, page
    from pydantic import ValidationError

    from chalicelib.core.schema import error_list

    try:
        return op.query.model_validate(filters), page
    except ValidationError as exc:
        raise AmporaError("query parameters are not valid", slug="invalid-query",
                          errors=error_list(exc)) from exc


def _parse_body(op: Operation, request: Any) -> Any:
    raw: bytes = request.raw_body or b""
    if len(raw) > settings().max_body_bytes:
        raise AmporaError(f"the body exceeds {settings().max_body_bytes} bytes",
                          slug="payload-too-large")
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AmporaError(f"the body is not valid JSON: {exc}",
                              slug="malformed-json") from exc
    if op.body is None:
        if data != {}:
            raise AmporaError("this operation takes no body", slug="validation-failed",
                              errors=[{"pointer": "", "detail": "expected no body"}])
        return None
    from chalicelib.core.schema import validate

    return validate(op.body, data)


def _wire(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _render(op: Operation, call: Call, reply: Reply) -> Response:
    headers: dict[str, str | list[str]] = dict(reply.headers)
    body = reply.body
    if isinstance(body, Page):
        headers.update(page_headers(call, body))
        body = body.items
    if reply.revision is not None:
        headers["ETag"] = etag(reply.revision)
    status = reply.status or op.status
    if op.media_types:
        headers["Vary"] = "Accept"
    if body is None and status == 204:
        return Response(body="", status_code=status, headers=headers)
    if reply.media_type is not None and reply.media_type != JSON:
        headers["Content-Type"] = reply.media_type
        return Response(body=body, status_code=status, headers=headers)
    headers.setdefault("Content-Type", JSON)
    return Response(body=json.dumps(_wire(body), separators=(",", ":")), status_code=status,
                    headers=headers)


def page_headers(call: Call, page: Page[Any]) -> dict[str, str]:
    """``X-Total-Count`` and, while more remain, ``Link: <next>; rel="next"``."""
    headers = {"X-Total-Count": str(page.total)}
    assert call.page is not None
    filters = call.query.model_dump(mode="json", by_alias=True, exclude_none=True,
                                    exclude_defaults=True) if call.query is not None else {}
    following: dict[str, Any] = {**filters, "limit": call.page.limit}
    if page.next_cursor is not None:
        following["cursor"] = page.next_cursor
    elif page.next_offset is not None:
        following["offset"] = page.next_offset
    else:
        return headers
    base = f"{_origin(call.headers)}{call.path}"
    headers["Link"] = f'<{base}?{urlencode(following, doseq=True)}>; rel="next"'
    return headers


def _origin(headers: dict[str, str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    host = lowered.get("host")
    if not host:
        return ""
    proto = lowered.get("x-forwarded-proto", "https").split(",")[0].strip()
    return f"{proto}://{host}"


def problem_response(error: AmporaError, *, instance: str) -> Response:
    """The ``application/problem+json`` response for ``error``."""
    body = to_problem(error, instance=instance, docs_url=settings().docs_url)
    headers: dict[str, str | list[str]] = {"Content-Type": PROBLEM_CONTENT_TYPE, **error.headers}
    return Response(body=json.dumps(body), status_code=error.status, headers=headers)


def _outcome(status: int) -> str:
    if status < 400:
        return "success"
    return "refused" if status < 500 else "error"


def _audit(op: Operation, facts: _Facts, status: int, resource_id: str | None) -> None:
    recorder = deps().record_audit
    if not op.mutating or facts.principal is None or recorder is None:
        return
    try:
        recorder({
            "tenant": facts.principal.tenant, "actor": facts.principal.actor,
            "action": op.name, "resource_type": op.resource, "resource_id": resource_id,
            "outcome": _outcome(status), "status": status, "request_id": facts.request_id,
            "source_ip": facts.source_ip, "method": op.method, "path": facts.path,
        })
    except Exception:  # noqa: BLE001 - a lost audit record is logged loudly, not hidden
        logger.exception("audit record could not be written", extra={"operation": op.name})



_STATUS_SLUGS = {400: "bad-request", 403: "forbidden", 404: "not-found",
                 405: "method-not-allowed", 413: "payload-too-large",
                 415: "unsupported-media-type", 500: "internal-error"}


def problem_middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice middleware: the framework's own errors (405, 415...) become problems too."""
    response = get_response(event)
    headers = {k.lower(): v for k, v in response.headers.items()}
    if response.status_code < 400 or headers.get("content-type") == PROBLEM_CONTENT_TYPE:
        return response
    slug = _STATUS_SLUGS.get(response.status_code, "internal-error")
    message = response.body.get("Message") if isinstance(response.body, dict) else None
    extra = {"Allow": str(headers["allow"])} if "allow" in headers else {}
    error = AmporaError(str(message or "the request could not be served"), slug=slug,
                        headers=extra)
    if slug == "internal-error":
        error.detail = "An internal error occurred."
    context = getattr(event, "context", None) or {}
    return problem_response(error, instance=str(context.get("path") or getattr(event, "path", "")))
