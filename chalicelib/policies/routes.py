"""Routes of policies: list, create, read (ETag), merge-patch, approve, disable and enable,
and the dry run."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.core.access import Role
from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.policies.service")
_COMMON: dict[str, Any] = {"resource": "policy", "tag": "Policies"}


@operation(bp, "GET", "/api/policies", name="policies.list",
           summary="List policies (filter by name prefix, scope, state, pending approval)",
           query="PolicyQuery", response="Policy", paged=True, **_COMMON)
def list_policies(call: Call) -> Reply:
    """The tenant's policies, paged."""
    return Reply(service.list_policies(call.tenant, call.page, call.query))


@operation(bp, "POST", "/api/policies", name="policies.create",
           summary="Create a policy (its rule is a draft until approved)", body="PolicyCreate",
           response="Policy", status=201, problems=("conflict",),
           response_headers=(("Location", "The new policy's URL."),), **_COMMON)
def create_policy(call: Call) -> Reply:
    """A new policy with a tenant-unique name and a compiled draft expression."""
    created, _ = service.create(call.principal, call.body)
    return Reply(created, resource_id=created.id,
                 headers={"Location": f"/api/policies/{created.id}"})


@operation(bp, "POST", "/api/policies/evaluate", name="policies.evaluate",
           summary="Dry run: evaluate a policy or an expression against a group or a "
                   "configuration version, enforcing nothing",
           body="EvaluationRequest", response="EvaluationResult", problems=("not-found",),
           **_COMMON)
def evaluate(call: Call) -> Reply:
    """Per-agent verdicts (the first ones asked for) and counts over every agent."""
    return Reply(service.evaluate(call.tenant, call.body))


@operation(bp, "GET", "/api/policies/{id}", name="policies.get", summary="Read a policy",
           response="Policy", etag=True, problems=("not-found",), **_COMMON)
def get_policy(call: Call) -> Reply:
    """One policy and its ETag."""
    found, revision = service.get(call.tenant, call.params["id"])
    return Reply(found, revision=revision)


@operation(bp, "PATCH", "/api/policies/{id}", name="policies.update",
           summary="Change a policy (JSON merge patch): a new expression or mode is a draft "
                   "revision; the approved one stays in force until it is approved",
           body="PolicyPatch", response="Policy", etag=True,
           problems=("not-found", "conflict"), **_COMMON)
def patch_policy(call: Call) -> Reply:
    """Merge-patch a policy, honouring If-Match."""
    found, revision = service.update(call.principal, call.params["id"], call.body,
                                     call.if_match)
    return Reply(found, revision=revision)


@operation(bp, "POST", "/api/policies/{id}/approve", name="policies.approve",
           summary="Approve a draft: it is in force from now on (not by its own author)",
           response="Policy", etag=True, role=Role.ADMIN,
           problems=("not-found", "conflict", "self-approval"), **_COMMON)
def approve_policy(call: Call) -> Reply:
    """Put the draft in force, honouring If-Match."""
    found, revision = service.approve(call.principal, call.params["id"], call.if_match)
    return Reply(found, revision=revision)


@operation(bp, "POST", "/api/policies/{id}/disable", name="policies.disable",
           summary="Disable a policy: it is never evaluated until enabled again",
           response="Policy", etag=True, role=Role.ADMIN, problems=("not-found",), **_COMMON)
def disable_policy(call: Call) -> Reply:
    """Disable, honouring If-Match (disabling a disabled policy changes nothing)."""
    found, revision = service.set_disabled(call.principal, call.params["id"], True,
                                           call.if_match)
    return Reply(found, revision=revision)


@operation(bp, "POST", "/api/policies/{id}/enable", name="policies.enable",
           summary="Enable a disabled policy: its approved revision is in force again",
           response="Policy", etag=True, role=Role.ADMIN, problems=("not-found",), **_COMMON)
def enable_policy(call: Call) -> Reply:
    """Enable, honouring If-Match (enabling an enabled policy changes nothing)."""
    found, revision = service.set_disabled(call.principal, call.params["id"], False,
                                           call.if_match)
    return Reply(found, revision=revision)
