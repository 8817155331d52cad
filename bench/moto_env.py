"""What every in-process bench sets before importing the app: the project on ``sys.path``
and settings for an app on moto (fake credentials, a table prefix of its own)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update({
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1", "AMPORA_TABLE_PREFIX": "bench-",
    "AMPORA_CURSOR_SECRET": "bench", "AMPORA_OIDC_AUTHORITY": "https://idp.bench.test",
    "AMPORA_LOG_LEVEL": "ERROR",
})
