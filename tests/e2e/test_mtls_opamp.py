"""End-to-end: an agent enrolls with a bootstrap token, sends a CSR, then talks OpAMP over
mutual TLS on the local HTTPS port, until an operator revokes its certificate.

Nothing is seeded: the agent's CSR creates its tenant's CA at runtime, and the
HTTPS port must trust it from the next handshake on.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.opamp.proto import opamp_pb2
from tests.e2e.conftest import LocalStack
from tests.support.opamp import Agent

pytestmark = pytest.mark.e2e
PROTOBUF = "application/x-protobuf"


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack on an empty state dir: no tenant has a CA yet."""
    stack = LocalStack(home=tmp_path_factory.mktemp("opamp-mtls") / ".ampora").start()
    try:
        yield stack
    finally:
        stack.stop()


def _opamp(stack: LocalStack, body: bytes, *, token: str | None = None,
           client: tuple[Path, Path] | None = None) -> tuple[int, bytes]:
    """One OpAMP POST: with a bearer token over HTTP, or with a certificate over HTTPS."""
    headers = {"Content-Type": PROTOBUF}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if client is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(
            "127.0.0.1", stack.port, timeout=30)
    else:
        context = ssl.create_default_context(cafile=str(stack.server_ca))
        context.load_cert_chain(certfile=str(client[0]), keyfile=str(client[1]))
        connection = http.client.HTTPSConnection("127.0.0.1", stack.mtls_port,
                                                 context=context, timeout=30)
    try:
        connection.request("POST", "/v1/opamp", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _csr(directory: Path) -> tuple[bytes, Path]:
    """A CSR and the file of its private key."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = directory / "agent-key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM), key_file


def _bootstrap_token(stack: LocalStack) -> str:
    reply = stack.call("POST", "/api/tokens", token=stack.dev_token("Operator"),
                       body={"name": "e2e-fleet"})
    assert reply.status == 201, reply.body
    return str(reply.json()["token"])


def _certified(stack: LocalStack, agent: Agent, directory: Path) -> tuple[Path, Path]:
    """Enroll ``agent`` with a bootstrap token, send its CSR; its (certificate, key) files."""
    token = _bootstrap_token(stack)
    assert _opamp(stack, agent.full_state(), token=token)[0] == 200
    csr, key_file = _csr(directory)
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = csr
    status, body = _opamp(stack, message.SerializeToString(), token=token)
    assert status == 200, body
    offered = opamp_pb2.ServerToAgent.FromString(body).connection_settings.opamp.certificate
    assert offered.cert.startswith(b"-----BEGIN CERTIFICATE-----"), body
    cert_file = directory / "agent.pem"
    cert_file.write_bytes(offered.cert)
    return cert_file, key_file


def _admitted(stack: LocalStack, agent: Agent, client: tuple[Path, Path]) -> bool:
    status, body = _opamp(stack, agent.heartbeat(), client=client)
    return status == 200 and not opamp_pb2.ServerToAgent.FromString(body).HasField(
        "error_response")


def test_csr_then_mtls_then_revocation(fresh_stack: LocalStack, tmp_path: Path) -> None:
    stack = fresh_stack
    agent = Agent()

    # Given an agent that enrolled with a bootstrap token and got a certificate for its CSR
    client = _certified(stack, agent, tmp_path)

    # When it talks over mutual TLS with that certificate alone
    admitted = _admitted(stack, agent, client)

    # Then the HTTPS port trusts the CA created moments ago, and the handler admits the agent
    assert admitted
    admin = stack.dev_token("Admin")
    shown = stack.call("GET", f"/api/agents/{agent.id}", token=admin).json()
    assert shown["certificate"]["revoked"] is False

    # When an operator revokes the certificate
    revoked = stack.call("POST", f"/api/agents/{agent.id}/revoke-cert",
                         token=stack.dev_token("Operator"))
    assert revoked.status == 200, revoked.body
    assert revoked.json()["status"] == "revoked"

    # Then the very next request with it is refused, though TLS still accepts the certificate
    assert _opamp(stack, agent.heartbeat(), client=client)[0] == 401


def test_a_certificate_still_works_after_a_restart(fresh_stack: LocalStack,
                                                   tmp_path: Path) -> None:
    # Given an agent with a certificate
    agent = Agent()
    client = _certified(fresh_stack, agent, tmp_path)
    assert _admitted(fresh_stack, agent, client)

    # When the local stack restarts
    assert fresh_stack.stop() == 0
    fresh_stack.start()

    # Then its tenant CA was kept (owner-only) and the HTTPS port still admits the agent
    assert (fresh_stack.home / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert _admitted(fresh_stack, agent, client)
