"""Roles, principals and permissions: who may call which operation.

``Viewer`` reads; ``Operator`` also changes agents, groups, configurations and
rollouts; ``Admin`` may do everything. A personal access token may further be
limited to an allow-list of endpoints such as ``POST /api/rollouts/{id}/start``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum

from chalicelib.core.problems import AmporaError, Forbidden


class Role(IntEnum):
    """Ordered roles: a higher role can do everything a lower one can."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The role's name on the wire (``Viewer``, ``Operator``, ``Admin``)."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, value: str) -> Role | None:
        """The role called ``value`` (case-insensitive), or ``None``."""
        try:
            return cls[value.strip().upper()]
        except (KeyError, AttributeError):
            return None


ROLE_LABELS = tuple(role.label for role in Role)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller within one tenant."""

    tenant: str
    subject: str
    role: Role
    kind: str = "user"  # "user" (OIDC) or "pat"
    token_id: str | None = None
    token_name: str | None = None
    allowed_endpoints: tuple[str, ...] | None = None
    claims: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def actor(self) -> dict[str, str]:
        """How audit records name this caller."""
        if self.kind == "pat":
            return {"type": "pat", "id": self.token_id or "", "name": self.token_name or ""}
        return {"type": "user", "id": self.subject, "name": self.subject}


_ENDPOINT = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/api(?:/[A-Za-z0-9._~{}\-]+)+)/?$")


def parse_endpoint(entry: str) -> tuple[str, str]:
    """Split ``'POST /api/x/{id}'`` into method and path template, or refuse it."""
    match = _ENDPOINT.match(entry.strip())
    if not match:
        raise ValueError("must look like 'GET /api/agents' or 'POST /api/rollouts/{id}/start'")
    return match.group(1), _normalise(match.group(2))


def _normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/"))


def authorize(principal: Principal, *, method: str, path_template: str, role: Role) -> None:
    """Refuse (403) unless ``principal`` may call ``method path_template`` needing ``role``."""
    if principal.role < role:
        raise Forbidden(f"{method} {path_template} needs the {role.label} role")
    allowed = principal.allowed_endpoints
    if allowed is not None and not endpoint_allowed(allowed, method, path_template):
        raise AmporaError(
            f"this token may not call {method} {path_template}", slug="endpoint-not-allowed"
        )


def endpoint_allowed(allowed: tuple[str, ...], method: str, path_template: str) -> bool:
    """Whether ``method path_template`` is on the allow-list (parameter names don't matter)."""
    wanted = (method, _normalise(path_template))
    return any(parse_endpoint(entry) == wanted for entry in allowed)
