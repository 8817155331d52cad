"""Routes of agent certificates: revoking an agent's mTLS leaf (Operator)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.access import Role
from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.certificates.service")


@operation(bp, "POST", "/api/agents/{id}/revoke-cert", name="agents.revokeCert",
           summary="Revoke the agent's mTLS certificate (its next request is refused)",
           resource="agent", role=Role.OPERATOR, response="Agent", tag="Agents",
           problems=("not-found", "conflict"))
def revoke_cert(call: Call) -> Reply:
    """Revoke the agent's leaf; the agent shows as revoked."""
    return Reply(service.revoke_certificate(call.principal, call.params["id"]))
