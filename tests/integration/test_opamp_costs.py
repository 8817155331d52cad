"""What a steady-state heartbeat costs in DynamoDB: counted, not timed.

Every DynamoDB call pynamodb makes is counted (by wrapping its connection's
dispatch in this test only) while agents heartbeat with nothing new to say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.api import Api
from tests.support.opamp import Agent, post

READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class Calls:
    """DynamoDB calls by (operation, table)."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        self.seen.clear()

    def count(self, kinds: set[str], table: str | None = None) -> int:
        return sum(n for (op, name), n in self.seen.items()
                   if op in kinds and (table is None or name.endswith(table)))


@pytest.fixture
def calls(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    from pynamodb.connection.base import Connection

    from chalicelib.agents import service as agents
    from chalicelib.certificates import service as certificates

    agents.forget_cached()
    certificates.forget_cached()
    counted = Calls()
    original = Connection.dispatch

    def dispatch(self: Connection, operation_name: str, operation_kwargs: dict) -> Any:
        items = operation_kwargs.get("TransactItems") or [{}]
        for item in items:
            table = operation_kwargs.get("TableName") or next(
                (v.get("TableName", "") for v in item.values()), "")
            counted.seen[(operation_name, table)] += 1
        return original(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "dispatch", dispatch)
    yield counted


def _app() -> Any:
    import app

    return app.app


def _token(api: Api) -> str:
    return str(api.post("/api/tokens", {"name": "fleet", "maxUses": 5}).json["token"])


def _certificate(agent: Agent, token: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = csr
    reply = post(_app(), message.SerializeToString(), token=token).message
    return reply.connection_settings.opamp.certificate.cert.decode()


def test_certificate_heartbeat_costs_one_read_and_on_average_half_a_write(
        api: Api, calls: Calls, clock) -> None:
    # Given an agent that enrolled, reported its state and talks over mTLS
    agent = Agent()
    token = _token(api)
    post(_app(), agent.full_state(), token=token)
    cert = _certificate(agent, token)
    post(_app(), agent.heartbeat(), cert_pem=cert)  # warm: CA and interval cached
    # When it heartbeats every interval for ten intervals with nothing new
    heartbeats = 10
    calls.reset()
    for _ in range(heartbeats):
        clock.advance(seconds=30)
        assert post(_app(), agent.heartbeat(), cert_pem=cert).status == 200
    # Then each heartbeat read the agent item once and nothing else
    assert calls.count(READS) == heartbeats
    assert calls.count(READS, "agents") == heartbeats
    # And last-seen was written at most every other heartbeat, with no event
    assert calls.count(WRITES) <= heartbeats // 2
    assert calls.count({"TransactWriteItems"}) == 0


def test_heartbeat_within_an_interval_writes_nothing(api: Api, calls: Calls, clock) -> None:
    agent = Agent()
    token = _token(api)
    post(_app(), agent.full_state(), token=token)
    cert = _certificate(agent, token)
    post(_app(), agent.heartbeat(), cert_pem=cert)
    calls.reset()
    clock.advance(seconds=30)
    post(_app(), agent.heartbeat(), cert_pem=cert)
    assert (calls.count(READS), calls.count(WRITES)) == (1, 0)


def test_token_heartbeat_reads_only_the_agent(api: Api, calls: Calls, clock) -> None:
    # Given an agent that talks with its bootstrap token (no certificate)
    agent = Agent()
    token = _token(api)
    post(_app(), agent.full_state(), token=token)
    post(_app(), agent.heartbeat(), token=token)
    # When it heartbeats with nothing new, interval after interval
    heartbeats = 10
    calls.reset()
    for _ in range(heartbeats):
        clock.advance(seconds=30)
        assert post(_app(), agent.heartbeat(), token=token).status == 200
    # Then the agent item is the only read (the token is never read again), and last-seen
    # is written at most every other heartbeat
    assert (calls.count(READS), calls.count(READS, "agents")) == (heartbeats, heartbeats)
    assert calls.count(WRITES) <= heartbeats // 2
