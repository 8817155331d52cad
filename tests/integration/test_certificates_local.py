"""The local stack's side of certificates: its HTTPS port trusts each tenant CA as it appears,
and the CAs are kept on disk across restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import CertificateSigningRequestBuilder, Name

from chalicelib.certificates import authority, service
from chalicelib.local import mtls, secrets

AGENT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def local(aws: None) -> Iterator[None]:
    """Fresh AWS, nothing cached, and no listener left behind by the test."""
    service.forget_cached()
    before = list(authority._listeners)
    yield
    authority._listeners[:] = before
    service.forget_cached()


def _csr() -> bytes:
    csr = CertificateSigningRequestBuilder().subject_name(Name([])).sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def _sign(tenant: str) -> service.Issued:
    from chalicelib.agents import service as agents
    from chalicelib.agents.observation import Enrollment, Observation

    agents.check_in(tenant, AGENT, Observation(sequence_num=0, capabilities=1),
                    Enrollment(token_id="t1", group_id="default"))
    return service.sign_csr(tenant, AGENT, _csr())


def test_the_https_port_trusts_a_tenant_ca_from_the_moment_it_is_created(
        local: None, tmp_path: Path) -> None:
    # Given the HTTPS port, before any tenant has a CA
    trust = mtls.client_trust(tmp_path)
    assert trust.context.get_ca_certs() == []

    # When an agent's CSR creates acme's CA
    issued = _sign("acme")

    # Then the port trusts that CA for the next handshake
    assert trust.known == {issued.ca_pem}
    assert len(trust.context.get_ca_certs()) == 1


def test_existing_cas_are_trusted_at_start(local: None, tmp_path: Path) -> None:
    issued = _sign("acme")
    service.forget_cached()  # a new process

    trust = mtls.client_trust(tmp_path)

    assert trust.known == {issued.ca_pem}


def test_a_new_ca_is_saved_and_restored_after_a_restart(local: None, tmp_path: Path) -> None:
    # Given the local stack saves secrets when a CA is created
    client = boto3.client("secretsmanager", region_name="us-east-1")
    authority.on_authority(secrets.keep_on_change(client, tmp_path))
    issued = _sign("acme")
    assert (tmp_path / secrets.SECRETS_FILE).stat().st_mode & 0o777 == 0o600

    # When the stack restarts on fresh (empty) AWS and restores them
    client.delete_secret(SecretId="ampora/dev/ca/acme", ForceDeleteWithoutRecovery=True)
    service.forget_cached()
    assert secrets.restore(client, tmp_path) == 1

    # Then the same CA is there
    assert service.ca_certificate("acme") == issued.ca_pem


def test_the_server_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    first = mtls.server_certificate(tmp_path)
    pem = first.cert.read_bytes()

    again = mtls.server_certificate(tmp_path)

    assert again.cert.read_bytes() == pem
    assert first.key.stat().st_mode & 0o777 == 0o600
    assert first.ca_key.stat().st_mode & 0o777 == 0o600
