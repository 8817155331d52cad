"""The one place that wires dependencies: features fill the kernel's ports here.

Feature services are referenced lazily, so wiring costs nothing at import; each
is loaded by the first request that needs it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import chalicelib
from chalicelib.core.deps import Deps, wire
from chalicelib.core.lazy import LazyModule

_tenants = LazyModule("chalicelib.tenants.service")
_tokens = LazyModule("chalicelib.tokens.service")
_audit = LazyModule("chalicelib.audit.service")


class _Tenants:
    """The tenants room as the kernel's tenant directory."""

    def ensure(self, tenant: str) -> None:
        _tenants.ensure(tenant)

    def require_if_match(self, tenant: str) -> bool:
        return bool(_tenants.require_if_match(tenant))


def _verify_pat(token: str) -> Any:
    return _tokens.verify(token)


def _record_audit(entry: dict[str, Any]) -> None:
    _audit.record(entry)


def bootstrap(**overrides: Any) -> Deps:
    """Wire the production dependencies (tests pass overrides such as ``clock``)."""
    return wire(verify_pat=_verify_pat, tenants=_Tenants(), record_audit=_record_audit,
                **overrides)


def all_models() -> list[Any]:
    """Every table model of every feature (imports each ``<feature>/models.py``)."""
    from chalicelib.core import db, events  # noqa: F401 - events declares the events table

    for module in pkgutil.iter_modules(chalicelib.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"chalicelib.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"chalicelib.{module.name}.models":
                    raise
    return list(db.MODELS)
