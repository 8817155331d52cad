"""OpenAPI 3.1 generation from the operation table (placeholder until written)."""

from __future__ import annotations

from typing import Any


def build_document(operations: Any, *, docs_url: str) -> dict[str, Any]:
    """The OpenAPI document."""
    raise NotImplementedError
