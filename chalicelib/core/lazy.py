"""Deferred imports, so that ``import app`` loads only what every route needs.

A route module names its service and schemas; they (and pydantic, and the
pynamodb models behind them) are imported on the first request that uses them.
A function deployed for one route never loads the others.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


def resolve(module: str, ref: Any) -> Any:
    """``ref`` itself, or, if it is a name, that attribute of ``module`` (imported now)."""
    if ref is None or not isinstance(ref, str):
        return ref
    return getattr(importlib.import_module(module), ref)
