"""What the local HTTPS port hands the handler: API Gateway's mutual-TLS request context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from chalicelib.certificates import x509 as pki
from chalicelib.local.events import HttpRequest, Invocation, build_event
from chalicelib.local.mtls import client_cert_context
from chalicelib.local.routing import Match

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
AGENT = "0123456789abcdef0123456789abcdef"
OPAMP = Match(template="/v1/opamp", params={}, methods=frozenset({"POST"}))


def _leaf_der() -> bytes:
    key = pki.new_key()
    ca = pki.self_signed_ca(key, "CA acme", now=NOW, serial=7)
    spec = pki.agent_leaf_spec("acme", AGENT, serial=0xABCDEF, now=NOW,
                               lifetime=timedelta(hours=24), ca_not_after=ca.not_valid_after_utc)
    leaf = pki.issue(key, ca, pki.new_key().public_key(), spec)
    return leaf.public_bytes(serialization.Encoding.DER)


def test_a_request_with_a_client_certificate_carries_it_as_api_gateway_does() -> None:
    # Given a request on the HTTPS port with a verified client certificate
    request = HttpRequest(method="POST", path="/v1/opamp", body=b"\x0a\x10")
    invocation = Invocation(request_id="r1", epoch_ms=0, host="127.0.0.1:8443", port=8443,
                            scheme="https", client_cert=client_cert_context(_leaf_der()))

    # When the gateway builds the event
    event = build_event(request, OPAMP, invocation)

    # Then the handler finds the certificate where API Gateway's mTLS domain puts it
    cert = event["requestContext"]["identity"]["clientCert"]
    assert set(cert) == {"clientCertPem", "subjectDN", "issuerDN", "serialNumber", "validity"}
    assert pki.claimed_agent(pki.load_cert(cert["clientCertPem"])) == ("acme", AGENT)
    assert cert["serialNumber"] == "ab:cd:ef"
    assert cert["subjectDN"] == f"CN={AGENT},O=acme"
    assert set(cert["validity"]) == {"notBefore", "notAfter"}
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["headers"]["X-Forwarded-Port"] == "8443"


def test_a_request_without_a_certificate_has_no_client_cert() -> None:
    request = HttpRequest(method="POST", path="/v1/opamp")
    event = build_event(request, OPAMP, Invocation(request_id="r1", epoch_ms=0))

    assert "clientCert" not in event["requestContext"]["identity"]
    assert event["headers"]["X-Forwarded-Proto"] == "http"


def test_the_https_port_is_8443_unless_configured(tmp_path: Path) -> None:
    from chalicelib.local.config import LocalConfig, LocalConfigError

    home = str(tmp_path)
    assert LocalConfig.from_env(env={"AMPORA_HOME": home}).mtls_port == 8443
    configured = LocalConfig.from_env(env={"AMPORA_HOME": home, "AMPORA_MTLS_PORT": "9443"})
    assert configured.mtls_url == "https://127.0.0.1:9443"
    with pytest.raises(LocalConfigError):
        LocalConfig.from_env(env={"AMPORA_HOME": home, "AMPORA_MTLS_PORT": "70000"})
