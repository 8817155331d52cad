"""Settings every test process runs with, set before any Ampora module reads them."""

from __future__ import annotations

import os

os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AMPORA_TABLE_PREFIX": "test-",
    "AMPORA_OIDC_AUTHORITY": "https://idp.example.test",
    "AMPORA_OIDC_AUDIENCE": "ampora",
    "AMPORA_CURSOR_SECRET": "test-cursor-secret",
    "AMPORA_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_NAMESPACE": "Ampora",
})
