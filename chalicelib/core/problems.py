"""RFC 9457 problem details: the domain errors and the one table that maps them to HTTP.

Services raise :class:`AmporaError` subclasses (or ``AmporaError`` with a slug);
:func:`to_problem` is the only place that turns an error into a response body.
Every slug in :data:`PROBLEM_TYPES` has its narrative page in ``docs/errors/<slug>.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem: its HTTP status and its stable, human title."""

    status: int
    title: str


#: The one error table: slug → status and title.
PROBLEM_TYPES: dict[str, ProblemType] = {
    "bad-request": ProblemType(400, "Bad request"),
    "malformed-json": ProblemType(400, "Malformed JSON body"),
    "invalid-query": ProblemType(400, "Invalid query parameters"),
    "invalid-paging": ProblemType(400, "Invalid paging parameters"),
    "invalid-cursor": ProblemType(400, "Invalid cursor"),
    "unauthorized": ProblemType(401, "Authentication required"),
    "invalid-token": ProblemType(401, "Invalid token"),
    "forbidden": ProblemType(403, "Forbidden"),
    "unknown-role": ProblemType(403, "No known role"),
    "endpoint-not-allowed": ProblemType(403, "Endpoint not allowed for this token"),
    "self-approval": ProblemType(403, "Self-approval not allowed"),
    "not-found": ProblemType(404, "Not found"),
    "method-not-allowed": ProblemType(405, "Method not allowed"),
    "not-acceptable": ProblemType(406, "Not acceptable"),
    "conflict": ProblemType(409, "Conflict"),
    "precondition-failed": ProblemType(412, "Precondition failed"),
    "payload-too-large": ProblemType(413, "Payload too large"),
    "unsupported-media-type": ProblemType(415, "Unsupported media type"),
    "validation-failed": ProblemType(422, "Validation failed"),
    "policy-denied": ProblemType(422, "Policy denied the push"),
    "precondition-required": ProblemType(428, "Precondition required"),
    "quota-exceeded": ProblemType(429, "Quota exceeded"),
    "internal-error": ProblemType(500, "Internal error"),
    "not-implemented": ProblemType(501, "Not implemented"),
    "service-unavailable": ProblemType(503, "Service unavailable"),
}


class AmporaError(Exception):
    """A domain error that becomes a problem response.

    ``slug`` picks the row of :data:`PROBLEM_TYPES`; ``headers`` are added to the
    response (``ETag``, ``WWW-Authenticate``, ``Allow``); ``extensions`` are extra
    members of the problem body (``errors``, ``violations``...).
    """

    slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        if slug is not None:
            self.slug = slug
        if self.slug not in PROBLEM_TYPES:
            raise KeyError(f"unknown problem slug {self.slug!r}")
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    @property
    def status(self) -> int:
        """The HTTP status of this error's problem type."""
        return PROBLEM_TYPES[self.slug].status


class BadRequest(AmporaError):
    """The request cannot be understood as sent."""

    slug = "bad-request"


class Unauthorized(AmporaError):
    """No usable credentials: 401 with a ``WWW-Authenticate`` challenge."""

    slug = "unauthorized"

    def __init__(self, detail: str, *, error: str | None = None, slug: str | None = None) -> None:
        challenge = "Bearer" if error is None else f'Bearer error="{error}"'
        super().__init__(detail, slug=slug, headers={"WWW-Authenticate": challenge})


class InvalidToken(Unauthorized):
    """A bearer token was presented but is not valid."""

    slug = "invalid-token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_token")


class Forbidden(AmporaError):
    """The principal is known but may not do this."""

    slug = "forbidden"


class NotFound(AmporaError):
    """No such resource in the caller's tenant."""

    slug = "not-found"


class Conflict(AmporaError):
    """The request conflicts with the resource's current state."""

    slug = "conflict"


class PreconditionFailed(AmporaError):
    """``If-Match`` did not match; carries the current ``ETag``."""

    slug = "precondition-failed"

    def __init__(self, detail: str, *, current_etag: str | None) -> None:
        headers = {"ETag": current_etag} if current_etag else {}
        super().__init__(detail, headers=headers)


class PreconditionRequired(AmporaError):
    """The tenant requires ``If-Match`` on this mutation."""

    slug = "precondition-required"


class ValidationFailed(AmporaError):
    """The body parsed but broke the schema: ``errors`` lists ``{pointer, detail}``."""

    slug = "validation-failed"

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None,
                 **extensions: Any) -> None:
        summary = detail or f"{len(errors)} field(s) failed validation"
        super().__init__(summary, errors=errors, **extensions)


class ServiceUnavailable(AmporaError):
    """A dependency Ampora cannot do without is unreachable; it never fails open."""

    slug = "service-unavailable"


class NotImplementedYet(AmporaError):
    """A documented capability that this build does not provide."""

    slug = "not-implemented"


def problem_type_url(docs_url: str, slug: str) -> str:
    """The ``type`` URI of a problem: the page that explains it."""
    return f"{docs_url.rstrip('/')}/errors/{slug}"


def to_problem(error: AmporaError, *, instance: str, docs_url: str) -> dict[str, Any]:
    """The RFC 9457 body for ``error`` raised while serving ``instance``."""
    kind = PROBLEM_TYPES[error.slug]
    body: dict[str, Any] = {
        "type": problem_type_url(docs_url, error.slug),
        "title": kind.title,
        "status": kind.status,
        "detail": error.detail,
        "instance": instance,
    }
    body.update(error.extensions)
    return body
