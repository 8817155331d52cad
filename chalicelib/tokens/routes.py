"""Routes of personal access tokens (Admin only)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.core.access import Role
from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.tokens.service")
_COMMON: dict[str, Any] = {"resource": "api-token", "role": Role.ADMIN, "tag": "API tokens"}


@operation(bp, "GET", "/api/api-tokens", name="apiTokens.list",
           summary="List personal access tokens", query="ApiTokenQuery", response="ApiToken",
           paged=True, **_COMMON)
def list_tokens(call: Call) -> Reply:
    """The tenant's tokens, paged."""
    return Reply(service.list_tokens(call.tenant, call.page, status=call.query.status))


@operation(bp, "POST", "/api/api-tokens", name="apiTokens.create",
           summary="Create a personal access token (the token is shown once)",
           body="ApiTokenCreate", response="ApiTokenCreated", status=201,
           response_headers=(("Location", "The new token's URL."),
                             ("Cache-Control", "no-store: the token must not be cached.")),
           **_COMMON)
def create_token(call: Call) -> Reply:
    """Issue a token and return it, once."""
    created = service.create(call.principal, call.body)
    return Reply(created, resource_id=created.id,
                 headers={"Location": f"/api/api-tokens/{created.id}", "Cache-Control": "no-store"})


@operation(bp, "GET", "/api/api-tokens/{id}", name="apiTokens.get",
           summary="Read a personal access token", response="ApiToken", problems=("not-found",),
           **_COMMON)
def get_token(call: Call) -> Reply:
    """One token, without its secret."""
    return Reply(service.get(call.tenant, call.params["id"]))


@operation(bp, "POST", "/api/api-tokens/{id}/revoke", name="apiTokens.revoke",
           summary="Revoke a personal access token", response="ApiToken", problems=("not-found",),
           **_COMMON)
def revoke_token(call: Call) -> Reply:
    """Revoke for good: the next call with the token is 401."""
    return Reply(service.revoke(call.principal, call.params["id"]))
