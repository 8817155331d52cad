"""``ampora dev``: the whole system on one machine, with no AWS account.

Order matters: moto starts and the settings' environment is set before the app
(and so any pynamodb connection) is imported; then every table is created and
the last snapshot restored; then the gateway listens. State is saved shortly
after each call, and once more on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from chalicelib.local import oidc, state, tables
from chalicelib.local.config import LocalConfig

#: How long after a call its changes may wait before they are on disk (at least).
AUTOSAVE_SECONDS = 1.0
#: The most of the time that saving may hold the handlers (a large state saves less often).
SAVE_SHARE = 0.1
#: How often the events table's stream is read for the live-updates hub.
STREAM_POLL_SECONDS = 0.2
log = logging.getLogger("ampora.local")
#: A token in a query string (websocket clients connect with ``?access_token=``).
_QUERY_TOKEN = re.compile(r"(access_token=)[^&\s]+")


class _HideQueryTokens(logging.Filter):
    """The access log shows ``access_token=...`` of a websocket upgrade as ``...=<hidden>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _QUERY_TOKEN.sub(r"\1<hidden>", str(record.msg))
        return True


def prepare_environment(config: LocalConfig, env: Any = None) -> None:
    """Point settings and the AWS SDK at the local stack (fake credentials, local issuer)."""
    env = os.environ if env is None else env
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AMPORA_CURSOR_SECRET_ARN"):
        env.pop(name, None)
    env.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_SECURITY_TOKEN": "testing",
        "AMPORA_LOCAL": "1", "AMPORA_OIDC_AUTHORITY": config.authority,
        "AMPORA_CURSOR_SECRET": state.cursor_secret(config.home),
    })
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    env.setdefault("AMPORA_STAGE", "local")
    env.setdefault("AMPORA_TABLE_PREFIX", "ampora-local-")
    env.setdefault("AMPORA_OIDC_AUDIENCE", "ampora")


class Snapshots:
    """Keeps the tables on disk: restored at start, saved soon after changes and at exit."""

    def __init__(self, home: Path, table_names: list[str], lock: Any) -> None:
        self.home = home
        self.table_names = table_names
        self.lock = lock
        self.dirty = False
        self._client: Any = None

    def client(self) -> Any:
        """The DynamoDB client (moto's, as the mock is active), built once."""
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def restore(self) -> int:
        """Load the last snapshot; an unreadable one is set aside, never deleted."""
        try:
            snapshot = tables.read_snapshot(self.home)
        except ValueError as exc:
            aside = self.home / f"{tables.SNAPSHOT_FILE}.unreadable-{int(time.time())}"
            (self.home / tables.SNAPSHOT_FILE).rename(aside)
            log.warning("snapshot unreadable (%s); moved to %s, starting empty", exc, aside)
            return 0
        loaded, skipped = tables.restore(self.client(), snapshot, self.table_names)
        if skipped:
            log.warning("snapshot tables no model declares, not loaded: %s", ", ".join(skipped))
        return loaded

    def mark_dirty(self) -> None:
        """Note that a call may have changed state."""
        self.dirty = True

    def save(self) -> int:
        """Write the snapshot now (under the handlers' lock); the number of items saved."""
        self.dirty = False
        with self.lock:
            return tables.save(self.client(), self.table_names, self.home)

    async def autosave(self) -> None:
        """Save shortly after changes, so a crash loses at most a moment of work.

        A save holds the handlers, and takes longer as the state grows: the pause between
        saves grows with it, so that saving holds them at most :data:`SAVE_SHARE` of the time.
        """
        pause = AUTOSAVE_SECONDS
        while True:
            await asyncio.sleep(pause)
            if self.dirty:
                started = time.monotonic()
                await asyncio.to_thread(self._save_logged)
                took = time.monotonic() - started
                pause = max(AUTOSAVE_SECONDS, took * (1 - SAVE_SHARE) / SAVE_SHARE)

    def _save_logged(self) -> None:
        try:
            self.save()
        except Exception:
            self.dirty = True
            log.exception("could not save the local state")


def start_aws() -> Any:
    """Start moto for every AWS service (before anything builds a client)."""
    from moto import mock_aws

    from chalicelib.local import transactions
    from chalicelib.local.stepfunctions import MOTO_CONFIG

    mock = mock_aws(config=MOTO_CONFIG)
    mock.start()
    transactions.install()
    return mock


def load_app() -> Any:
    """Import the Chalice app (``app.app``), after the environment is prepared."""
    return importlib.import_module("app").app


def banner(config: LocalConfig, restored: int) -> str:
    """What ``ampora dev`` prints once it listens: the URL and how to get a token."""
    from chalicelib.live.routes import HUB_PATH

    port_flag = "" if config.port == 8000 else f" --port {config.port}"
    ws_url = config.base_url.replace("http://", "ws://", 1) + HUB_PATH
    return "\n".join([
        f"Ampora local stack on {config.base_url}",
        f"  state:        {config.home} ({restored} items restored)",
        f"  get a token:  TOKEN=$(ampora dev-token --role Admin{port_flag})",
        f'  call the API: curl -H "Authorization: Bearer $TOKEN" {config.base_url}/api/tenant',
        f"  Swagger UI:   {config.base_url}/swagger",
        f"  live updates: {ws_url}?access_token=$TOKEN",
        f"  agents, mTLS: {config.mtls_url}/v1/opamp (server CA: {config.home}/tls/ca.pem)",
        "Press Ctrl-C to stop; state is kept for the next start.",
    ])


async def _listen(config: LocalConfig, gateway: Any, snapshots: Snapshots,
                  restored: int, tls: Any = None, stream: Any = None) -> None:
    from aiohttp import web

    runner = web.AppRunner(gateway.web_app(), access_log_format='%r %s %b %Tfs')
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.port).start()
    await web.TCPSite(runner, "127.0.0.1", config.mtls_port, ssl_context=tls).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(banner(config, restored), flush=True)
    background = [asyncio.create_task(snapshots.autosave())]
    if stream is not None:
        background.append(asyncio.create_task(stream.follow(
            gateway.worker.run, STREAM_POLL_SECONDS, snapshots.mark_dirty)))
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        await runner.cleanup()


def serve(config: LocalConfig) -> int:
    """Run the local stack until Ctrl-C or SIGTERM; the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("botocore", "boto3", "moto", "urllib3", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").addFilter(_HideQueryTokens())
    try:
        state.hold_lock(config.home)
    except state.StateInUse as exc:
        print(f"ampora dev: {exc}", file=sys.stderr)
        return 1
    prepare_environment(config)
    mock = start_aws()
    try:
        return _run(config)
    finally:
        mock.stop()


def _mutual_tls(config: LocalConfig) -> Any:
    """The HTTPS port's TLS context, trusting every tenant CA (kept across restarts)."""
    import boto3

    from chalicelib.certificates.authority import on_authority
    from chalicelib.local import mtls, secrets

    client = boto3.client("secretsmanager")
    secrets.restore(client, config.home)
    on_authority(secrets.keep_on_change(client, config.home))
    return mtls.client_trust(config.home).context


def _rollouts(worker: Any, snapshots: Snapshots) -> Any:
    """The rollout state machine, its tasks run under the worker's lock (moto is not
    thread-safe); rollouts whose execution died with the last run are driven on."""
    from chalicelib.local import rollouts
    from chalicelib.local.stepfunctions import LocalStateMachines
    from chalicelib.rollouts import service

    def locked(handler: Any) -> Any:
        def run(event: Any, context: Any) -> Any:
            with worker.lock:
                try:
                    return handler(event, context)
                finally:
                    snapshots.mark_dirty()
        return run

    machines = LocalStateMachines()
    machines.install()
    rollouts.install(machines, locked)
    driven = service.redrive_lost()
    if driven:
        log.info("drove on %d rollout(s) whose execution ended with the last run", driven)
    return machines


def _live(chalice_app: Any) -> tuple[Any, Any]:
    """The live-updates hub: the management API answered by the gateway's sockets, and the
    events table's stream fanned out from now on (what the restored state wrote is not)."""
    from chalicelib.local.live import LocalConnections, events_stream

    connections = LocalConnections()
    connections.install()
    stream = events_stream(chalice_app)
    stream.start()
    return connections, stream


def _run(config: LocalConfig) -> int:
    from chalicelib.bootstrap import all_models
    from chalicelib.core.db import create_tables
    from chalicelib.live.routes import HUB_PATH
    from chalicelib.local.gateway import Gateway, Worker

    chalice_app = load_app()
    worker = Worker()
    snapshots = Snapshots(config.home, create_tables(all_models()), worker.lock)
    restored = snapshots.restore()
    connections, stream = _live(chalice_app)
    tls = _mutual_tls(config)
    machines = _rollouts(worker, snapshots)
    gateway = Gateway(config, chalice_app, oidc.load_signing_key(config.home), worker,
                      on_call=snapshots.mark_dirty, connections=connections,
                      websocket_path=HUB_PATH)
    try:
        asyncio.run(_listen(config, gateway, snapshots, restored, tls, stream))
    except OSError as exc:
        print(f"ampora dev: cannot listen on {config.base_url} and {config.mtls_url}: {exc}",
              file=sys.stderr)
        return 1
    finally:
        machines.uninstall()
        worker.shutdown()
        stream.stop()
        connections.uninstall()
        if snapshots.dirty:
            snapshots.save()
    print(f"stopped; state kept in {config.home}", flush=True)
    return 0
