"""The injectable dependencies: clock, ids, randomness, and the ports features fill in.

``app.py`` calls :func:`wire` once with what :mod:`chalicelib.bootstrap` builds; tests
call it with their own clock or ids instead of patching internals.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chalicelib.core.access import Principal


class Clock(Protocol):
    """Wall-clock time, injectable so tests never sleep."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, always in UTC."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class PatVerifier(Protocol):
    """Turns a personal access token into a principal (the tokens room)."""

    def __call__(self, token: str) -> Principal: ...


class TenantDirectory(Protocol):
    """Knows tenants and their settings (the tenants room)."""

    def ensure(self, tenant: str) -> None: ...

    def require_if_match(self, tenant: str) -> bool: ...


class AuditRecorder(Protocol):
    """Keeps the audit trail of state-changing requests (the audit room)."""

    def __call__(self, record: dict[str, Any]) -> None: ...


def new_id() -> str:
    """A 32-hex-digit resource id that sorts by creation time (48-bit ms, then 80 random bits)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


@dataclass
class Deps:
    """Everything a request may need that is not pure logic."""

    clock: Clock = field(default_factory=SystemClock)
    new_id: Any = new_id
    random_bytes: Any = os.urandom
    monotonic: Any = time.monotonic
    verify_pat: PatVerifier | None = None
    tenants: TenantDirectory | None = None
    record_audit: AuditRecorder | None = None


_deps = Deps()


def deps() -> Deps:
    """The wired dependencies of this process."""
    return _deps


def wire(**overrides: Any) -> Deps:
    """Replace some dependencies (the app wires at import; tests override)."""
    global _deps
    _deps = replace(_deps, **overrides)
    return _deps
