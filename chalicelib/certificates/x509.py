"""X.509 for agent identity, pure: CA and leaf building, CSR checks, leaf verification.

No I/O, no clock, no randomness of its own: callers pass the time, the serial
and the keys. An agent's leaf names it twice: CN = agent id, and the SAN URI
``urn:ampora:<tenant>:agent:<agent id>``, which is what identification trusts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography import x509

#: Leaves start a little in the past, so an agent whose clock lags accepts them.
BACKDATE = timedelta(minutes=5)
#: A tenant CA lives this long (renewing it means a new truststore for every agent).
CA_LIFETIME = timedelta(days=3650)
#: Renew once a leaf has less than this share of its lifetime left.
RENEW_WHEN_LEFT = 1 / 3
_AGENT_URI = re.compile(r"^urn:ampora:(?P<tenant>[A-Za-z0-9][A-Za-z0-9._-]{0,63})"
                        r":agent:(?P<agent>[0-9a-f]{32})$")
_RSA_MIN_BITS = 2048


class CertificateError(ValueError):
    """A CSR or certificate is malformed, unsupported, or does not verify."""


@dataclass(frozen=True)
class LeafIdentity:
    """What a verified agent leaf says: whose agent it is, its serial and validity."""

    tenant: str
    agent_id: str
    serial: str
    not_before: datetime
    not_after: datetime


def agent_uri(tenant: str, agent_id: str) -> str:
    """The SAN URI that names an agent of a tenant."""
    uri = f"urn:ampora:{tenant}:agent:{agent_id}"
    if not _AGENT_URI.match(uri):
        raise CertificateError(f"not a valid tenant/agent id pair: {tenant!r}/{agent_id!r}")
    return uri


def parse_agent_uri(uri: str) -> tuple[str, str] | None:
    """``(tenant, agent_id)`` of an agent SAN URI, or ``None`` if it is not one."""
    found = _AGENT_URI.match(uri)
    return None if found is None else (found["tenant"], found["agent"])


def serial_hex(serial: int) -> str:
    """A certificate serial as Ampora shows and stores it: lowercase hex."""
    return f"{serial:x}"


def serial_from(random: bytes) -> int:
    """A positive serial of at most 159 bits (RFC 5280: 20 octets) from random bytes."""
    return (int.from_bytes(random[:20], "big") >> 1) or 1


def needs_renewal(not_after: datetime, now: datetime, lifetime: timedelta) -> bool:
    """Whether a leaf is in the last third of its lifetime (or past it)."""
    return not_after - now <= lifetime * RENEW_WHEN_LEFT


def new_key() -> Any:
    """A new EC P-256 private key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: Any) -> bytes:
    """A private key as unencrypted PKCS#8 PEM (a CA's goes only to Secrets Manager; a leaf
    key Ampora made goes once to its agent)."""
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def load_key(pem: bytes) -> Any:
    """A private key from PEM."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


def cert_pem(cert: x509.Certificate) -> bytes:
    """A certificate as PEM."""
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes | str) -> x509.Certificate:
    """A certificate from PEM, or :class:`CertificateError`."""
    from cryptography import x509

    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError("not a PEM certificate") from exc


def _name(common_name: str, organization: str = "Ampora") -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                         decipher_only=False)


def self_signed_ca(key: Any, common_name: str, *, now: datetime, serial: int,
                   lifetime: timedelta = CA_LIFETIME) -> x509.Certificate:
    """A self-signed CA certificate for ``key`` that may sign leaves only (path length 0)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(public).serial_number(serial)
            .not_valid_before(now - BACKDATE).not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))


@dataclass(frozen=True)
class LeafSpec:
    """What a leaf certifies: its subject, names, purpose, serial and validity."""

    common_name: str
    serial: int
    not_before: datetime
    not_after: datetime
    uris: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    server: bool = False
    organization: str = "Ampora"


def _alt_names(spec: LeafSpec) -> x509.SubjectAlternativeName:
    import ipaddress

    from cryptography import x509

    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in spec.uris]
    names += [x509.DNSName(d) for d in spec.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.ip_addresses]
    return x509.SubjectAlternativeName(names)


def issue(ca_key: Any, ca_cert: x509.Certificate, public_key: Any, spec: LeafSpec
          ) -> x509.Certificate:
    """A leaf for ``public_key`` signed by the CA: client auth (server auth if ``spec.server``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    usage = ExtendedKeyUsageOID.SERVER_AUTH if spec.server else ExtendedKeyUsageOID.CLIENT_AUTH
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(_name(spec.common_name, spec.organization))
            .issuer_name(ca_cert.subject).public_key(public_key).serial_number(spec.serial)
            .not_valid_before(spec.not_before).not_valid_after(spec.not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(_alt_names(spec), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))


def agent_leaf_spec(tenant: str, agent_id: str, *, serial: int, now: datetime,
                    lifetime: timedelta, ca_not_after: datetime) -> LeafSpec:
    """The leaf of an agent: CN = agent id, SAN = its URI, never outliving the CA."""
    return LeafSpec(common_name=agent_id, organization=tenant, serial=serial,
                    uris=(agent_uri(tenant, agent_id),), not_before=now - BACKDATE,
                    not_after=min(now + lifetime, ca_not_after))


def load_csr_public_key(pem: bytes) -> Any:
    """The public key of a CSR whose signature verifies (EC P-256/384/521 or RSA ≥ 2048)."""
    from cryptography import x509

    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise CertificateError("the certificate request is not a PEM CSR") from exc
    if not csr.is_signature_valid:
        raise CertificateError("the certificate request's signature does not verify")
    return _supported(csr.public_key())


def _supported(public_key: Any) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in {
            "secp256r1", "secp384r1", "secp521r1"}:
        return public_key
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= _RSA_MIN_BITS:
        return public_key
    raise CertificateError("the certificate request's key must be EC P-256/P-384/P-521 "
                           f"or RSA of at least {_RSA_MIN_BITS} bits")


def claimed_agent(cert: x509.Certificate) -> tuple[str, str]:
    """``(tenant, agent_id)`` from the leaf's SAN URI (not yet verified)."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError("the certificate names no agent") from exc
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        named = parse_agent_uri(uri)
        if named is not None:
            return named
    raise CertificateError("the certificate names no agent")


def verify_leaf(cert: x509.Certificate, ca_cert: x509.Certificate, now: datetime
                ) -> LeafIdentity:
    """The leaf's identity if ``ca_cert`` signed it, it is for client auth and valid at ``now``."""
    from cryptography.exceptions import InvalidSignature

    tenant, agent_id = claimed_agent(cert)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError("the certificate was not issued by the tenant's CA") from exc
    if not _for_client_auth(cert):
        raise CertificateError("the certificate is not for client authentication")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateError("the certificate is not valid at this time")
    return LeafIdentity(tenant=tenant, agent_id=agent_id, serial=serial_hex(cert.serial_number),
                        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc)


def _for_client_auth(cert: x509.Certificate) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


def openssl_name(name: x509.Name) -> str:
    """A distinguished name the way API Gateway shows it (RFC 4514 string)."""
    return name.rfc4514_string()


def gateway_time(at: datetime) -> str:
    """A time as API Gateway shows a certificate's validity (``May 28 12:30:02 2019 GMT``)."""
    return f"{at:%b} {at.day:2d} {at:%H:%M:%S %Y} GMT"


def client_cert_context(cert: x509.Certificate) -> dict[str, Any]:
    """``requestContext.identity.clientCert`` as an API Gateway mTLS custom domain sends it."""
    serial = f"{cert.serial_number:x}"
    serial = serial.zfill(len(serial) + len(serial) % 2)
    return {
        "clientCertPem": cert_pem(cert).decode("ascii"),
        "subjectDN": openssl_name(cert.subject),
        "issuerDN": openssl_name(cert.issuer),
        "serialNumber": ":".join(serial[i:i + 2] for i in range(0, len(serial), 2)),
        "validity": {"notBefore": gateway_time(cert.not_valid_before_utc),
                     "notAfter": gateway_time(cert.not_valid_after_utc)},
    }
