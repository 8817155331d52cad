"""Where an agent stands with the configuration its group wants it to run (no I/O).

:func:`assess` compares the desired version with what the agent reported (its
``RemoteConfigStatus`` and effective config) and decides what to store, which
event records a change, and whether the configuration must be (re)sent.

- The configuration is sent while the agent has not reported the desired hash as
  its last remote config; once it has, it is never resent (a failed apply is not
  retried in a loop: a new version, or the agent's own retry, moves it on).
- Status: ``pending`` (sent, not acknowledged), ``applying``, ``applied`` or
  ``failed`` (with the agent's message), always about the desired version.
- Drift: after applying, the agent's effective config must stay what it was right
  after the apply (or equal the desired files exactly); any later change of it is
  drift, until the agent applies a configuration again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PENDING, APPLYING, APPLIED, FAILED = "pending", "applying", "applied", "failed"
_BY_REPORT = {"APPLIED": APPLIED, "APPLYING": APPLYING, "FAILED": FAILED}


def files_hash(files: Mapping[str, tuple[str, bytes]]) -> str:
    """SHA-256 (hex) over config files ``{name: (content type, body)}`` in name order: how
    Ampora fingerprints an agent's effective config and the files it sends."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content_type, body = files[name]
        for part in (name.encode(), content_type.encode(), body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class Desired:
    """The configuration version the agent's group wants, and its fingerprints."""

    configuration_id: str
    version: int
    #: The OpAMP ``config_hash`` of the version (SHA-256 of its content, hex).
    config_hash: str
    #: :func:`files_hash` of the files Ampora sends for it.
    files_hash: str


@dataclass(frozen=True)
class Standing:
    """What is stored about the agent's configuration (all ``None`` for a new agent)."""

    configuration_id: str | None = None
    version: int | None = None
    status: str | None = None
    error: str | None = None
    applied_version: int | None = None
    baseline: str | None = None
    drifted: bool | None = None


@dataclass
class Assessment:
    """The outcome: attributes to set, the change for the event, events, what to send."""

    updates: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    send: bool = False


def _status(report: Mapping[str, Any] | None, desired: Desired) -> tuple[str, str | None]:
    """The agent's status about ``desired`` from its last remote-config report."""
    if report is None or report.get("lastRemoteConfigHash") != desired.config_hash:
        return PENDING, None
    status = _BY_REPORT.get(str(report.get("status")), PENDING)
    return status, (str(report.get("errorMessage") or "") if status == FAILED else None)


def _baseline(stored: Standing, status: str, effective: str | None,
              effective_reported: bool, desired: Desired) -> str | None:
    """The effective config the agent runs since applying (None: not known yet)."""
    if status != APPLIED:
        return None
    if stored.status == APPLIED and stored.baseline is not None:
        return stored.baseline
    if effective_reported or effective == desired.files_hash:
        return effective
    return None


def _drifted(status: str, baseline: str | None, effective: str | None,
             desired: Desired) -> bool:
    if status != APPLIED or baseline is None or effective is None:
        return False
    return effective not in (baseline, desired.files_hash)


def _events(stored: Standing, status: str, drifted: bool) -> list[str]:
    found = []
    if status != stored.status and status in (APPLIED, FAILED):
        found.append(f"agent.config.{status}")
    if drifted and not stored.drifted:
        found.append("agent.config.drifted")
    return found


def _visible(standing: Standing) -> dict[str, Any]:
    """What the API and events show of a standing (the baseline is internal)."""
    return {"configurationId": standing.configuration_id, "version": standing.version,
            "status": standing.status, "error": standing.error,
            "appliedVersion": standing.applied_version, "drifted": standing.drifted}


def assess(stored: Standing, desired: Desired | None, report: Mapping[str, Any] | None,
           effective: str | None, *, effective_reported: bool,
           accepts_remote_config: bool) -> Assessment:
    """Decide what one message means for the agent's configuration.

    ``report`` is the agent's latest RemoteConfigStatus (this message's or the stored one),
    ``effective`` its latest effective-config hash, ``effective_reported`` whether this
    message carried it.
    """
    result = Assessment()
    if desired is None:
        return result
    status, error = _status(report, desired)
    baseline = _baseline(stored, status, effective, effective_reported, desired)
    drifted = _drifted(status, baseline, effective, desired)
    applied = desired.version if status == APPLIED else stored.applied_version
    if status != APPLIED and stored.configuration_id != desired.configuration_id:
        applied = None  # a version of another configuration says nothing of this one
    now = Standing(configuration_id=desired.configuration_id, version=desired.version,
                   status=status, error=error, applied_version=applied, baseline=baseline,
                   drifted=drifted)
    if now != stored:
        result.updates.update(desired_configuration_id=now.configuration_id,
                              desired_version=now.version, config_status=now.status,
                              config_error=now.error, applied_version=now.applied_version,
                              config_baseline=now.baseline, drifted=now.drifted)
    if _visible(now) != _visible(stored):
        result.changed["configuration"] = _visible(now)
        result.events = _events(stored, status, drifted)
    result.send = accepts_remote_config and (
        report is None or report.get("lastRemoteConfigHash") != desired.config_hash)
    return result
