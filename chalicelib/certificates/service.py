"""Agent certificates: sign an agent's CSR with its tenant's CA, issue a leaf with a key of
Ampora's making, identify a client certificate, and revoke an agent's leaf.

The OpAMP handler calls :func:`sign_csr` when an agent asks for a certificate,
:func:`issue_with_key` when an agent's leaf is due for renewal and it sent no CSR, and
:func:`identify` for each request that arrives over mutual TLS; it then checks the
serial against the agent item, so revocation is checked on every request.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.certificates import x509 as pki
from chalicelib.certificates.authority import store
from chalicelib.core.access import Principal
from chalicelib.core.deps import deps
from chalicelib.core.lazy import LazyModule
from chalicelib.core.problems import BadRequest, InvalidToken
from chalicelib.core.settings import settings

agents = LazyModule("chalicelib.agents.service")
#: Leaves already verified by this process, by PEM digest (validity is still checked each time).
_VERIFIED: OrderedDict[bytes, pki.LeafIdentity] = OrderedDict()
_VERIFIED_MAX = 4096


@dataclass(frozen=True)
class Issued:
    """A signed agent leaf, the CA certificate to trust it by, its serial and expiry, and the
    leaf's private key when Ampora made it (the agent sent no CSR)."""

    cert_pem: bytes
    ca_pem: bytes
    serial: str
    not_after: datetime
    private_key_pem: bytes | None = None


def lifetime() -> timedelta:
    """How long an agent leaf is valid (``AMPORA_AGENT_CERT_TTL_HOURS``)."""
    return timedelta(hours=settings().agent_cert_ttl_hours)


def needs_renewal(not_after: datetime, now: datetime) -> bool:
    """Whether an agent's leaf is due for a new one (in the last third of its lifetime)."""
    return pki.needs_renewal(not_after, now, lifetime())


def sign_csr(tenant: str, agent_id: str, csr_pem: bytes, *, presented: str | None = None
             ) -> Issued:
    """Sign an agent's CSR with its tenant's CA and record the serial and expiry on the agent.

    ``presented`` is the serial of the client certificate the request came with, if any: it
    stays accepted until the agent shows the new leaf (see ``agents.mark_certificate``).
    """
    try:
        public_key = pki.load_csr_public_key(csr_pem)
    except pki.CertificateError as exc:
        raise BadRequest(str(exc)) from exc
    return _issue(tenant, agent_id, public_key, presented=presented)


def issue_with_key(tenant: str, agent_id: str, *, presented: str | None = None) -> Issued:
    """A new leaf for the agent with a key Ampora generates (the agent sent no CSR).

    The key is returned once, in :attr:`Issued.private_key_pem`, and kept nowhere.
    """
    key = pki.new_key()
    issued = _issue(tenant, agent_id, key.public_key(), presented=presented)
    return replace(issued, private_key_pem=pki.key_pem(key))


def _issue(tenant: str, agent_id: str, public_key: Any, *, presented: str | None) -> Issued:
    """Sign ``public_key`` into a leaf naming the agent; record its serial and expiry."""
    try:
        authority = store().get_or_create(tenant)
        d = deps()
        spec = pki.agent_leaf_spec(
            tenant, agent_id, serial=pki.serial_from(d.random_bytes(20)), now=d.clock.now(),
            lifetime=lifetime(), ca_not_after=authority.cert.not_valid_after_utc)
        cert = pki.issue(authority.key, authority.cert, public_key, spec)
    except pki.CertificateError as exc:
        raise BadRequest(str(exc)) from exc
    issued = Issued(cert_pem=pki.cert_pem(cert), ca_pem=authority.cert_pem,
                    serial=pki.serial_hex(spec.serial), not_after=spec.not_after)
    agents.mark_certificate(tenant, agent_id, serial=issued.serial, not_after=issued.not_after,
                            presented=presented)
    return issued


def identify(client_cert_pem: str) -> tuple[str, str, str]:
    """``(tenant, agent_id, serial)`` of a leaf Ampora issued and that is valid now.

    Raises :class:`InvalidToken` for anything else: not a certificate, no agent name,
    not signed by the named tenant's CA, not for client auth, expired or not yet valid.
    """
    now = deps().clock.now()
    try:
        identity = _verified(client_cert_pem)
    except pki.CertificateError as exc:
        raise InvalidToken(f"the client certificate is not accepted: {exc}") from exc
    if not identity.not_before <= now <= identity.not_after:
        raise InvalidToken("the client certificate is not accepted: it is not valid at this time")
    return identity.tenant, identity.agent_id, identity.serial


def _verified(client_cert_pem: str) -> pki.LeafIdentity:
    """The leaf's identity, verified against its tenant's CA (once per process per leaf)."""
    digest = hashlib.sha256(client_cert_pem.encode()).digest()
    known = _VERIFIED.get(digest)
    if known is not None:
        _VERIFIED.move_to_end(digest)
        return known
    cert = pki.load_cert(client_cert_pem)
    tenant, _ = pki.claimed_agent(cert)
    authority = store().find(tenant)
    if authority is None:
        raise pki.CertificateError("the tenant it names has no certificate authority")
    identity = pki.verify_leaf(cert, authority.cert, deps().clock.now())
    _VERIFIED[digest] = identity
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
    return identity


def ca_certificate(tenant: str) -> bytes | None:
    """The tenant's CA certificate (public), or ``None`` if the tenant has no CA yet."""
    authority = store().find(tenant)
    return None if authority is None else authority.cert_pem


def ca_certificates() -> list[bytes]:
    """Every tenant CA certificate of this stage (what a truststore must hold)."""
    found = [store().find(tenant) for tenant in store().tenants()]
    return [authority.cert_pem for authority in found if authority is not None]


def revoke_certificate(principal: Principal, agent_id: str) -> dict[str, Any]:
    """Revoke the agent's leaf: its next request is refused and it shows as revoked."""
    view: dict[str, Any] = agents.revoke_certificate(principal.tenant, agent_id)
    return view


def forget_cached() -> None:
    """Drop the CAs and verified leaves this process remembers (tests start from fresh AWS)."""
    from chalicelib.certificates import authority

    authority.forget_cached()
    _VERIFIED.clear()
