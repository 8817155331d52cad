"""Schemas of the certificates routes: revoking a leaf answers the agent view."""

from __future__ import annotations

from chalicelib.agents.schemas import Agent

__all__ = ["Agent"]
