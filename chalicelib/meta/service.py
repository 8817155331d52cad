"""The OpenAPI document of the running app, built once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.core.http import OPERATIONS
from chalicelib.core.settings import settings


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for every declared operation."""
    from chalicelib.core.openapi import build_document

    return build_document(OPERATIONS, docs_url=settings().docs_url)
