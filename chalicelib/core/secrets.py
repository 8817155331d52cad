"""Server-side secrets: from settings locally, from Secrets Manager in AWS (read once)."""

from __future__ import annotations

from functools import lru_cache

from chalicelib.core.problems import ServiceUnavailable
from chalicelib.core.settings import settings


@lru_cache(maxsize=1)
def cursor_secret() -> bytes:
    """The key that signs paging cursors."""
    config = settings()
    if config.cursor_secret:
        return config.cursor_secret.encode()
    if not config.cursor_secret_arn:
        raise ServiceUnavailable("no cursor secret is configured")
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(config.cursor_secret_arn, max_age=3600)
    return str(value).encode()
