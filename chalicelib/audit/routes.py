"""Routes of the audit log (Admin only)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.audit import service
from chalicelib.audit.schemas import AuditEvent, AuditQuery
from chalicelib.core.access import Role
from chalicelib.core.http import Call, Reply, operation

bp = Blueprint(__name__)


@operation(bp, "GET", "/api/audit/events", name="audit.list", summary="Search the audit log",
           resource="audit-event", role=Role.ADMIN, query=AuditQuery, response=AuditEvent,
           paged=True, tag="Audit")
def list_events(call: Call) -> Reply:
    """Audit records, newest first, filtered and paged."""
    return Reply(service.search(call.tenant, call.query, call.page))
