"""End-to-end: the local stack's HTTPS port accepts client certificates of a tenant CA only.

The tenant CA is made by the certificates room itself (over moto, in this process)
and saved as the local stack keeps its secrets, so the stack starts with it, as
after a restart. Agents get their leaves over OpAMP; here the test signs them.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.certificates import authority
from chalicelib.certificates import x509 as pki
from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e
AGENT = "0123456789abcdef0123456789abcdef"
DISCOVERY = "/local-oidc/.well-known/openid-configuration"


def _seed_ca(home: Path, tenant: str) -> authority.Authority:
    """Create the tenant's CA as the app does and save it where the local stack restores from."""
    from chalicelib.local import secrets

    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        made = authority.CaStore("local", lambda: client).get_or_create(tenant)
        secrets.save(client, home)
    return made


@pytest.fixture(scope="module")
def acme_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Any]]:
    """A stack whose tenant ``acme`` already has a CA."""
    home = tmp_path_factory.mktemp("mtls") / ".ampora"
    ca = _seed_ca(home, "acme")
    stack = LocalStack(home=home).start()
    try:
        yield stack, ca
    finally:
        stack.stop()


def _leaf_files(directory: Path, ca_key: Any, ca_cert: Any, *, tenant: str = "acme",
                now: datetime | None = None, lifetime: timedelta = timedelta(hours=1)
                ) -> tuple[Path, Path]:
    """A client key and leaf for an agent of ``tenant``, signed by the given CA."""
    now = now or datetime.now(UTC)
    key = pki.new_key()
    spec = pki.agent_leaf_spec(tenant, AGENT, serial=pki.serial_from(b"\x42" * 20), now=now,
                               lifetime=lifetime, ca_not_after=ca_cert.not_valid_after_utc)
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "agent.pem", directory / "agent-key.pem"
    cert_file.write_bytes(pki.cert_pem(pki.issue(ca_key, ca_cert, key.public_key(), spec)))
    key_file.write_bytes(pki.key_pem(key))
    return cert_file, key_file


def _get(stack: LocalStack, path: str, client: tuple[Path, Path] | None = None
         ) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(stack.server_ca))
    if client is not None:
        context.load_cert_chain(certfile=str(client[0]), keyfile=str(client[1]))
    connection = http.client.HTTPSConnection("127.0.0.1", stack.mtls_port, context=context,
                                             timeout=20)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_leaf_of_the_tenant_ca_is_accepted(acme_ca: tuple[LocalStack, Any],
                                             tmp_path: Path) -> None:
    stack, ca = acme_ca
    leaf = _leaf_files(tmp_path, ca.key, ca.cert)

    status, body = _get(stack, DISCOVERY, leaf)

    assert status == 200
    assert json.loads(body)["issuer"].startswith("http://127.0.0.1:")


def test_the_mtls_port_serves_the_app(acme_ca: tuple[LocalStack, Any], tmp_path: Path) -> None:
    stack, ca = acme_ca
    status, body = _get(stack, "/api/tenant", _leaf_files(tmp_path, ca.key, ca.cert))

    assert status == 401  # the app answered: an operator route still needs a bearer token
    assert json.loads(body)["type"].endswith("/errors/unauthorized")


def test_no_certificate_is_allowed_for_enrollment(acme_ca: tuple[LocalStack, Any]) -> None:
    stack, _ = acme_ca
    assert _get(stack, DISCOVERY)[0] == 200


def _refused(stack: LocalStack, leaf: tuple[Path, Path]) -> bool:
    try:
        _get(stack, DISCOVERY, leaf)
    except (OSError, http.client.HTTPException):
        return True
    return False


def test_a_leaf_of_another_ca_is_refused(acme_ca: tuple[LocalStack, Any], tmp_path: Path) -> None:
    stack, _ = acme_ca
    key = pki.new_key()
    stranger = pki.self_signed_ca(key, "Ampora agent CA (acme)", now=datetime.now(UTC), serial=3)

    assert _refused(stack, _leaf_files(tmp_path, key, stranger))


def test_a_self_signed_certificate_is_refused(acme_ca: tuple[LocalStack, Any],
                                              tmp_path: Path) -> None:
    stack, _ = acme_ca
    key = pki.new_key()
    self_signed = pki.self_signed_ca(key, AGENT, now=datetime.now(UTC), serial=4)
    cert_file, key_file = tmp_path / "self.pem", tmp_path / "self-key.pem"
    cert_file.write_bytes(pki.cert_pem(self_signed))
    key_file.write_bytes(pki.key_pem(key))

    assert _refused(stack, (cert_file, key_file))


def test_an_expired_leaf_of_the_tenant_ca_is_refused(acme_ca: tuple[LocalStack, Any],
                                                     tmp_path: Path) -> None:
    stack, ca = acme_ca
    long_ago = datetime.now(UTC) - timedelta(days=2)
    expired = _leaf_files(tmp_path, ca.key, ca.cert, now=long_ago, lifetime=timedelta(hours=1))

    assert _refused(stack, expired)
