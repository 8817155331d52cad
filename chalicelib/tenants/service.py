"""Tenant use cases: make sure a tenant exists, read and replace its settings."""

from __future__ import annotations

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib.core.concurrency import IfMatch, etag, new_revision, revision_condition
from chalicelib.core.db import condition_failed, transaction
from chalicelib.core.deps import deps
from chalicelib.core.events import event_item
from chalicelib.core.problems import PreconditionFailed
from chalicelib.tenants.models import TenantItem
from chalicelib.tenants.schemas import Tenant, TenantSettingsInput

_known: set[str] = set()


def _view(item: TenantItem) -> Tenant:
    return Tenant(
        id=item.tenant, display_name=item.display_name, require_if_match=item.require_if_match,
        heartbeat_interval_seconds=int(item.heartbeat_interval_seconds),
        created_at=item.created_at, updated_at=item.updated_at,
    )


def _new_item(tenant: str) -> TenantItem:
    now = deps().clock.now()
    defaults = TenantSettingsInput()
    return TenantItem(
        tenant=tenant, revision=new_revision(deps().random_bytes), created_at=now,
        updated_at=now, display_name=defaults.display_name,
        require_if_match=defaults.require_if_match,
        heartbeat_interval_seconds=defaults.heartbeat_interval_seconds,
    )


def ensure(tenant: str) -> None:
    """Create ``tenant`` with default settings unless it exists (once per process)."""
    if tenant in _known:
        return
    try:
        _new_item(tenant).save(condition=TenantItem.tenant.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
    _known.add(tenant)


def forget_known() -> None:
    """Drop the in-process memory of existing tenants (tests reset the tables)."""
    _known.clear()


def _load(tenant: str) -> TenantItem:
    ensure(tenant)
    return TenantItem.get(tenant, consistent_read=True)


def get(tenant: str) -> tuple[Tenant, str]:
    """The tenant's settings and their revision."""
    item = _load(tenant)
    return _view(item), item.revision


def require_if_match(tenant: str) -> bool:
    """Whether the tenant refuses unconditional mutations of versioned resources."""
    return bool(_load(tenant).require_if_match)


def replace_settings(tenant: str, new: TenantSettingsInput,
                     if_match: IfMatch | None) -> tuple[Tenant, str]:
    """Replace the tenant's settings, conditionally on ``if_match``; emits ``tenant.updated``."""
    current = _load(tenant)
    now, d = deps().clock.now(), deps()
    item = TenantItem(
        tenant=tenant, revision=new_revision(d.random_bytes), created_at=current.created_at,
        updated_at=now, display_name=new.display_name, require_if_match=new.require_if_match,
        heartbeat_interval_seconds=new.heartbeat_interval_seconds,
    )
    condition = TenantItem.tenant.exists()
    guard = revision_condition(TenantItem.revision, if_match)
    if guard is not None:
        condition = condition & guard
    event = event_item(tenant=tenant, event_type="tenant.updated", subject=f"tenants/{tenant}",
                       data=new.to_wire(), at=now, event_id=d.new_id(),
                       random_hex=d.random_bytes(4).hex())
    try:
        with transaction() as tx:
            tx.save(item, condition=condition)
            tx.save(event)
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        latest = _load(tenant)
        raise PreconditionFailed("the tenant settings changed since you read them",
                                 current_etag=etag(latest.revision)) from exc
    return _view(item), item.revision
