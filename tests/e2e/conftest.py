"""The local stack as a real subprocess on a free port, and a small HTTP client for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT = 45.0
STOP_TIMEOUT = 20.0


@dataclass
class Reply:
    """An HTTP response as the tests read it."""

    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters."""
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(method: str, url: str, *, token: str | None = None, body: Any = None,
            raw: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One real HTTP request; error statuses are returned, not raised."""
    sent = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def ampora_command() -> list[str]:
    """How to run `ampora`: the installed console script, else the module."""
    script = Path(sys.executable).with_name("ampora")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chalicelib.cli.main"]


def _child_env(home: Path, port: int, mtls_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMPORA_", "AWS_"))}
    env.update({"AMPORA_HOME": str(home), "AMPORA_PORT": str(port),
                "AMPORA_MTLS_PORT": str(mtls_port), "PYTHONUNBUFFERED": "1",
                "AMPORA_LOG_LEVEL": "WARNING"})
    return env


@dataclass
class LocalStack:
    """``ampora dev`` running in a subprocess, with its state dir and log."""

    home: Path
    port: int = field(default_factory=free_port)
    mtls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def url(self) -> str:
        """The base URL the stack answers on."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def mtls_url(self) -> str:
        """The base URL of the HTTPS port where agents present their certificates."""
        return f"https://127.0.0.1:{self.mtls_port}"

    @property
    def server_ca(self) -> Path:
        """The CA certificate a client trusts to verify the HTTPS port."""
        return self.home / "tls" / "ca.pem"

    @property
    def log(self) -> Path:
        """The combined output of the current run."""
        return self.home.parent / f"{self.home.name}-run{self.runs}.log"

    def env(self) -> dict[str, str]:
        """The environment the stack and ``ampora dev-token`` run with."""
        return _child_env(self.home, self.port, self.mtls_port)

    def start(self) -> LocalStack:
        """Start ``ampora dev`` and wait until it answers."""
        self.runs += 1
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*ampora_command(), "dev"], env=self.env(), cwd=self.home.parent,
                stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        probe = f"{self.url}/local-oidc/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"ampora dev exited early:\n{self.output()}")
            try:
                if request("GET", probe).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)  # polling for readiness, bounded by READY_TIMEOUT
        raise RuntimeError(f"ampora dev was not ready in {READY_TIMEOUT}s:\n{self.output()}")

    def stop(self) -> int:
        """Stop it as Ctrl-C would (SIGTERM) and return its exit code."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def output(self) -> str:
        """What the stack printed in its current run."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``ampora ARGS`` against this stack's state dir and port."""
        return subprocess.run([*ampora_command(), *args], env=self.env(), capture_output=True,
                              text=True, timeout=60, check=False)

    def dev_token(self, role: str = "Admin", *extra: str) -> str:
        """A bearer token from ``ampora dev-token``."""
        done = self.cli("dev-token", "--role", role, *extra)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def call(self, method: str, path: str, **options: Any) -> Reply:
        """One HTTP request to the stack."""
        return request(method, f"{self.url}{path}", **options)


def _running(home: Path) -> Iterator[LocalStack]:
    stack = LocalStack(home=home).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One local stack shared by a module's tests (fresh state dir)."""
    yield from _running(tmp_path_factory.mktemp("stack") / ".ampora")


@pytest.fixture
def fresh_home(tmp_path: Path) -> Path:
    """An empty state dir for a test that starts and stops its own stack."""
    return tmp_path / ".ampora"
