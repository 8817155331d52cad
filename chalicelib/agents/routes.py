"""Routes of the agents API: list with filters, read one, move to another group."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.agents.service")
_COMMON: dict[str, Any] = {"resource": "agent", "tag": "Agents"}


@operation(bp, "GET", "/api/agents", name="agents.list",
           summary="List agents (filter by group, status, labels, name, type, version, health)",
           query="AgentQuery", response="Agent", paged=True, **_COMMON)
def list_agents(call: Call) -> Reply:
    """The tenant's agents that match every filter, paged."""
    return Reply(service.list_agents(call.tenant, call.page, call.query))


@operation(bp, "GET", "/api/agents/{id}", name="agents.get", summary="Read an agent",
           response="Agent", problems=("not-found",), **_COMMON)
def get_agent(call: Call) -> Reply:
    """One agent: description, health, capabilities, configs, presence, certificate."""
    return Reply(service.get(call.tenant, call.params["id"]))


@operation(bp, "POST", "/api/agents/{id}/move", name="agents.move",
           summary="Move an agent to another group", body="AgentMove", response="Agent",
           problems=("not-found",), **_COMMON)
def move_agent(call: Call) -> Reply:
    """Put the agent in the named group."""
    return Reply(service.move(call.tenant, call.params["id"], call.body.group_id))
