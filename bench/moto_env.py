"""What the in-process benches share: the project on ``sys.path`` and settings for an app on
moto (fake credentials, a table prefix of its own), set on import, before the app is imported;
and the agents they write straight into the tables."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update({
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1", "AMPORA_TABLE_PREFIX": "bench-",
    "AMPORA_CURSOR_SECRET": "bench", "AMPORA_OIDC_AUTHORITY": "https://idp.bench.test",
    "AMPORA_LOG_LEVEL": "ERROR",
})

TENANT = "bench"


def agent_item(model: Any, group_key: Any, group: str, index: int, now: datetime,
               **extra: Any) -> Any:
    """Agent number ``index`` of the bench tenant, as if it enrolled with labels, described
    itself and reported health (``extra``: more attributes of its item)."""
    uid = f"{index:032x}"
    return model(
        tenant=TENANT, id=uid, group_id=group, group_key=group_key(TENANT, group),
        labels={"env": "prod" if index % 10 else "staging", "region": f"eu-{index % 3}"},
        enrolled_at=now, enrolled_by="bt-bench", agent_type="io.opentelemetry.collector",
        agent_version="0.120.0", host_name=f"web-{index}", name=f"web-{index}",
        identifying={"service.name": "io.opentelemetry.collector", "service.version": "0.120.0",
                     "service.instance.id": uid},
        non_identifying={"host.name": f"web-{index}", "os.type": "linux"},
        capabilities=0x3FF, health={"healthy": True, "status": "StatusOK", "lastError": ""},
        healthy=True, last_seen_at=now, updated_at=now, **extra,
    )
