"""Where the local stack keeps its state and which port it listens on.

These are local-only knobs (``AMPORA_HOME``, ``AMPORA_PORT``, ``AMPORA_MTLS_PORT``)
shared by ``ampora dev`` and ``ampora dev-token``, so a token minted by one is
accepted by the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8000
DEFAULT_MTLS_PORT = 8443
HOST = "127.0.0.1"
OIDC_PREFIX = "/local-oidc"


class LocalConfigError(ValueError):
    """A local-stack setting is present but unusable."""


@dataclass(frozen=True)
class LocalConfig:
    """The local stack's state directory and listening ports (HTTP, and HTTPS with mTLS)."""

    home: Path
    port: int = DEFAULT_PORT
    mtls_port: int = DEFAULT_MTLS_PORT

    @property
    def base_url(self) -> str:
        """The URL the local stack answers on."""
        return f"http://{HOST}:{self.port}"

    @property
    def mtls_url(self) -> str:
        """The HTTPS URL where agents authenticate with their certificates."""
        return f"https://{HOST}:{self.mtls_port}"

    @property
    def authority(self) -> str:
        """The local OIDC issuer (discovery base URL) that the local stack trusts."""
        return f"{self.base_url}{OIDC_PREFIX}"

    @classmethod
    def from_env(cls, *, port: int | None = None, env: dict[str, str] | None = None
                 ) -> LocalConfig:
        """The configuration from ``AMPORA_HOME``/``AMPORA_PORT`` (``port`` overrides)."""
        env = dict(os.environ if env is None else env)
        home = Path(env.get("AMPORA_HOME") or ".ampora").expanduser().resolve()
        return cls(home=home, port=port if port is not None else parse_port(env),
                   mtls_port=parse_port(env, "AMPORA_MTLS_PORT", DEFAULT_MTLS_PORT))


def parse_port(env: dict[str, str], name: str = "AMPORA_PORT", default: int = DEFAULT_PORT
               ) -> int:
    """A port variable (``AMPORA_PORT`` by default) as a TCP port number."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    return check_port(raw)


def check_port(raw: str | int) -> int:
    """``raw`` as a TCP port number, or a :class:`LocalConfigError`."""
    try:
        port = int(raw)
    except ValueError as exc:
        raise LocalConfigError(f"port must be an integer, got {raw!r}") from exc
    if not 1 <= port <= 65_535:
        raise LocalConfigError(f"port must be within 1..65535, got {port}")
    return port
