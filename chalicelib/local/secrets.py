"""The local Secrets Manager's secrets on disk, so tenant CAs outlive a restart of ``ampora dev``.

moto keeps secrets in memory; the agents' certificates chain to the CAs kept
there. Every secret is written (owner-only, atomically) to ``<home>/secrets.json``
when a CA is created, and put back into moto at the next start.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from chalicelib.local.state import atomic_write

SECRETS_FILE = "secrets.json"
log = logging.getLogger("ampora.local")


def _all(client: Any) -> dict[str, str]:
    names = [s["Name"] for page in client.get_paginator("list_secrets").paginate()
             for s in page.get("SecretList", [])]
    return {name: client.get_secret_value(SecretId=name)["SecretString"] for name in names}


def save(client: Any, home: Path) -> int:
    """Write every secret to the state dir; the number written."""
    secrets = _all(client)
    atomic_write(home / SECRETS_FILE, json.dumps({"version": 1, "secrets": secrets}).encode())
    return len(secrets)


def restore(client: Any, home: Path) -> int:
    """Create the saved secrets in the (fresh) local Secrets Manager; the number restored."""
    path = home / SECRETS_FILE
    if not path.exists():
        return 0
    document = json.loads(path.read_bytes())
    for name, value in document.get("secrets", {}).items():
        client.create_secret(Name=name, SecretString=value)
    return len(document.get("secrets", {}))


def keep_on_change(client: Any, home: Path) -> Any:
    """A CA listener that saves the secrets whenever a new CA is created."""
    def saved(tenant: str, _: bytes, created: bool) -> None:
        if created:
            count = save(client, home)
            log.info("saved %d local secrets (new CA of tenant %s)", count, tenant)

    return saved
