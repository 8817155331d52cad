"""Routes of configurations: containers (list, create, read, merge-patch, delete), their
versions (save a draft, list, read, publish) and comparing two versions."""

from __future__ import annotations

import re
from typing import Any

from chalice import Blueprint

from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule
from chalicelib.core.problems import BadRequest

bp = Blueprint(__name__)
service = LazyModule("chalicelib.configurations.service")
_COMMON: dict[str, Any] = {"resource": "configuration", "tag": "Configurations"}
_VERSION = re.compile(r"^[0-9]{1,9}$")
DIFF = "text/x-diff"


def _version(call: Call) -> int:
    """The ``{version}`` of the path: a version number from 1."""
    raw = call.params["version"]
    if not _VERSION.match(raw) or int(raw) < 1:
        raise BadRequest(f"{raw!r} is not a version number: versions count from 1")
    return int(raw)


@operation(bp, "GET", "/api/configurations", name="configurations.list",
           summary="List configurations (filter by name prefix and labels)",
           query="ConfigurationQuery", response="Configuration", paged=True, **_COMMON)
def list_configurations(call: Call) -> Reply:
    """The tenant's configurations, paged."""
    return Reply(service.list_configurations(call.tenant, call.page, call.query))


@operation(bp, "POST", "/api/configurations", name="configurations.create",
           summary="Create a configuration container", body="ConfigurationCreate",
           response="Configuration", status=201, problems=("conflict",),
           response_headers=(("Location", "The new configuration's URL."),), **_COMMON)
def create_configuration(call: Call) -> Reply:
    """A new configuration with a tenant-unique name and no versions yet."""
    created, _ = service.create(call.principal, call.body)
    return Reply(created, resource_id=created.id,
                 headers={"Location": f"/api/configurations/{created.id}"})


@operation(bp, "GET", "/api/configurations/{id}", name="configurations.get",
           summary="Read a configuration", response="Configuration", etag=True,
           problems=("not-found",), **_COMMON)
def get_configuration(call: Call) -> Reply:
    """One configuration and its ETag."""
    found, revision = service.get(call.tenant, call.params["id"])
    return Reply(found, revision=revision)


@operation(bp, "PATCH", "/api/configurations/{id}", name="configurations.update",
           summary="Change a configuration's name, description, file name or labels "
                   "(JSON merge patch)",
           body="ConfigurationPatch", response="Configuration", etag=True,
           problems=("not-found", "conflict"), **_COMMON)
def patch_configuration(call: Call) -> Reply:
    """Merge-patch a configuration's metadata, honouring If-Match."""
    found, revision = service.update(call.tenant, call.params["id"], call.body, call.if_match)
    return Reply(found, revision=revision)


@operation(bp, "DELETE", "/api/configurations/{id}", name="configurations.delete",
           summary="Delete a configuration no group is on", status=204, etag=True,
           problems=("not-found", "conflict"), **_COMMON)
def delete_configuration(call: Call) -> Reply:
    """Delete, honouring If-Match; refused while a group is on one of its versions."""
    revision = service.delete(call.tenant, call.params["id"], call.if_match)
    return Reply(None, revision=revision)


@operation(bp, "POST", "/api/configurations/{id}/versions", name="configurations.saveVersion",
           summary="Save a draft as the next version", body="VersionCreate",
           response="VersionSummary", status=201,
           problems=("not-found", "conflict"),
           response_headers=(("Location", "The new version's URL."),), **_COMMON)
def save_version(call: Call) -> Reply:
    """A new draft: content that fits the size limit and parses as the content type."""
    saved = service.save_version(call.principal, call.params["id"], call.body)
    location = f"/api/configurations/{saved.configuration_id}/versions/{saved.version}"
    return Reply(saved, headers={"Location": location})


@operation(bp, "GET", "/api/configurations/{id}/versions", name="configurations.listVersions",
           summary="List a configuration's versions (without content)",
           response="VersionSummary", paged=True, problems=("not-found",), **_COMMON)
def list_versions(call: Call) -> Reply:
    """The configuration's versions, oldest first, paged."""
    return Reply(service.list_versions(call.tenant, call.params["id"], call.page))


@operation(bp, "GET", "/api/configurations/{id}/versions/compare",
           name="configurations.compare",
           summary="Compare two versions (JSON, or a unified diff with Accept: text/x-diff)",
           query="CompareQuery", response="Comparison", media_types=(DIFF,),
           problems=("not-found",), **_COMMON)
def compare_versions(call: Call) -> Reply:
    """The unified diff and, for YAML and JSON, the changes by key path."""
    found = service.compare(call.tenant, call.params["id"], call.query.from_, call.query.to)
    if call.media_type == DIFF:
        return Reply(found.unified_diff, media_type=DIFF)
    return Reply(found)


@operation(bp, "GET", "/api/configurations/{id}/versions/{version}",
           name="configurations.getVersion", summary="Read a version with its content",
           response="Version", problems=("bad-request", "not-found"), **_COMMON)
def get_version(call: Call) -> Reply:
    """One version and its content."""
    return Reply(service.get_version(call.tenant, call.params["id"], _version(call)))


@operation(bp, "POST", "/api/configurations/{id}/versions/{version}/publish",
           name="configurations.publish",
           summary="Publish a draft (If-Match: the configuration's ETag)",
           response="PublishedVersion", etag=True,
           problems=("not-found", "conflict", "policy-denied"), **_COMMON)
def publish_version(call: Call) -> Reply:
    """Publish a draft after the publish-time checks; the ETag is the configuration's new one."""
    published, revision = service.publish(call.principal, call.params["id"], _version(call),
                                          call.if_match)
    return Reply(published, revision=revision)
