"""Server-initiated certificate renewal over HTTP: an agent that talks with its leaf and accepts
OpAMP connection settings is offered a new leaf and key in the last third of the old one's
lifetime; the old leaf stays accepted until the agent shows the new one (or it expires), so a
lost answer locks no one out; a revoked agent gets nothing and is refused with either leaf."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.certificates import x509 as pki
from chalicelib.opamp.proto import opamp_pb2
from tests.integration.conftest import SteppedClock
from tests.support import opamp as support
from tests.support.api import Api
from tests.support.opamp import Agent, Reply, post

#: Into the last third of a 24-hour leaf.
DUE = {"hours": 16, "minutes": 1}


@pytest.fixture(autouse=True)
def fresh_caches(aws: None) -> Iterator[None]:
    from chalicelib.agents import service as agents
    from chalicelib.certificates import service as certificates
    from chalicelib.groups import service as groups

    agents.forget_cached()
    certificates.forget_cached()
    groups.forget_known()
    yield
    agents.forget_cached()
    certificates.forget_cached()


def send(body: bytes, **kwargs: Any) -> Reply:
    import app

    return post(app.app, body, **kwargs)


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


def certified(api: Api, tenant: str = "acme") -> tuple[Agent, str]:
    """An enrolled agent that asked for, and got, a client certificate."""
    answer = api.post("/api/tokens", {"name": "fleet"}, role="Operator", tenant=tenant)
    token = str(answer.json["token"])
    agent = Agent()
    assert send(agent.full_state(), token=token).status == 200
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = _csr()
    offered = send(message.SerializeToString(), token=token).message
    cert = offered.connection_settings.opamp.certificate.cert.decode()
    assert cert.startswith("-----BEGIN CERTIFICATE-----")
    return agent, cert


def heartbeat(agent: Agent, cert: str) -> Reply:
    return send(agent.heartbeat(), cert_pem=cert)


def offered(reply: Reply) -> opamp_pb2.TLSCertificate | None:
    """The certificate a successful answer offers, if any."""
    assert reply.status == 200, reply.body[:300]
    message = reply.message
    assert not message.HasField("error_response"), message.error_response.error_message
    certificate = message.connection_settings.opamp.certificate
    return certificate if certificate.cert else None


def renewed(agent: Agent, cert: str) -> opamp_pb2.TLSCertificate:
    certificate = offered(heartbeat(agent, cert))
    assert certificate is not None
    return certificate


def shown(api: Api, agent: Agent) -> dict[str, Any]:
    return dict(api.get(f"/api/agents/{agent.id}").json)


def serial(cert: str | bytes) -> str:
    return f"{pki.load_cert(cert).serial_number:x}"


def test_no_renewal_is_offered_before_the_last_third(api: Api, clock: SteppedClock) -> None:
    agent, cert = certified(api)
    clock.advance(hours=15)
    assert offered(heartbeat(agent, cert)) is None
    assert shown(api, agent)["certificate"]["serial"] == serial(cert)


def test_a_due_agent_is_offered_a_new_certificate_and_key_of_its_tenant_ca(
        api: Api, clock: SteppedClock) -> None:
    from chalicelib.certificates import service as certificates

    # Given an agent talking with its leaf, now in the last third of its lifetime
    agent, cert = certified(api)
    clock.advance(**DUE)

    # When it heartbeats over mTLS
    offer = renewed(agent, cert)

    # Then it gets a new leaf signed by the tenant CA, naming it, with a key that matches
    leaf = pki.load_cert(offer.cert)
    ca = pki.load_cert(offer.ca_cert)
    assert offer.ca_cert == certificates.ca_certificate("acme")
    leaf.verify_directly_issued_by(ca)
    assert pki.claimed_agent(leaf) == ("acme", agent.id)
    key = pki.load_key(offer.private_key)
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()
    assert leaf.not_valid_after_utc == clock.now() + certificates.lifetime()
    # And the agent shows the new serial
    assert shown(api, agent)["certificate"]["serial"] == serial(offer.cert)
    # And the new leaf works, and is not due for another renewal
    assert offered(heartbeat(agent, offer.cert.decode())) is None


def test_the_old_certificate_works_until_the_new_one_is_shown(api: Api,
                                                               clock: SteppedClock) -> None:
    # Given an agent that was offered a renewal whose answer it never received
    agent, old = certified(api)
    clock.advance(**DUE)
    lost = renewed(agent, old)

    # When it talks again with its old leaf, it is admitted and offered a new one again
    again = renewed(agent, old)
    assert again.cert != lost.cert
    new = again.cert.decode()

    # Then, once it shows the new leaf, the renewal is confirmed and the old one is refused
    assert offered(heartbeat(agent, new)) is None
    assert heartbeat(agent, old).status == 401
    assert heartbeat(agent, lost.cert.decode()).status == 401  # never delivered, never current
    assert offered(heartbeat(agent, new)) is None


def test_the_old_certificate_is_refused_once_it_expires(api: Api, clock: SteppedClock) -> None:
    agent, old = certified(api)
    clock.advance(**DUE)
    renewed(agent, old)
    new = renewed(agent, old).cert.decode()  # still accepted within its own lifetime

    clock.advance(hours=8)  # past the old leaf's expiry
    assert heartbeat(agent, old).status == 401
    assert heartbeat(agent, new).status == 200


def test_after_revocation_both_certificates_are_refused(api: Api, clock: SteppedClock) -> None:
    # Given an agent renewed, but not confirmed yet
    agent, old = certified(api)
    clock.advance(**DUE)
    new = renewed(agent, old).cert.decode()

    # When an operator revokes its certificate
    answer = api.post(f"/api/agents/{agent.id}/revoke-cert", role="Operator")
    assert answer.status == 200, answer.body

    # Then neither leaf is accepted, and no new one is offered
    assert heartbeat(agent, old).status == 401
    assert heartbeat(agent, new).status == 401
    assert shown(api, agent)["certificate"] == {**answer.json["certificate"]}
    assert shown(api, agent)["status"] == "revoked"


def test_an_agent_that_does_not_accept_connection_settings_is_offered_nothing(
        api: Api, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support, "CAPABILITIES", support.CAPABILITIES
                        & ~opamp_pb2.AgentCapabilities_AcceptsOpAMPConnectionSettings)
    agent, cert = certified(api)
    clock.advance(**DUE)

    assert offered(heartbeat(agent, cert)) is None
    assert shown(api, agent)["certificate"]["serial"] == serial(cert)


def test_an_agent_talking_with_its_token_is_not_renewed_by_the_server(
        api: Api, clock: SteppedClock) -> None:
    answer = api.post("/api/tokens", {"name": "fleet"}, role="Operator")
    token = str(answer.json["token"])
    agent = Agent()
    send(agent.full_state(), token=token)
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = _csr()
    cert = offered(send(message.SerializeToString(), token=token))
    assert cert is not None
    clock.advance(**DUE)

    assert offered(send(agent.heartbeat(), token=token)) is None


def test_issue_with_key_records_the_new_serial(api: Api) -> None:
    from chalicelib.certificates import service as certificates

    agent, cert = certified(api)
    issued = certificates.issue_with_key("acme", agent.id)

    assert issued.private_key_pem is not None
    assert b"PRIVATE KEY" in issued.private_key_pem
    assert issued.serial == serial(issued.cert_pem) != serial(cert)
    assert shown(api, agent)["certificate"]["serial"] == issued.serial
    # Issued without a presented leaf, so the old one is not kept
    assert heartbeat(agent, cert).status == 401
