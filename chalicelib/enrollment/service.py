"""Bootstrap token use cases: issue (shown once), list, read, revoke, pools, and redeem.

``redeem`` is on the agents' path (OpAMP), so this module does not import
pydantic: the wire schemas load on the first REST call that needs them.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.core.access import Principal
from chalicelib.core.db import (
    condition_failed,
    find,
    get_or_not_found,
    query_page,
    transaction,
)
from chalicelib.core.deps import deps
from chalicelib.core.events import event_item
from chalicelib.core.lazy import LazyModule
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.problems import (
    AmporaError,
    Conflict,
    InvalidToken,
    NotFound,
    ValidationFailed,
)
from chalicelib.core.settings import settings
from chalicelib.core.token_format import SECRET_BYTES, token_hash
from chalicelib.enrollment import rules
from chalicelib.enrollment.models import (
    BootstrapTokenItem,
    EnrollmentItem,
    PoolQuotaItem,
    TokenPoolItem,
)

if TYPE_CHECKING:
    from chalicelib.enrollment.schemas import (
        BootstrapToken,
        BootstrapTokenCreate,
        BootstrapTokenCreated,
        TokenPool,
        TokenPoolCreate,
        TokenPoolIssue,
    )

schemas = LazyModule("chalicelib.enrollment.schemas")
groups = LazyModule("chalicelib.groups.service")
agents = LazyModule("chalicelib.agents.service")

DEFAULT_GROUP = "default"
Token = BootstrapTokenItem


@dataclass(frozen=True)
class Grant:
    """What a redeemed bootstrap token grants an agent: its tenant, group and labels."""

    tenant: str
    token_id: str
    group_id: str
    labels: dict[str, str]
    expires_at: datetime


# --- views and events -----------------------------------------------------------------------

def _status(item: Token, now: datetime) -> str:
    return rules.status(revoked=item.revoked_at is not None, uses=int(item.uses),
                        max_uses=int(item.max_uses), expires_at=item.expires_at, now=now)


def _view(item: Token) -> dict[str, Any]:
    return {
        "id": item.id, "name": item.name, "status": _status(item, deps().clock.now()),
        "hint": item.hint, "group_id": item.group_id, "labels": item.labels,
        "max_uses": int(item.max_uses), "uses": int(item.uses), "pool_id": item.pool_id,
        "created_at": item.created_at, "created_by": item.created_by,
        "expires_at": item.expires_at, "revoked_at": item.revoked_at,
        "revoked_by": item.revoked_by, "last_used_at": item.last_used_at,
    }


def _pool_view(pool: TokenPoolItem) -> dict[str, Any]:
    return {
        "id": pool.id, "name": pool.name, "group_id": pool.group_id, "labels": pool.labels,
        "ttl_seconds": int(pool.ttl_seconds), "uses_per_token": int(pool.uses_per_token),
        "quota_per_hour": int(pool.quota_per_hour), "created_at": pool.created_at,
        "created_by": pool.created_by,
    }


def _event(tenant: str, event_type: str, subject: str, data: dict[str, Any],
           at: datetime) -> Any:
    d = deps()
    return event_item(tenant=tenant, event_type=event_type, subject=subject, data=data, at=at,
                      event_id=d.new_id(), random_hex=d.random_bytes(4).hex())


def _token_event(item: Token, kind: str, at: datetime) -> Any:
    data = {"id": item.id, "name": item.name, "groupId": item.group_id,
            "maxUses": int(item.max_uses), "expiresAt": item.expires_at.isoformat(),
            "poolId": item.pool_id}
    return _event(item.tenant, f"bootstrap-token.{kind}", f"tokens/{item.id}", data, at)


# --- issuing --------------------------------------------------------------------------------

def _group(tenant: str, group_id: str | None) -> str:
    """The group a token's agents land in: the one named (if active) or the default."""
    if group_id is None or group_id == DEFAULT_GROUP:
        return str(groups.ensure_default(tenant))
    try:
        groups.require_active(tenant, group_id)
    except NotFound as exc:
        raise ValidationFailed([{"pointer": "/groupId",
                                 "detail": f"no active group {group_id!r}"}]) from exc
    return group_id


def _ttl(requested: int | None) -> int:
    return rules.ttl_seconds(requested, settings().bootstrap_token_max_ttl_seconds)


def _mint(principal: Principal, *, name: str, group_id: str, labels: dict[str, str],
          ttl: int, max_uses: int, pool_id: str | None = None) -> tuple[Token, str]:
    """A new token item and the token itself (which is never stored)."""
    d = deps()
    now = d.clock.now()
    token = rules.FORMAT.mint(d.random_bytes(SECRET_BYTES))
    item = Token(
        tenant=principal.tenant, id=d.new_id(), token_hash=token_hash(token),
        hint=rules.FORMAT.hint(token), name=name, group_id=group_id, labels=dict(labels),
        max_uses=max_uses, uses=0, pool_id=pool_id, created_at=now,
        created_by=principal.actor, expires_at=now + timedelta(seconds=ttl),
    )
    return item, token


def _created(item: Token, token: str) -> BootstrapTokenCreated:
    return schemas.BootstrapTokenCreated(**_view(item), token=token)  # type: ignore[no-any-return]


def create(principal: Principal, spec: BootstrapTokenCreate) -> BootstrapTokenCreated:
    """Issue a bootstrap token; the token is returned only here."""
    item, token = _mint(principal, name=spec.name,
                        group_id=_group(principal.tenant, spec.group_id), labels=spec.labels,
                        ttl=_ttl(spec.ttl_seconds), max_uses=spec.max_uses)
    with transaction() as tx:
        tx.save(item, condition=Token.id.does_not_exist())
        tx.save(_token_event(item, "issued", item.created_at))
    return _created(item, token)


# --- reading and revoking -------------------------------------------------------------------

def _status_filter(status: str, now: datetime) -> Any:
    live = Token.revoked_at.does_not_exist() & (Token.expires_at > now)
    return {
        "revoked": Token.revoked_at.exists(),
        "expired": Token.revoked_at.does_not_exist() & (Token.expires_at <= now),
        "exhausted": live & (Token.uses >= Token.max_uses),
        "active": live & (Token.uses < Token.max_uses),
    }[status]


def _filter(status: str | None, group: str | None, now: datetime) -> Any:
    conditions = [Token.group_id == group] if group is not None else []
    if status is not None:
        conditions.append(_status_filter(status, now))
    if not conditions:
        return None
    combined = conditions[0]
    for condition in conditions[1:]:
        combined &= condition
    return combined


def list_tokens(tenant: str, page: PageRequest, *, status: str | None = None,
                group: str | None = None) -> Page[BootstrapToken]:
    """The tenant's bootstrap tokens, oldest first, optionally by status and group."""
    condition = _filter(status, group, deps().clock.now())
    found = query_page(Token, tenant, page, filter_condition=condition)
    return found.map(lambda item: schemas.BootstrapToken(**_view(item)))


def _get_item(tenant: str, token_id: str) -> Token:
    return get_or_not_found(Token, tenant, token_id, "bootstrap token")


def get(tenant: str, token_id: str) -> BootstrapToken:
    """One bootstrap token of the tenant."""
    return schemas.BootstrapToken(**_view(_get_item(tenant, token_id)))  # type: ignore[no-any-return]


#: Agents told of a revocation at once (each is one small conditional write).
CUT_OFF_WORKERS = 8


def _cut_off(item: Token) -> None:
    """Tell every agent the token enrolled that it was revoked (idempotent; a repeated
    revoke runs it again, which completes one that was interrupted)."""
    from concurrent.futures import ThreadPoolExecutor

    at = item.revoked_at or deps().clock.now()
    records = EnrollmentItem.query(item.tenant, EnrollmentItem.key.startswith(f"{item.id}#"),
                                   consistent_read=True, attributes_to_get=["key"])
    agent_ids = [rules.enrolled_agent(record.key) for record in records]
    with ThreadPoolExecutor(max_workers=CUT_OFF_WORKERS) as pool:
        list(pool.map(lambda agent_id: agents.token_revoked(item.tenant, agent_id, item.id, at),
                      agent_ids))


def revoke(principal: Principal, token_id: str) -> BootstrapToken:
    """Revoke for good: the token enrolls no one, not even agents it enrolled before (their
    next request with it is refused; those with a certificate keep talking with it)."""
    item = _get_item(principal.tenant, token_id)
    if item.revoked_at is not None:
        _cut_off(item)
        return schemas.BootstrapToken(**_view(item))  # type: ignore[no-any-return]
    now = deps().clock.now()
    item.revoked_at, item.revoked_by = now, principal.actor
    try:
        with transaction() as tx:
            tx.update(item, actions=[Token.revoked_at.set(now),
                                     Token.revoked_by.set(principal.actor)],
                      condition=Token.revoked_at.does_not_exist())
            tx.save(_token_event(item, "revoked", now))
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        item = _get_item(principal.tenant, token_id)
    _cut_off(item)
    return schemas.BootstrapToken(**_view(item))  # type: ignore[no-any-return]


# --- pools ----------------------------------------------------------------------------------

def create_pool(principal: Principal, spec: TokenPoolCreate) -> TokenPool:
    """Create a pool: a template that issues tokens on demand, within an hourly quota."""
    d = deps()
    now = d.clock.now()
    pool = TokenPoolItem(
        tenant=principal.tenant, id=d.new_id(), name=spec.name,
        group_id=_group(principal.tenant, spec.group_id), labels=dict(spec.labels),
        ttl_seconds=_ttl(spec.ttl_seconds), uses_per_token=spec.uses_per_token,
        quota_per_hour=spec.quota_per_hour, created_at=now, created_by=principal.actor,
    )
    data = {"id": pool.id, "name": pool.name, "groupId": pool.group_id,
            "quotaPerHour": spec.quota_per_hour}
    with transaction() as tx:
        tx.save(pool, condition=TokenPoolItem.id.does_not_exist())
        tx.save(_event(principal.tenant, "token-pool.created", f"tokens/pools/{pool.id}",
                       data, now))
    return schemas.TokenPool(**_pool_view(pool))  # type: ignore[no-any-return]


def list_pools(tenant: str, page: PageRequest) -> Page[TokenPool]:
    """The tenant's token pools, oldest first."""
    found = query_page(TokenPoolItem, tenant, page)
    return found.map(lambda pool: schemas.TokenPool(**_pool_view(pool)))


def _get_pool(tenant: str, pool_id: str) -> TokenPoolItem:
    return get_or_not_found(TokenPoolItem, tenant, pool_id, "token pool")


def get_pool(tenant: str, pool_id: str) -> TokenPool:
    """One token pool of the tenant."""
    return schemas.TokenPool(**_pool_view(_get_pool(tenant, pool_id)))  # type: ignore[no-any-return]


def _pool_group(pool: TokenPoolItem) -> str:
    try:
        groups.require_active(pool.tenant, pool.group_id)
    except NotFound as exc:
        raise Conflict(f"the pool's group {pool.group_id!r} no longer exists") from exc
    return pool.group_id


def _quota_exceeded(pool: TokenPoolItem, retry_after: int) -> AmporaError:
    return AmporaError(
        f"pool {pool.name!r} has used its quota of {int(pool.quota_per_hour)} tokens this hour",
        slug="quota-exceeded", headers={"Retry-After": str(retry_after)})


def issue(principal: Principal, pool_id: str, spec: TokenPoolIssue) -> BootstrapTokenCreated:
    """Issue one token from a pool's template, unless the pool's hourly quota is spent."""
    pool = _get_pool(principal.tenant, pool_id)
    ttl = min(int(pool.ttl_seconds), settings().bootstrap_token_max_ttl_seconds)
    item, token = _mint(principal, name=spec.name or pool.name, group_id=_pool_group(pool),
                        labels=pool.labels, ttl=ttl, max_uses=int(pool.uses_per_token),
                        pool_id=pool.id)
    window, retry_after = rules.hour_window(item.created_at)
    counter = PoolQuotaItem(tenant=pool.tenant, key=rules.quota_key(pool.id, window))
    try:
        with transaction() as tx:
            tx.update(counter, actions=[
                PoolQuotaItem.issued.add(1),
                PoolQuotaItem.expires_at.set(item.created_at + timedelta(days=1))],
                condition=PoolQuotaItem.issued.does_not_exist()
                | (PoolQuotaItem.issued < int(pool.quota_per_hour)))
            tx.save(item, condition=Token.id.does_not_exist())
            tx.save(_token_event(item, "issued", item.created_at))
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        raise _quota_exceeded(pool, retry_after) from exc
    return _created(item, token)


# --- redeeming (the agents' path) -----------------------------------------------------------

@lru_cache(maxsize=4096)
def _key_of(digest: str) -> tuple[str, str]:
    """(tenant, id) of the token with this hash; a token's key never changes, misses raise."""
    for key in Token.by_hash.query(digest, limit=1):
        return key.tenant, key.id
    raise LookupError("no such token")


def _find(token: str) -> Token | None:
    digest = token_hash(token)
    for _ in range(2):
        try:
            tenant, token_id = _key_of(digest)
            item = Token.get(tenant, token_id, consistent_read=True)
        except LookupError:
            return None
        except Token.DoesNotExist:
            _key_of.cache_clear()  # a stale key (only a recreated table has those): look again
            continue
        return item if hmac.compare_digest(item.token_hash, digest) else None
    return None


def _refuse_if_ended(item: Token, now: datetime) -> None:
    status = _status(item, now)
    if status in ("revoked", "expired"):
        raise InvalidToken(f"the bootstrap token is {status}")


def _enrolled(item: Token, agent_id: str) -> bool:
    key = rules.enrollment_key(item.id, agent_id)
    try:
        EnrollmentItem.get(item.tenant, key, consistent_read=True, attributes_to_get=["key"])
    except EnrollmentItem.DoesNotExist:
        return False
    return True


def _consume(item: Token, agent_id: str, now: datetime) -> None:
    """Take one use and record the enrollment, atomically (the last use goes to one agent)."""
    record = EnrollmentItem(tenant=item.tenant, key=rules.enrollment_key(item.id, agent_id),
                            enrolled_at=now, expires_at=item.expires_at)
    with transaction() as tx:
        tx.update(item, actions=[Token.uses.add(1), Token.last_used_at.set(now)],
                  condition=Token.revoked_at.does_not_exist() & (Token.expires_at > now)
                  & (Token.uses < Token.max_uses))
        tx.save(record, condition=EnrollmentItem.key.does_not_exist())


def _grant(item: Token) -> Grant:
    return Grant(tenant=item.tenant, token_id=item.id, group_id=item.group_id,
                 labels={str(k): str(v) for k, v in item.labels.items()},
                 expires_at=item.expires_at)


def _admit(item: Token, agent_id: str) -> Grant:
    now = deps().clock.now()
    _refuse_if_ended(item, now)
    if _enrolled(item, agent_id):
        return _grant(item)
    try:
        _consume(item, agent_id, now)
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        return _settle(item, agent_id)
    return _grant(item)


def _settle(item: Token, agent_id: str) -> Grant:
    """After a lost race: admit if this agent got enrolled meanwhile, else say why not."""
    fresh = _get_item(item.tenant, item.id)
    _refuse_if_ended(fresh, deps().clock.now())
    if _enrolled(fresh, agent_id):
        return _grant(fresh)
    raise InvalidToken("the bootstrap token is exhausted: it has enrolled all the agents it may")


def _digest_of(token: str) -> str:
    if not rules.FORMAT.well_formed(token):
        raise InvalidToken("the bootstrap token is malformed (bad shape or checksum)")
    return token_hash(token)


def identify(token: str) -> tuple[str, str]:
    """The tenant and id of a bootstrap token, or 401; reads nothing once the container
    knows the token (a token's key never changes). Says nothing of whether it still holds."""
    try:
        return _key_of(_digest_of(token))
    except LookupError as exc:
        raise InvalidToken("the bootstrap token is not known") from exc


def is_live(tenant: str, token_id: str) -> bool:
    """Whether the token is neither revoked nor expired (one consistent read)."""
    item = find(Token, tenant, token_id)
    return item is not None and _status(item, deps().clock.now()) not in ("revoked", "expired")


def redeem(token: str, agent_id: str) -> Grant:
    """Admit an agent with a bootstrap token: its tenant, group and labels, or 401.

    The format and CRC are checked before any lookup. A revoked or expired token
    admits no one; an agent the token already enrolled is admitted without using
    it up; any other agent takes exactly one use (a conditional write), and an
    exhausted token admits no new agent. The agents room remembers, on each agent it
    enrolls, the token's expiry and (through :func:`revoke`) its revocation, so an
    enrolled agent's steady heartbeat does not come here.
    """
    _digest_of(token)
    item = _find(token)
    if item is None:
        raise InvalidToken("the bootstrap token is not known")
    return _admit(item, agent_id)
