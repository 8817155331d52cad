"""OpAMP costs: DynamoDB calls per steady-state heartbeat (counted), and enrolling 1,000 agents.

1. In-process on moto, every DynamoDB call pynamodb makes is counted (by wrapping
   ``Connection.dispatch`` here only) while one agent heartbeats with nothing new,
   the app's clock and monotonic clock stepping by the heartbeat interval each
   time (so every in-process cache ages as it would in a warm Lambda container).
   Requests are API Gateway events through the app's handler, for an mTLS agent
   (certificate in ``requestContext.identity.clientCert``) and for an agent that
   keeps using its bootstrap token; alone in its container, and as one of ten
   agents of a tenant and group sharing a container (whose caches they share), with
   the group on a configuration version the agents applied.
2. ``ampora dev`` runs as a subprocess on a free port with a temp AMPORA_HOME, and
   ``ampora simulate --agents 1000 --rounds 1`` enrolls 1,000 agents with one
   bootstrap token; the wall time of that run is reported as agents per second.

Targets (issue 3): a steady heartbeat costs at most one read and far less than one write.
Each heartbeat reads its agent's item; what agents share (the tenant's interval, 5 minutes;
the group's desired version, 1 minute) is read once per container per cache period, so its
share per heartbeat shrinks with the agents a container serves. Last-seen is written every
second heartbeat: the least that keeps "online = seen within three intervals" true.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEARTBEATS = int(os.environ.get("BENCH_HEARTBEATS", "100"))
AGENTS = int(os.environ.get("BENCH_AGENTS", "1000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
SIMULATE_TIMEOUT = float(os.environ.get("BENCH_SIMULATE_TIMEOUT", "1800"))
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
TENANT = "bench"


# --- 1. DynamoDB calls per heartbeat, in-process on moto --------------------------------------

class SteppedClock:
    """Wall clock and monotonic clock that move only when told to."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self.ticks = 1_000.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.ticks += seconds


class Calls:
    """DynamoDB calls by (operation, table), counted at pynamodb's dispatch."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()

    def install(self) -> None:
        from pynamodb.connection.base import Connection

        original, seen = Connection.dispatch, self.seen

        def dispatch(conn: Connection, operation_name: str, operation_kwargs: dict) -> Any:
            for item in operation_kwargs.get("TransactItems") or [{}]:
                table = operation_kwargs.get("TableName") or next(
                    (v.get("TableName", "") for v in item.values()), "")
                seen[(operation_name, table)] += 1
            return original(conn, operation_name, operation_kwargs)

        Connection.dispatch = dispatch  # type: ignore[method-assign,assignment]

    def count(self, kinds: set[str]) -> int:
        return sum(n for (op, _), n in self.seen.items() if op in kinds)


def _isolated_env() -> None:
    """Settings for the in-process app (before any Ampora module reads them)."""
    for name in [k for k in os.environ if k.startswith(("AMPORA_", "AWS_"))]:
        del os.environ[name]
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "AMPORA_TABLE_PREFIX": "bench-", "AMPORA_OIDC_AUTHORITY": "https://idp.example.test",
        "AMPORA_OIDC_AUDIENCE": "ampora", "AMPORA_CURSOR_SECRET": "bench",
        "AMPORA_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_NAMESPACE": "Ampora"})
    sys.path.insert(0, str(ROOT))


def _bootstrap_token() -> str:
    from chalicelib.core.access import Principal, Role
    from chalicelib.enrollment import service as enrollment
    from chalicelib.enrollment.schemas import BootstrapTokenCreate
    from chalicelib.tenants import service as tenants

    tenants.ensure(TENANT)
    admin = Principal(tenant=TENANT, subject="bench", role=Role.ADMIN)
    return enrollment.create(admin, BootstrapTokenCreate(name="bench", max_uses=10)).token


def _csr() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def _configure_default_group() -> None:
    """Put the tenant's default group on a published configuration version."""
    from chalicelib.configurations import service as configurations
    from chalicelib.configurations.schemas import ConfigurationCreate, VersionCreate
    from chalicelib.core.access import Principal, Role
    from chalicelib.groups import service as groups

    admin = Principal(tenant=TENANT, subject="bench", role=Role.ADMIN)
    created, _ = configurations.create(admin, ConfigurationCreate(
        name="collector", content_type="application/yaml", file_name="collector.yaml"))
    configurations.save_version(admin, created.id, VersionCreate(
        content="receivers:\n  otlp: {}\n", message="bench"))
    configurations.publish(admin, created.id, 1, None)
    groups.set_desired_configuration(TENANT, "default", created.id, 1)


def _applied(agent: Any, credentials: dict[str, str], reply: Any) -> None:
    """The agent reports the configuration it was sent as applied."""
    import app
    from chalicelib.opamp.proto import opamp_pb2
    from tests.support.opamp import post

    status = opamp_pb2.RemoteConfigStatus(last_remote_config_hash=reply.config_hash,
                                          status=opamp_pb2.RemoteConfigStatuses_APPLIED)
    answer = post(app.app, agent.message(remote_config_status=status).SerializeToString(),
                  **credentials)
    assert answer.status == 200, answer.body


def _enroll(mtls: bool, configured: bool) -> tuple[Any, dict[str, str], int]:
    """One agent enrolled with a fresh bootstrap token (and, for mTLS, its certificate);
    with ``configured``, its group is on a configuration, which it reports applied."""
    import app
    from tests.support.opamp import Agent, post

    agent, token = Agent(), _bootstrap_token()
    first = post(app.app, agent.full_state(), token=token).message
    interval = first.connection_settings.opamp.heartbeat_interval_seconds
    assert interval > 0 and not first.HasField("error_response"), first
    if configured:
        _applied(agent, {"token": token}, first.remote_config)
    if not mtls:
        return agent, {"token": token}, interval
    message = agent.message()
    message.connection_settings_request.opamp.certificate_request.csr = _csr()
    offered = post(app.app, message.SerializeToString(), token=token).message
    cert = offered.connection_settings.opamp.certificate.cert.decode()
    assert cert.startswith("-----BEGIN CERTIFICATE"), offered
    return agent, {"cert_pem": cert}, interval


def _heartbeats(mtls: bool, fleet: int, configured: bool, clock: SteppedClock,
                calls: Calls) -> dict[str, Any]:
    """Enroll ``fleet`` agents of one tenant, warm up, then count HEARTBEATS rounds in which
    each agent heartbeats once and the clocks step by one interval."""
    import app
    from tests.support.opamp import post

    if configured:
        _bootstrap_token()  # the tenant exists
        _configure_default_group()
    enrolled = [_enroll(mtls, configured) for _ in range(fleet)]
    interval = enrolled[0][2]
    for round_ in range(2 + HEARTBEATS):
        if round_ == 2:  # warm: caches filled, last-seen fresh
            calls.seen.clear()
        clock.advance(interval)
        for agent, credentials, _ in enrolled:
            reply = post(app.app, agent.heartbeat(), **credentials)
            assert reply.status == 200 and not reply.message.flags, (reply.status, reply.body)
    return {"interval": interval, "heartbeats": HEARTBEATS * fleet, "seen": Counter(calls.seen)}


#: (label, mTLS?, agents of one tenant and group heartbeating through one warm container,
#: group on a configuration that its agents applied?)
SCENARIOS = (("mTLS agent", True, 1, False), ("bootstrap-token agent", False, 1, False),
             ("mTLS agent, configured", True, 1, True),
             ("mTLS, 10 agents, configured", True, 10, True),
             ("token, 10 agents, configured", False, 10, True))


def heartbeat_costs() -> dict[str, dict[str, Any]]:
    """Counted DynamoDB calls per heartbeat for mTLS and bootstrap-token agents."""
    _isolated_env()
    from moto import mock_aws

    import app  # noqa: F401 - registers every model and route
    from chalicelib.agents import service as agents
    from chalicelib.bootstrap import all_models, bootstrap
    from chalicelib.certificates import service as certificates
    from chalicelib.configurations import delivery
    from chalicelib.core.db import create_tables
    from chalicelib.groups import desired
    from chalicelib.groups import service as groups
    from chalicelib.tenants import service as tenants

    results: dict[str, dict[str, Any]] = {}
    calls = Calls()
    calls.install()
    for name, mtls, fleet, configured in SCENARIOS:
        with mock_aws():
            create_tables(all_models())
            for forget in (tenants.forget_known, groups.forget_known, agents.forget_cached,
                           certificates.forget_cached, desired.forget,
                           delivery.forget_deliveries):
                forget()
            clock = SteppedClock()
            bootstrap(clock=clock, monotonic=clock.monotonic)
            results[name] = _heartbeats(mtls, fleet, configured, clock, calls)
    bootstrap()
    return results


def _report_costs(results: dict[str, dict[str, Any]]) -> None:
    print(f"DynamoDB calls per steady-state heartbeat (counted over {HEARTBEATS} heartbeats "
          "per agent, clocks stepping by the heartbeat interval)")
    for name, result in results.items():
        seen: Counter[tuple[str, str]] = result["seen"]
        beats = result["heartbeats"]
        reads = sum(n for (op, _), n in seen.items() if op in READS)
        writes = sum(n for (op, _), n in seen.items() if op in WRITES)
        print(f"  {name:<24} reads/heartbeat {reads / beats:5.2f}   "
              f"writes/heartbeat {writes / beats:5.2f}   "
              f"({beats} heartbeats, interval {result['interval']} s)")
        for (op, table), n in sorted(seen.items()):
            print(f"      {op:<18} {table:<28} {n / beats:5.2f}/heartbeat")


# --- 2. Enrolling 1,000 simulated agents on the local stack ----------------------------------

def enroll_fleet() -> dict[str, Any]:
    """Start ``ampora dev``, mint a token for AGENTS agents, time ``ampora simulate``."""
    from tests.e2e.conftest import LocalStack

    with tempfile.TemporaryDirectory(prefix="ampora-bench-") as tmp:
        stack = LocalStack(home=Path(tmp) / ".ampora").start()
        try:
            admin = stack.dev_token("Admin")
            created = stack.call("POST", "/api/tokens", token=admin,
                                 body={"name": "bench-fleet", "maxUses": AGENTS})
            assert created.status == 201, created.body
            command = [*_ampora(), "simulate", "--agents", str(AGENTS), "--token",
                       created.json()["token"], "--url", f"{stack.url}/v1/opamp",
                       "--rounds", "1", "--concurrency", str(CONCURRENCY)]
            print(f"enrolling {AGENTS} agents on {stack.url} ...", flush=True)
            started = time.perf_counter()
            done = subprocess.run(command, env=stack.env(), capture_output=True, text=True,
                                  timeout=SIMULATE_TIMEOUT, check=False)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"ampora simulate failed ({done.returncode}):\n"
                                 f"{done.stdout}{done.stderr}\n{stack.output()[-3000:]}")
            listed = stack.call("GET", "/api/agents?limit=1", token=admin)
            assert listed.status == 200, listed.body
            total = int(listed.headers["X-Total-Count"])
            online = int(stack.call("GET", "/api/agents?limit=1&status=online",
                                    token=admin).headers["X-Total-Count"])
        finally:
            stack.stop()
    if total != AGENTS:
        raise SystemExit(f"GET /api/agents counts {total} agents, expected {AGENTS}")
    return {"seconds": seconds, "total": total, "online": online,
            "summary": done.stdout.strip()}


def _ampora() -> list[str]:
    script = Path(sys.executable).with_name("ampora")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chalicelib.cli.main"]


def _report_fleet(result: dict[str, Any]) -> None:
    seconds = result["seconds"]
    print(f"Enrolling {AGENTS} simulated agents on the local stack (ampora dev, moto; "
          f"ampora simulate --rounds 1 --concurrency {CONCURRENCY})")
    print(f"  simulate: {result['summary']}")
    print(f"  wall time {seconds:6.2f} s   {AGENTS / seconds:7.1f} agents/second   "
          f"(GET /api/agents X-Total-Count = {result['total']}, online = {result['online']})")


def main() -> None:
    """Run both measurements and print their figures."""
    costs = heartbeat_costs()
    _report_costs(costs)
    print(flush=True)
    _report_fleet(enroll_fleet())


if __name__ == "__main__":
    main()
