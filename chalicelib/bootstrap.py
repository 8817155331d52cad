"""The one place that wires dependencies: features fill the kernel's ports here."""

from __future__ import annotations

from typing import Any

from chalicelib.core.deps import Deps, wire


class _Tenants:
    """The tenants room as the kernel's tenant directory."""

    def ensure(self, tenant: str) -> None:
        from chalicelib.tenants import service

        service.ensure(tenant)

    def require_if_match(self, tenant: str) -> bool:
        from chalicelib.tenants import service

        return service.require_if_match(tenant)


def bootstrap(**overrides: Any) -> Deps:
    """Wire the production dependencies (tests pass overrides such as ``clock``)."""
    from chalicelib.audit.service import record
    from chalicelib.tokens.service import verify

    return wire(verify_pat=verify, tenants=_Tenants(), record_audit=record, **overrides)
