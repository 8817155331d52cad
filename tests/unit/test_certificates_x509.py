"""The pure X.509 helpers: agent names, serials, renewal, CSR checks, issuing and verifying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chalicelib.certificates import x509 as pki

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
AGENT = "0123456789abcdef0123456789abcdef"


def _csr(key: Any, common_name: str = "whatever") -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, algorithm))
    return csr.public_bytes(serialization.Encoding.PEM)


def _ca(name: str = "acme") -> tuple[Any, x509.Certificate]:
    key = pki.new_key()
    return key, pki.self_signed_ca(key, f"CA {name}", now=NOW, serial=7)


def _leaf(ca: tuple[Any, x509.Certificate], tenant: str = "acme", *, now: datetime = NOW,
          lifetime: timedelta = DAY) -> x509.Certificate:
    ca_key, ca_cert = ca
    spec = pki.agent_leaf_spec(tenant, AGENT, serial=1234, now=now, lifetime=lifetime,
                               ca_not_after=ca_cert.not_valid_after_utc)
    return pki.issue(ca_key, ca_cert, ec.generate_private_key(ec.SECP256R1()).public_key(), spec)


# --- names and numbers -----------------------------------------------------------------------

@pytest.mark.parametrize(("uri", "expected"), [
    (f"urn:ampora:acme:agent:{AGENT}", ("acme", AGENT)),
    (f"urn:ampora:team-1.eu_west:agent:{AGENT}", ("team-1.eu_west", AGENT)),
    (f"urn:ampora:acme:agent:{AGENT.upper()}", None),
    (f"urn:ampora:acme:agent:{AGENT[:-1]}", None),
    (f"urn:ampora:ac:me:agent:{AGENT}", None),
    (f"urn:ampora::agent:{AGENT}", None),
    (f"urn:other:acme:agent:{AGENT}", None),
    (f"urn:ampora:acme:agent:{AGENT}/x", None),
    ("https://acme.example/agent", None),
])
def test_agent_uri_parsing(uri: str, expected: tuple[str, str] | None) -> None:
    assert pki.parse_agent_uri(uri) == expected


def test_agent_uri_round_trips_and_refuses_bad_ids() -> None:
    assert pki.parse_agent_uri(pki.agent_uri("acme", AGENT)) == ("acme", AGENT)
    with pytest.raises(pki.CertificateError):
        pki.agent_uri("acme", "not-hex")


@pytest.mark.parametrize("random", [b"\x00" * 20, b"\xff" * 20, bytes(range(20)), b"\x01" * 32])
def test_serials_are_positive_and_fit_20_octets(random: bytes) -> None:
    serial = pki.serial_from(random)
    assert 0 < serial < 2 ** 159


@pytest.mark.parametrize(("left", "renew"), [
    (timedelta(hours=24), False),
    (timedelta(hours=9), False),
    (timedelta(hours=8), True),
    (timedelta(hours=1), True),
    (timedelta(hours=-1), True),
])
def test_a_leaf_is_renewed_in_the_last_third_of_its_life(left: timedelta, renew: bool) -> None:
    assert pki.needs_renewal(NOW + left, NOW, DAY) is renew


# --- CSRs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [
    ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()),
    rsa.generate_private_key(public_exponent=65537, key_size=2048),
])
def test_a_well_signed_csr_of_a_supported_key_gives_its_public_key(key: Any) -> None:
    public = pki.load_csr_public_key(_csr(key))
    assert public.public_numbers() == key.public_key().public_numbers()


def _tampered() -> bytes:
    """A CSR whose subject was changed after it was signed."""
    pem = _csr(ec.generate_private_key(ec.SECP256R1()), "aaaa")
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    tampered = der.replace(b"aaaa", b"aaab", 1)
    return x509.load_der_x509_csr(tampered).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(("pem", "message"), [
    (b"not a csr", "not a PEM CSR"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
     "not a PEM CSR"),
    (_csr(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "RSA of at least"),
    (_csr(ed25519.Ed25519PrivateKey.generate()), "must be EC"),
    (_csr(ec.generate_private_key(ec.SECP256K1())), "must be EC"),
])
def test_bad_csrs_are_refused(pem: bytes, message: str) -> None:
    with pytest.raises(pki.CertificateError, match=message):
        pki.load_csr_public_key(pem)


def test_a_csr_whose_signature_does_not_verify_is_refused() -> None:
    with pytest.raises(pki.CertificateError, match="signature does not verify"):
        pki.load_csr_public_key(_tampered())


# --- issuing ----------------------------------------------------------------------------------

def test_the_ca_may_sign_leaves_only() -> None:
    _, cert = _ca()
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)

    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.issuer == cert.subject


def test_an_agent_leaf_names_the_agent_for_client_auth_only() -> None:
    leaf = _leaf(_ca())

    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == AGENT
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"urn:ampora:acme:agent:{AGENT}"]
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc == NOW + DAY
    assert leaf.not_valid_before_utc == NOW - pki.BACKDATE


def test_a_leaf_never_outlives_its_ca() -> None:
    ca = _ca()
    leaf = _leaf(ca, now=ca[1].not_valid_after_utc - timedelta(hours=1))
    assert leaf.not_valid_after_utc == ca[1].not_valid_after_utc


# --- verifying --------------------------------------------------------------------------------

def test_a_leaf_of_the_tenant_ca_verifies_within_its_validity() -> None:
    ca = _ca()
    identity = pki.verify_leaf(_leaf(ca), ca[1], NOW + timedelta(hours=1))

    assert (identity.tenant, identity.agent_id, identity.serial) == ("acme", AGENT, "4d2")
    assert identity.not_after == NOW + DAY


@pytest.mark.parametrize(("when", "valid"), [
    (NOW - pki.BACKDATE - timedelta(seconds=1), False),
    (NOW - pki.BACKDATE, True),
    (NOW + DAY, True),
    (NOW + DAY + timedelta(seconds=1), False),
])
def test_validity_bounds(when: datetime, valid: bool) -> None:
    ca = _ca()
    if valid:
        pki.verify_leaf(_leaf(ca), ca[1], when)
    else:
        with pytest.raises(pki.CertificateError, match="not valid at this time"):
            pki.verify_leaf(_leaf(ca), ca[1], when)


def test_a_leaf_of_another_ca_does_not_verify() -> None:
    with pytest.raises(pki.CertificateError, match="not issued by the tenant's CA"):
        pki.verify_leaf(_leaf(_ca("other")), _ca()[1], NOW)


def test_a_self_signed_leaf_naming_an_agent_does_not_verify() -> None:
    # Given a certificate that names an agent of acme but signs itself
    key = ec.generate_private_key(ec.SECP256R1())
    self_ca = (key, pki.self_signed_ca(key, "CA acme", now=NOW, serial=7))
    forged = _leaf(self_ca)

    with pytest.raises(pki.CertificateError):
        pki.verify_leaf(forged, _ca()[1], NOW)


def test_a_server_leaf_is_not_a_client_certificate() -> None:
    ca_key, ca_cert = _ca()
    spec = pki.LeafSpec(common_name=AGENT, serial=5, not_before=NOW, not_after=NOW + DAY,
                        uris=(pki.agent_uri("acme", AGENT),), server=True)
    leaf = pki.issue(ca_key, ca_cert, pki.new_key().public_key(), spec)

    with pytest.raises(pki.CertificateError, match="client authentication"):
        pki.verify_leaf(leaf, ca_cert, NOW)


def test_a_certificate_without_an_agent_name_is_refused() -> None:
    ca_key, ca_cert = _ca()
    spec = pki.LeafSpec(common_name="x", serial=5, not_before=NOW, not_after=NOW + DAY,
                        dns_names=("agent.example",))
    leaf = pki.issue(ca_key, ca_cert, pki.new_key().public_key(), spec)

    with pytest.raises(pki.CertificateError, match="names no agent"):
        pki.verify_leaf(leaf, ca_cert, NOW)


def test_not_a_certificate() -> None:
    with pytest.raises(pki.CertificateError):
        pki.load_cert("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# --- what API Gateway hands the handler ------------------------------------------------------

def test_client_cert_context_has_api_gateway_fields() -> None:
    ca = _ca()
    leaf = _leaf(ca)

    context = pki.client_cert_context(leaf)

    assert context["clientCertPem"].startswith("-----BEGIN CERTIFICATE-----")
    assert x509.load_pem_x509_certificate(context["clientCertPem"].encode()) == leaf
    assert context["subjectDN"] == f"CN={AGENT},O=acme"
    assert context["issuerDN"] == "CN=CA acme,O=Ampora"
    assert context["serialNumber"] == "04:d2"
    assert context["validity"] == {"notBefore": "Jan  5 08:55:00 2026 GMT",
                                   "notAfter": "Jan  6 09:00:00 2026 GMT"}
