"""Personal access token use cases: create (shown once), list, read, revoke, verify."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.core.access import Principal, Role
from chalicelib.core.db import condition_failed, get_or_not_found, query_page, transaction
from chalicelib.core.deps import deps
from chalicelib.core.events import event_item
from chalicelib.core.lazy import LazyModule
from chalicelib.core.observability import logger
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.problems import Forbidden, InvalidToken, ValidationFailed
from chalicelib.tokens import pat_format
from chalicelib.tokens.models import ApiTokenItem
from chalicelib.tokens.schemas import ApiToken, ApiTokenCreate, ApiTokenCreated

_live = LazyModule("chalicelib.live.service")

#: ``lastUsedAt`` is written at most this often per token.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def _status(item: ApiTokenItem, now: datetime) -> str:
    if item.revoked_at is not None:
        return "revoked"
    if item.expires_at is not None and item.expires_at <= now:
        return "expired"
    return "active"


def _view(item: ApiTokenItem) -> dict[str, Any]:
    return {
        "id": item.id, "name": item.name, "role": item.role,
        "status": _status(item, deps().clock.now()), "hint": item.hint,
        "allowed_endpoints": item.allowed_endpoints, "created_at": item.created_at,
        "created_by": item.created_by, "expires_at": item.expires_at,
        "revoked_at": item.revoked_at, "revoked_by": item.revoked_by,
        "last_used_at": item.last_used_at,
    }


def _event(tenant: str, kind: str, item: ApiTokenItem, at: datetime) -> Any:
    d = deps()
    return event_item(tenant=tenant, event_type=f"api-token.{kind}",
                      subject=f"api-tokens/{item.id}",
                      data={"id": item.id, "name": item.name, "role": item.role}, at=at,
                      event_id=d.new_id(), random_hex=d.random_bytes(4).hex())


def create(principal: Principal, spec: ApiTokenCreate) -> ApiTokenCreated:
    """Issue a token no stronger than its creator; the secret is returned only here."""
    now, d = deps().clock.now(), deps()
    role = Role.parse(spec.role)
    assert role is not None
    if role > principal.role:
        raise Forbidden(f"a token cannot have a higher role ({spec.role}) than its creator")
    if spec.expires_at is not None and spec.expires_at <= now:
        raise ValidationFailed([{"pointer": "/expiresAt", "detail": "must be in the future"}])
    token = pat_format.mint(d.random_bytes(pat_format.SECRET_BYTES))
    item = ApiTokenItem(
        tenant=principal.tenant, id=d.new_id(), token_hash=pat_format.token_hash(token),
        hint=pat_format.hint(token), name=spec.name, role=role.label,
        allowed_endpoints=spec.allowed_endpoints, created_at=now, created_by=principal.actor,
        expires_at=spec.expires_at,
    )
    with transaction() as tx:
        tx.save(item, condition=ApiTokenItem.id.does_not_exist())
        tx.save(_event(principal.tenant, "created", item, now))
    return ApiTokenCreated(**_view(item), token=token)


def _filter(status: str | None, now: datetime) -> Any:
    if status == "revoked":
        return ApiTokenItem.revoked_at.exists()
    unexpired = ApiTokenItem.expires_at.does_not_exist() | (ApiTokenItem.expires_at > now)
    if status == "active":
        return ApiTokenItem.revoked_at.does_not_exist() & unexpired
    if status == "expired":
        return ApiTokenItem.revoked_at.does_not_exist() & ~unexpired
    return None


def list_tokens(tenant: str, page: PageRequest, *, status: str | None) -> Page[ApiToken]:
    """The tenant's tokens, oldest first."""
    condition = _filter(status, deps().clock.now())
    found = query_page(ApiTokenItem, tenant, page, filter_condition=condition)
    return found.map(lambda item: ApiToken(**_view(item)))


def _get_item(tenant: str, token_id: str) -> ApiTokenItem:
    return get_or_not_found(ApiTokenItem, tenant, token_id, "API token")


def get(tenant: str, token_id: str) -> ApiToken:
    """One token of the tenant."""
    return ApiToken(**_view(_get_item(tenant, token_id)))


def revoke(principal: Principal, token_id: str) -> ApiToken:
    """Revoke a token for good; revoking a revoked token changes nothing."""
    item = _get_item(principal.tenant, token_id)
    if item.revoked_at is not None:
        return ApiToken(**_view(item))
    now = deps().clock.now()
    item.revoked_at, item.revoked_by = now, principal.actor
    try:
        with transaction() as tx:
            tx.update(item, actions=[ApiTokenItem.revoked_at.set(now),
                                     ApiTokenItem.revoked_by.set(principal.actor)],
                      condition=ApiTokenItem.revoked_at.does_not_exist())
            tx.save(_event(principal.tenant, "revoked", item, now))
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        item = _get_item(principal.tenant, token_id)
    _close_connections(token_id)
    return ApiToken(**_view(item))


def _close_connections(token_id: str) -> None:
    """The revoked token's live-updates connections are closed (a failure is logged: the
    revocation stands, and the token cannot open another one)."""
    try:
        _live.drop_token(token_id)
    except Exception:  # noqa: BLE001 - the revocation is already written
        logger.exception("could not close a revoked token's live-updates connections")


def _find(token: str) -> ApiTokenItem | None:
    digest = pat_format.token_hash(token)
    for key in ApiTokenItem.by_hash.query(digest, limit=1):
        try:
            item = ApiTokenItem.get(key.tenant, key.id, consistent_read=True)
        except ApiTokenItem.DoesNotExist:
            return None
        return item if hmac.compare_digest(item.token_hash, digest) else None
    return None


def verify(token: str) -> Principal:
    """The principal a PAT stands for; malformed, unknown, revoked or expired → 401."""
    if not pat_format.well_formed(token):
        raise InvalidToken("the personal access token is malformed (bad shape or checksum)")
    item = _find(token)
    if item is None:
        raise InvalidToken("the personal access token is not known")
    now = deps().clock.now()
    status = _status(item, now)
    if status != "active":
        raise InvalidToken(f"the personal access token is {status}")
    _touch(item, now)
    role = Role.parse(item.role)
    assert role is not None
    allowed = item.allowed_endpoints
    endpoints = tuple(str(e) for e in allowed) if allowed is not None else None
    return Principal(tenant=item.tenant, subject=f"pat:{item.id}", role=role, kind="pat",
                     token_id=item.id, token_name=item.name, allowed_endpoints=endpoints)


def _touch(item: ApiTokenItem, now: datetime) -> None:
    """Record use, at most once a minute (a conditional write: racing callers write once)."""
    if item.last_used_at is not None and now - item.last_used_at < LAST_USED_GRANULARITY:
        return
    stale = now - LAST_USED_GRANULARITY
    try:
        item.update(actions=[ApiTokenItem.last_used_at.set(now)],
                    condition=ApiTokenItem.last_used_at.does_not_exist()
                    | (ApiTokenItem.last_used_at <= stale))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
