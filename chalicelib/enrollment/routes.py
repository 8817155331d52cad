"""Routes of bootstrap tokens and token pools.

``/api/tokens/pools`` sits beside ``/api/tokens/{id}``: API Gateway, the local
gateway and Chalice's test client all prefer the literal segment.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.core.access import Role
from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.enrollment.service")
_TOKEN: dict[str, Any] = {"resource": "bootstrap-token", "tag": "Bootstrap tokens"}
_POOL: dict[str, Any] = {"resource": "token-pool", "tag": "Bootstrap tokens"}
_SHOWN_ONCE = (("Location", "The new token's URL."),
               ("Cache-Control", "no-store: the token must not be cached."))


def _created(created: Any) -> Reply:
    return Reply(created, resource_id=created.id, headers={
        "Location": f"/api/tokens/{created.id}", "Cache-Control": "no-store"})


@operation(bp, "GET", "/api/tokens", name="bootstrapTokens.list",
           summary="List bootstrap tokens", query="BootstrapTokenQuery",
           response="BootstrapToken", paged=True, **_TOKEN)
def list_tokens(call: Call) -> Reply:
    """The tenant's bootstrap tokens, paged."""
    return Reply(service.list_tokens(call.tenant, call.page, status=call.query.status,
                                     group=call.query.group))


@operation(bp, "POST", "/api/tokens", name="bootstrapTokens.create",
           summary="Issue a bootstrap token (the token is shown once)", role=Role.OPERATOR,
           body="BootstrapTokenCreate", response="BootstrapTokenCreated", status=201,
           response_headers=_SHOWN_ONCE, **_TOKEN)
def create_token(call: Call) -> Reply:
    """Issue a token and return it, once."""
    return _created(service.create(call.principal, call.body))


@operation(bp, "GET", "/api/tokens/pools", name="tokenPools.list",
           summary="List token pools", response="TokenPool", paged=True, **_POOL)
def list_pools(call: Call) -> Reply:
    """The tenant's token pools, paged."""
    return Reply(service.list_pools(call.tenant, call.page))


@operation(bp, "POST", "/api/tokens/pools", name="tokenPools.create",
           summary="Create a token pool (a template issuing tokens within an hourly quota)",
           role=Role.ADMIN, body="TokenPoolCreate", response="TokenPool", status=201,
           response_headers=(("Location", "The new pool's URL."),), **_POOL)
def create_pool(call: Call) -> Reply:
    """Create a pool."""
    pool = service.create_pool(call.principal, call.body)
    return Reply(pool, resource_id=pool.id, headers={"Location": f"/api/tokens/pools/{pool.id}"})


@operation(bp, "GET", "/api/tokens/pools/{id}", name="tokenPools.get",
           summary="Read a token pool", response="TokenPool", problems=("not-found",), **_POOL)
def get_pool(call: Call) -> Reply:
    """One pool."""
    return Reply(service.get_pool(call.tenant, call.params["id"]))


@operation(bp, "POST", "/api/tokens/pools/{id}/issue", name="tokenPools.issue",
           summary="Issue a bootstrap token from a pool (the token is shown once)",
           role=Role.OPERATOR, body="TokenPoolIssue", response="BootstrapTokenCreated",
           status=201, response_headers=_SHOWN_ONCE,
           problems=("not-found", "conflict", "quota-exceeded"),
           resource="bootstrap-token", tag="Bootstrap tokens")
def issue_from_pool(call: Call) -> Reply:
    """Issue one token from the pool's template; 429 once its hourly quota is spent."""
    return _created(service.issue(call.principal, call.params["id"], call.body))


@operation(bp, "GET", "/api/tokens/{id}", name="bootstrapTokens.get",
           summary="Read a bootstrap token", response="BootstrapToken",
           problems=("not-found",), **_TOKEN)
def get_token(call: Call) -> Reply:
    """One token, without its secret."""
    return Reply(service.get(call.tenant, call.params["id"]))


@operation(bp, "POST", "/api/tokens/{id}/revoke", name="bootstrapTokens.revoke",
           summary="Revoke a bootstrap token", role=Role.OPERATOR, response="BootstrapToken",
           problems=("not-found",), **_TOKEN)
def revoke_token(call: Call) -> Reply:
    """Revoke for good: the token enrolls no one any more."""
    return Reply(service.revoke(call.principal, call.params["id"]))
