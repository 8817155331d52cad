"""Routes of groups: list, create, read (ETag), merge-patch, add members, soft-delete."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.groups.service")
_COMMON: dict[str, Any] = {"resource": "group", "tag": "Groups"}


@operation(bp, "GET", "/api/groups", name="groups.list", summary="List groups",
           query="GroupQuery", response="Group", paged=True, **_COMMON)
def list_groups(call: Call) -> Reply:
    """The tenant's groups (the default one included), paged."""
    return Reply(service.list_groups(call.tenant, call.page, name_prefix=call.query.name,
                                     include_deleted=call.query.include_deleted))


@operation(bp, "POST", "/api/groups", name="groups.create", summary="Create a group",
           body="GroupCreate", response="Group", status=201, problems=("conflict",),
           response_headers=(("Location", "The new group's URL."),), **_COMMON)
def create_group(call: Call) -> Reply:
    """A new group with a tenant-unique name."""
    group, _ = service.create(call.tenant, call.body)
    return Reply(group, resource_id=group.id, headers={"Location": f"/api/groups/{group.id}"})


@operation(bp, "GET", "/api/groups/{id}", name="groups.get", summary="Read a group",
           query="GroupGetQuery", response="Group", etag=True, problems=("not-found",),
           **_COMMON)
def get_group(call: Call) -> Reply:
    """One group and its ETag."""
    group, revision = service.get(call.tenant, call.params["id"],
                                  include_deleted=call.query.include_deleted)
    return Reply(group, revision=revision)


@operation(bp, "PATCH", "/api/groups/{id}", name="groups.update",
           summary="Change a group's name, description or labels (JSON merge patch)",
           body="GroupPatch", response="Group", etag=True, problems=("not-found", "conflict"),
           **_COMMON)
def patch_group(call: Call) -> Reply:
    """Merge-patch a group, honouring If-Match."""
    group, revision = service.update(call.tenant, call.params["id"], call.body, call.if_match)
    return Reply(group, revision=revision)


@operation(bp, "POST", "/api/groups/{id}/members", name="groups.addMembers",
           summary="Move agents into the group", body="MembersInput", response="MembersResult",
           etag=True, problems=("not-found",), **_COMMON)
def add_members(call: Call) -> Reply:
    """Move each listed agent here; reports the ids moved and the ids not found."""
    result, revision = service.add_members(call.tenant, call.params["id"],
                                           call.body.agent_ids, call.if_match)
    return Reply(result, revision=revision)


@operation(bp, "DELETE", "/api/groups/{id}", name="groups.delete",
           summary="Soft-delete an empty group", status=204, etag=True,
           problems=("not-found", "conflict"), **_COMMON)
def delete_group(call: Call) -> Reply:
    """Soft-delete, honouring If-Match; refused while agents remain or for the default group."""
    _, revision = service.delete(call.tenant, call.params["id"], call.if_match)
    return Reply(None, revision=revision)
