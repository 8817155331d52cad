"""Certificates over moto: one CA per tenant in Secrets Manager, signing CSRs, identifying leaves,
and revoking an agent's leaf over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.certificates import authority, service
from chalicelib.certificates import x509 as pki
from chalicelib.core.problems import BadRequest, InvalidToken
from tests.integration.conftest import SteppedClock
from tests.support.api import Api

AGENT = "0123456789abcdef0123456789abcdef"
OTHER_AGENT = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def certs(aws: None) -> Iterator[None]:
    """Fresh AWS and a process that has not met any CA yet."""
    service.forget_cached()
    yield
    service.forget_cached()


def _enroll(tenant: str, agent_id: str) -> None:
    """An agent enrolled with a bootstrap token, as its first OpAMP message does."""
    from chalicelib.agents import service as agents
    from chalicelib.agents.observation import Enrollment, Observation

    agents.check_in(tenant, agent_id, Observation(sequence_num=0, capabilities=1),
                    Enrollment(token_id="t1", group_id="default"))


def _csr(key: Any | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def _secrets() -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1")


def _secret_names() -> list[str]:
    return [s["Name"] for s in _secrets().list_secrets()["SecretList"]]


def _agent(tenant: str, agent_id: str) -> dict[str, Any]:
    from chalicelib.agents import service as agents

    return dict(agents.get(tenant, agent_id).to_wire())


# --- the CA ------------------------------------------------------------------------------------

def test_the_ca_is_created_on_first_use_and_kept_in_secrets_manager(certs: None) -> None:
    # Given a tenant without a CA
    assert service.ca_certificate("acme") is None

    # When an agent's CSR is signed
    _enroll("acme", AGENT)
    issued = service.sign_csr("acme", AGENT, _csr())

    # Then the tenant's CA is one secret, holding the key the API never returns
    assert _secret_names() == ["ampora/dev/ca/acme"]
    stored = json.loads(_secrets().get_secret_value(SecretId="ampora/dev/ca/acme")["SecretString"])
    assert stored["certificate"].encode() == issued.ca_pem
    assert "PRIVATE KEY" in stored["privateKey"]
    assert b"PRIVATE KEY" not in issued.ca_pem + issued.cert_pem


def test_another_process_reads_the_same_ca(certs: None) -> None:
    # Given a CA made by one process
    _enroll("acme", AGENT)
    first = service.sign_csr("acme", AGENT, _csr())

    # When another process (nothing cached) signs for the same tenant
    service.forget_cached()
    second = service.sign_csr("acme", AGENT, _csr())

    # Then it used the stored CA
    assert second.ca_pem == first.ca_pem
    assert _secret_names() == ["ampora/dev/ca/acme"]


class _RacingClient:
    """A Secrets Manager client of one "process": both processes miss the CA, then both create."""

    def __init__(self, client: Any, lock: threading.Lock, barrier: threading.Barrier) -> None:
        self._client, self._lock, self._barrier = client, lock, barrier
        self.missed = False

    def get_secret_value(self, **kwargs: Any) -> Any:
        try:
            with self._lock:
                return self._client.get_secret_value(**kwargs)
        except self._client.exceptions.ResourceNotFoundException:
            if not self.missed:
                self.missed = True
                self._barrier.wait(timeout=10)  # the other process has missed too
            raise

    def create_secret(self, **kwargs: Any) -> Any:
        with self._lock:  # moto is not thread-safe; the race is in the order, not the bytes
            return self._client.create_secret(**kwargs)


def test_two_racing_first_uses_end_with_one_ca(certs: None) -> None:
    # Given two processes that both find no CA for the tenant
    lock, barrier, real = threading.Lock(), threading.Barrier(2), _secrets()
    clients = [_RacingClient(real, lock, barrier) for _ in range(2)]
    stores = [authority.CaStore("dev", lambda c=c: c) for c in clients]
    found: list[bytes] = []

    # When both create it at once
    threads = [threading.Thread(target=lambda s=s: found.append(s.get_or_create("acme").cert_pem))
               for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    # Then there is one CA, and both use it
    assert all(c.missed for c in clients)
    assert len(found) == 2 and found[0] == found[1]
    assert _secret_names() == ["ampora/dev/ca/acme"]
    stored = json.loads(real.get_secret_value(SecretId="ampora/dev/ca/acme")["SecretString"])
    assert stored["certificate"].encode() == found[0]


def test_each_tenant_has_its_own_ca(certs: None) -> None:
    _enroll("acme", AGENT)
    _enroll("globex", AGENT)

    acme = service.sign_csr("acme", AGENT, _csr())
    globex = service.sign_csr("globex", AGENT, _csr())

    assert acme.ca_pem != globex.ca_pem
    assert sorted(_secret_names()) == ["ampora/dev/ca/acme", "ampora/dev/ca/globex"]
    assert sorted(service.ca_certificates()) == sorted([acme.ca_pem, globex.ca_pem])


# --- signing -----------------------------------------------------------------------------------

def test_a_signed_leaf_names_the_agent_and_is_recorded_on_it(certs: None,
                                                              clock: SteppedClock) -> None:
    # Given an enrolled agent
    _enroll("acme", AGENT)

    # When its CSR is signed
    issued = service.sign_csr("acme", AGENT, _csr())

    # Then the leaf chains to the CA, names the agent, lives 24 hours, and the agent shows it
    leaf = x509.load_pem_x509_certificate(issued.cert_pem)
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(issued.ca_pem))
    assert pki.claimed_agent(leaf) == ("acme", AGENT)
    assert issued.not_after == clock.now() + timedelta(hours=24)
    assert issued.serial == f"{leaf.serial_number:x}"
    certificate = _agent("acme", AGENT)["certificate"]
    assert certificate["serial"] == issued.serial
    assert certificate["revoked"] is False


def test_serials_differ_between_leaves(certs: None) -> None:
    _enroll("acme", AGENT)
    serials = {service.sign_csr("acme", AGENT, _csr()).serial for _ in range(3)}
    assert len(serials) == 3


def test_a_bad_csr_is_a_bad_request_and_creates_no_ca(certs: None) -> None:
    _enroll("acme", AGENT)
    with pytest.raises(BadRequest, match="not a PEM CSR"):
        service.sign_csr("acme", AGENT, b"garbage")
    assert _secret_names() == []


# --- identifying -------------------------------------------------------------------------------

def _issued(tenant: str = "acme", agent_id: str = AGENT) -> service.Issued:
    _enroll(tenant, agent_id)
    return service.sign_csr(tenant, agent_id, _csr())


def test_identify_accepts_a_leaf_of_the_tenant_ca(certs: None) -> None:
    issued = _issued()
    service.forget_cached()  # a fresh process verifies against the stored CA

    assert service.identify(issued.cert_pem.decode()) == ("acme", AGENT, issued.serial)


def _forged_for_acme(ca_key: Any, ca_cert: x509.Certificate, clock: SteppedClock) -> str:
    spec = pki.agent_leaf_spec("acme", OTHER_AGENT, serial=99, now=clock.now(),
                               lifetime=timedelta(hours=24),
                               ca_not_after=ca_cert.not_valid_after_utc)
    leaf = pki.issue(ca_key, ca_cert, pki.new_key().public_key(), spec)
    return pki.cert_pem(leaf).decode()


def test_identify_refuses_a_leaf_of_another_tenants_ca(certs: None, clock: SteppedClock) -> None:
    # Given acme's CA exists, and globex's CA signs a leaf that claims an acme agent
    _issued("acme")
    _issued("globex")
    globex = authority.store().get_or_create("globex")
    forged = _forged_for_acme(globex.key, globex.cert, clock)

    with pytest.raises(InvalidToken, match="not issued by the tenant's CA"):
        service.identify(forged)


def test_identify_refuses_a_self_signed_leaf(certs: None, clock: SteppedClock) -> None:
    _issued("acme")
    key = pki.new_key()
    ca = pki.self_signed_ca(key, "Ampora agent CA (acme)", now=clock.now(), serial=1)

    with pytest.raises(InvalidToken):
        service.identify(_forged_for_acme(key, ca, clock))


def test_identify_refuses_an_expired_leaf(certs: None, clock: SteppedClock) -> None:
    # Given a leaf that was accepted
    issued = _issued()
    assert service.identify(issued.cert_pem.decode())[1] == AGENT

    # When its 24 hours are over
    clock.advance(hours=24, seconds=1)

    # Then it is refused, even by the process that verified it before
    with pytest.raises(InvalidToken, match="not valid at this time"):
        service.identify(issued.cert_pem.decode())


def test_identify_refuses_a_leaf_naming_a_tenant_without_ca(certs: None,
                                                            clock: SteppedClock) -> None:
    key = pki.new_key()
    ca = pki.self_signed_ca(key, "CA", now=clock.now(), serial=1)

    with pytest.raises(InvalidToken, match="no certificate authority"):
        service.identify(_forged_for_acme(key, ca, clock))
    assert _secret_names() == []  # identifying never creates a CA


@pytest.mark.parametrize("pem", ["", "garbage", "-----BEGIN CERTIFICATE-----\nAA\n"
                                 "-----END CERTIFICATE-----\n"])
def test_identify_refuses_what_is_not_a_certificate(certs: None, pem: str) -> None:
    with pytest.raises(InvalidToken):
        service.identify(pem)


def test_renewal_is_due_in_the_last_third(certs: None, clock: SteppedClock) -> None:
    issued = _issued()

    assert not service.needs_renewal(issued.not_after, clock.now())
    clock.advance(hours=16, seconds=1)
    assert service.needs_renewal(issued.not_after, clock.now())


# --- revoking over HTTP ------------------------------------------------------------------------

def test_an_operator_revokes_the_agent_certificate(api: Api) -> None:
    # Given an agent holding a certificate
    service.forget_cached()
    issued = _issued()

    # When an operator revokes it
    answer = api.post(f"/api/agents/{AGENT}/revoke-cert", role="Operator")

    # Then the agent shows as revoked, and an agent.revoked event is recorded
    assert answer.status == 200, answer.body
    assert answer.json["status"] == "revoked"
    assert answer.json["certificate"]["serial"] == issued.serial
    assert answer.json["certificate"]["revoked"] is True
    assert _agent("acme", AGENT)["status"] == "revoked"
    assert "agent.revoked" in _event_types("acme")


def _event_types(tenant: str) -> list[str]:
    from chalicelib.core.events import EventRecord

    return [e.envelope["type"] for e in EventRecord.query(tenant)]


def test_a_viewer_may_not_revoke(api: Api) -> None:
    service.forget_cached()
    _issued()
    answer = api.post(f"/api/agents/{AGENT}/revoke-cert", role="Viewer")
    assert answer.status == 403
    assert _agent("acme", AGENT)["certificate"]["revoked"] is False


def test_another_tenant_cannot_revoke_by_id(api: Api) -> None:
    service.forget_cached()
    _issued("acme")
    answer = api.post(f"/api/agents/{AGENT}/revoke-cert", role="Operator", tenant="globex")
    assert answer.status == 404
    assert _agent("acme", AGENT)["certificate"]["revoked"] is False


def test_revoking_an_unknown_agent_is_404(api: Api) -> None:
    assert api.post(f"/api/agents/{AGENT}/revoke-cert", role="Operator").status == 404
