"""Routes of tenant settings: ``GET/PUT /api/tenant``."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.access import Role
from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.tenants.service")


@operation(bp, "GET", "/api/tenant", name="tenant.get", summary="Read the tenant's settings",
           resource="tenant", response="Tenant", etag=True, tag="Tenant")
def get_tenant(call: Call) -> Reply:
    """The caller's tenant and its ETag."""
    tenant, revision = service.get(call.tenant)
    return Reply(tenant, revision=revision, resource_id=call.tenant)


@operation(bp, "PUT", "/api/tenant", name="tenant.update", summary="Replace the tenant's settings",
           resource="tenant", role=Role.ADMIN, body="TenantSettingsInput", response="Tenant",
           etag=True, tag="Tenant")
def put_tenant(call: Call) -> Reply:
    """Replace the settings, honouring If-Match."""
    tenant, revision = service.replace_settings(call.tenant, call.body, call.if_match)
    return Reply(tenant, revision=revision, resource_id=call.tenant)
