"""The local stack's HTTPS port, where agents authenticate with their certificates (mutual TLS).

As an API Gateway custom domain with mutual TLS does in AWS, the port asks every
client for a certificate, lets the handshake succeed only for one that chains to
a tenant CA (or for none: enrollment with a bootstrap token needs no certificate),
and hands the handler ``requestContext.identity.clientCert``. Tenant CAs appear at
runtime (an agent's first CSR creates its tenant's), so the trust store grows as
the certificates room reports each CA. The server certificate for 127.0.0.1 and
localhost is signed by a local CA kept in ``<home>/tls/``; clients trust ``ca.pem``.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.local.state import atomic_write, ensure_home

TLS_DIR = "tls"
CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
SERVER_CERT, SERVER_KEY = "server.pem", "server-key.pem"
SERVER_LIFETIME = timedelta(days=365)
#: The server certificate is replaced when less than this is left.
SERVER_RENEW_BEFORE = timedelta(days=7)
log = logging.getLogger("ampora.local")


@dataclass(frozen=True)
class ServerFiles:
    """Where the HTTPS port's certificates live."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The local CA that signed the server certificate (what clients trust)."""
        return self.directory / CA_CERT

    @property
    def ca_key(self) -> Path:
        """The local CA's key (owner-only)."""
        return self.directory / CA_KEY

    @property
    def cert(self) -> Path:
        """The server certificate (127.0.0.1, localhost)."""
        return self.directory / SERVER_CERT

    @property
    def key(self) -> Path:
        """The server certificate's key (owner-only)."""
        return self.directory / SERVER_KEY


def _serial() -> int:
    from chalicelib.certificates.x509 import serial_from

    return serial_from(secrets.token_bytes(20))


def _local_ca(files: ServerFiles, now: datetime) -> tuple[Any, Any]:
    """The local CA (key, certificate), created once."""
    from chalicelib.certificates import x509 as pki

    if files.ca_cert.exists() and files.ca_key.exists():
        return pki.load_key(files.ca_key.read_bytes()), pki.load_cert(files.ca_cert.read_bytes())
    key = pki.new_key()
    cert = pki.self_signed_ca(key, "Ampora local stack CA", now=now, serial=_serial())
    atomic_write(files.ca_key, pki.key_pem(key))
    atomic_write(files.ca_cert, pki.cert_pem(cert), mode=0o644)
    return key, cert


def _current(files: ServerFiles, now: datetime) -> bool:
    from chalicelib.certificates import x509 as pki

    if not (files.cert.exists() and files.key.exists()):
        return False
    cert = pki.load_cert(files.cert.read_bytes())
    return cert.not_valid_after_utc - now > SERVER_RENEW_BEFORE


def server_certificate(home: Path, now: datetime | None = None) -> ServerFiles:
    """The HTTPS port's certificate files, (re)issued when missing or about to expire."""
    from chalicelib.certificates import x509 as pki

    now = now or datetime.now(UTC)
    files = ServerFiles(ensure_home(ensure_home(home) / TLS_DIR))
    if _current(files, now):
        return files
    ca_key, ca_cert = _local_ca(files, now)
    key = pki.new_key()
    spec = pki.LeafSpec(common_name="127.0.0.1", serial=_serial(), server=True,
                        not_before=now - pki.BACKDATE, not_after=now + SERVER_LIFETIME,
                        dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    atomic_write(files.key, pki.key_pem(key))
    atomic_write(files.cert, pki.cert_pem(pki.issue(ca_key, ca_cert, key.public_key(), spec)),
                 mode=0o644)
    return files


@dataclass
class ClientTrust:
    """The HTTPS port's TLS context and the tenant CAs it accepts client certificates from."""

    context: ssl.SSLContext
    known: set[bytes] = field(default_factory=set)

    def add(self, tenant: str, ca_pem: bytes, created: bool = False) -> None:
        """Trust client certificates issued by this tenant CA from the next handshake on."""
        if ca_pem in self.known:
            return
        self.context.load_verify_locations(cadata=ca_pem.decode("ascii"))
        self.known.add(ca_pem)
        log.info("mTLS port trusts the CA of tenant %s%s", tenant, " (new)" if created else "")


def server_context(files: ServerFiles) -> ssl.SSLContext:
    """A TLS server context that asks for a client certificate and verifies any it gets."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_trust(home: Path) -> ClientTrust:
    """The HTTPS port's trust, following every tenant CA the certificates room learns of.

    Call after the app is loaded and the local Secrets Manager restored: the CAs that
    exist already are trusted now, the ones created later as they appear.
    """
    from chalicelib.certificates import authority, service

    trust = ClientTrust(server_context(server_certificate(home)))
    authority.on_authority(trust.add)
    service.ca_certificates()  # loads each existing CA, which the listener trusts
    return trust


def peer_certificate(transport: Any) -> tuple[bool, bytes | None]:
    """Whether the connection is TLS, and the client certificate (DER) if one was verified."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return False, None
    return True, ssl_object.getpeercert(binary_form=True)


def client_cert_context(der: bytes) -> dict[str, Any]:
    """``requestContext.identity.clientCert`` for a verified client certificate."""
    from cryptography import x509

    from chalicelib.certificates.x509 import client_cert_context as context_of

    return context_of(x509.load_der_x509_certificate(der))
