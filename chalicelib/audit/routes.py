"""Routes of the audit log (Admin only)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.access import Role
from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.audit.service")


@operation(bp, "GET", "/api/audit/events", name="audit.list", summary="Search the audit log",
           resource="audit-event", role=Role.ADMIN, query="AuditQuery", response="AuditEvent",
           paged=True, tag="Audit")
def list_events(call: Call) -> Reply:
    """Audit records, newest first, filtered and paged."""
    return Reply(service.search(call.tenant, call.query, call.page))
