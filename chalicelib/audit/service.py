"""Audit use cases: record a request's outcome, and search the trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.audit.models import AuditItem
from chalicelib.audit.schemas import AuditEvent, AuditQuery
from chalicelib.core.db import query_page
from chalicelib.core.deps import deps
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.settings import settings


def _sk(at: datetime, record_id: str) -> str:
    return f"{at.isoformat()}#{record_id}"


def record(entry: dict[str, Any]) -> None:
    """Append one record (a conditional put: a record is never overwritten)."""
    d = deps()
    at, record_id = d.clock.now(), d.new_id()
    actor = entry["actor"]
    AuditItem(
        tenant=entry["tenant"], sk=_sk(at, record_id), id=record_id, at=at,
        actor_type=actor["type"], actor_id=actor["id"], actor_name=actor["name"],
        action=entry["action"], resource_type=entry["resource_type"],
        resource_id=entry.get("resource_id"), outcome=entry["outcome"],
        status=entry["status"], request_id=entry.get("request_id") or None,
        source_ip=entry.get("source_ip") or None, method=entry["method"], path=entry["path"],
        expires_at=at + timedelta(days=settings().audit_retention_days),
    ).save(condition=AuditItem.sk.does_not_exist())


def _filters(query: AuditQuery) -> Any:
    conditions = []
    if query.actor is not None:
        conditions.append((AuditItem.actor_id == query.actor)
                          | (AuditItem.actor_name == query.actor))
    for attribute, value in ((AuditItem.action, query.action),
                             (AuditItem.resource_type, query.resource_type),
                             (AuditItem.resource_id, query.resource_id),
                             (AuditItem.outcome, query.outcome)):
        if value is not None:
            conditions.append(attribute == value)
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined & condition
    return combined


def _time_range(query: AuditQuery) -> Any:
    low = query.since.isoformat() if query.since else None
    high = f"{query.until.isoformat()}#~" if query.until else None
    if low and high:
        return AuditItem.sk.between(low, high)
    if low:
        return AuditItem.sk >= low
    if high:
        return AuditItem.sk <= high
    return None


def _view(item: AuditItem) -> AuditEvent:
    return AuditEvent.model_validate({
        "id": item.id, "time": item.at,
        "actor": {"type": item.actor_type, "id": item.actor_id, "name": item.actor_name},
        "action": item.action, "resource_type": item.resource_type,
        "resource_id": item.resource_id, "outcome": item.outcome, "status": int(item.status),
        "request_id": item.request_id, "source_ip": item.source_ip, "method": item.method,
        "path": item.path,
    })


def search(tenant: str, query: AuditQuery, page: PageRequest) -> Page[AuditEvent]:
    """The tenant's audit records matching ``query``, newest first."""
    found = query_page(AuditItem, tenant, page, range_key_condition=_time_range(query),
                       filter_condition=_filters(query), newest_first=True)
    return found.map(_view)
