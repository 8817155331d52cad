"""Configuration use cases: containers, draft versions, publishing, comparing, and what
agents are delivered.

A configuration is a container of numbered, immutable versions of one agent
configuration. Its name is unique within the tenant (a claim item written in the
same transaction as the container, as for groups). A draft is saved as the next
number by a put that must not overwrite, so two concurrent saves never share a
number. Publishing a draft changes the container (a new revision, hence a new
ETag) in the same transaction that marks the version, so of two concurrent
publishes against one ETag exactly one wins. Every change writes its event in
its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.configurations import content, diff
from chalicelib.configurations.delivery import load_body as _load_body
from chalicelib.configurations.delivery import load_version as _load_version
from chalicelib.configurations.models import (
    ConfigurationContentItem,
    ConfigurationItem,
    ConfigurationNameItem,
    ConfigurationVersionItem,
    version_key,
)
from chalicelib.configurations.schemas import (
    Change,
    Comparison,
    Configuration,
    ConfigurationCreate,
    ConfigurationPatch,
    ConfigurationQuery,
    PublishedVersion,
    Version,
    VersionCreate,
    VersionSummary,
)
from chalicelib.core.access import Principal
from chalicelib.core.concurrency import IfMatch, new_revision
from chalicelib.core.db import condition_failed, find, label_conditions, query_page, transaction
from chalicelib.core.deps import deps
from chalicelib.core.events import EventRecord, event_item
from chalicelib.core.lazy import LazyModule
from chalicelib.core.metadata import merge_labels, name_key
from chalicelib.core.named import Named, Raced
from chalicelib.core.paging import Page, PageRequest
from chalicelib.core.problems import AmporaError, Conflict, NotFound, ValidationFailed
from chalicelib.core.settings import settings

#: How often a change is retried when a concurrent change wins (without a specific If-Match).
ATTEMPTS = 5
#: How configurations and their name claims are stored and changed.
CONFIGURATIONS = Named(ConfigurationItem, ConfigurationNameItem, owner="configuration_id",
                       noun="configuration", soft_deleted=True, attempts=ATTEMPTS)

_groups = LazyModule("chalicelib.groups.service")
_rollouts = LazyModule("chalicelib.rollouts.service")
_policies = LazyModule("chalicelib.policies.service")


# --- views, items, events --------------------------------------------------------------------


def _labels(item: ConfigurationItem) -> dict[str, str]:
    stored: Any = item.labels
    if stored is None:
        return {}
    mapping = stored.as_dict() if hasattr(stored, "as_dict") else stored
    return {str(key): str(value) for key, value in mapping.items()}


def _view(item: ConfigurationItem) -> Configuration:
    published = item.published_version
    return Configuration.model_validate({
        "id": item.id, "name": item.name, "description": item.description,
        "content_type": item.content_type, "file_name": item.file_name, "labels": _labels(item),
        "published_version": None if published is None else int(published),
        "published_at": item.published_at, "created_at": item.created_at,
        "created_by": item.created_by, "updated_at": item.updated_at,
    })


def _summary_fields(item: ConfigurationVersionItem) -> dict[str, Any]:
    published = item.published_at is not None
    return {
        "configuration_id": item.configuration_id, "version": int(item.version),
        "status": "published" if published else "draft", "content_type": item.content_type,
        "file_name": item.file_name, "message": item.message, "size": int(item.size),
        "sha256": item.sha256, "author": item.author, "created_at": item.created_at,
        "published_at": item.published_at, "published_by": item.published_by,
    }


def _summary(item: ConfigurationVersionItem) -> VersionSummary:
    return VersionSummary.model_validate(_summary_fields(item))


def _event(tenant: str, kind: str, subject: str, data: dict[str, Any]) -> EventRecord:
    d = deps()
    return event_item(tenant=tenant, event_type=f"configuration.{kind}", subject=subject,
                      data=data, at=d.clock.now(), event_id=d.new_id(),
                      random_hex=d.random_bytes(4).hex())


def _container_event(kind: str, item: ConfigurationItem) -> EventRecord:
    return _event(item.tenant, kind, f"configurations/{item.id}", _view(item).to_wire())


def _version_event(kind: str, item: ConfigurationVersionItem) -> EventRecord:
    subject = f"configurations/{item.configuration_id}/versions/{int(item.version)}"
    return _event(item.tenant, f"version.{kind}", subject, _summary(item).to_wire())


def _successor(current: ConfigurationItem, **changes: Any) -> ConfigurationItem:
    """The next state of ``current`` (its labels as a plain map), plus ``changes``."""
    return CONFIGURATIONS.successor(current, **{"labels": _labels(current), **changes})


# --- reading containers ----------------------------------------------------------------------


def _fetch(tenant: str, configuration_id: str) -> ConfigurationItem | None:
    return find(ConfigurationItem, tenant, configuration_id)


def _load(tenant: str, configuration_id: str) -> ConfigurationItem:
    item = _fetch(tenant, configuration_id)
    if item is None or item.deleted_at is not None:
        raise NotFound(f"no configuration {configuration_id!r}")
    return item


def get(tenant: str, configuration_id: str) -> tuple[Configuration, str]:
    """One live configuration of the tenant and its revision (the ETag)."""
    item = _load(tenant, configuration_id)
    return _view(item), item.revision


def _list_filter(query: ConfigurationQuery) -> Any:
    combined = ConfigurationItem.deleted_at.does_not_exist()
    if query.name:
        combined &= ConfigurationItem.name_key.startswith(name_key(query.name))
    for condition in label_conditions(ConfigurationItem.labels, query.labels):
        combined &= condition
    return combined


def list_configurations(tenant: str, page: PageRequest,
                        query: ConfigurationQuery) -> Page[Configuration]:
    """The tenant's live configurations by id, filtered by name prefix and labels, paged."""
    found = query_page(ConfigurationItem, tenant, page, filter_condition=_list_filter(query))
    return found.map(_view)


# --- creating, changing, deleting containers -------------------------------------------------


def create(principal: Principal, spec: ConfigurationCreate) -> tuple[Configuration, str]:
    """A new configuration with no versions; 409 if the tenant has one of that name."""
    now = deps().clock.now()
    item = ConfigurationItem(
        tenant=principal.tenant, id=deps().new_id(), name=spec.name,
        name_key=name_key(spec.name), description=spec.description,
        content_type=spec.content_type,
        file_name=spec.file_name or content.DEFAULT_FILE_NAMES[spec.content_type],
        labels=dict(spec.labels), revision=new_revision(deps().random_bytes), created_at=now,
        created_by=principal.actor, updated_at=now,
    )
    _insert(item)
    return _view(item), item.revision


def _insert(item: ConfigurationItem) -> None:
    CONFIGURATIONS.insert(item, _container_event("created", item))


def _check(item: ConfigurationItem, if_match: IfMatch | None) -> None:
    CONFIGURATIONS.check(item, if_match)


Mutation = Callable[[ConfigurationItem], "ConfigurationItem | None"]
Write = Callable[[ConfigurationItem, ConfigurationItem], None]


def _mutate(tenant: str, configuration_id: str, if_match: IfMatch | None, change: Mutation,
            write: Write) -> ConfigurationItem:
    """Read, ``change`` and conditionally ``write`` a live configuration, retrying lost races."""
    return CONFIGURATIONS.mutate(lambda: _load(tenant, configuration_id), if_match, change,
                                 write)


def _patched(patch: ConfigurationPatch) -> Mutation:
    given = patch.model_fields_set

    def change(current: ConfigurationItem) -> ConfigurationItem | None:
        labels = _labels(current)
        before: dict[str, Any] = {"name": current.name, "description": current.description,
                                  "file_name": current.file_name, "labels": labels}
        after = dict(before)
        after.update({field: getattr(patch, field) for field in given if field != "labels"})
        if "labels" in given:
            after["labels"] = merge_labels(labels, patch.labels, "configuration")
        if after == before:
            return None
        return _successor(current, name_key=name_key(after["name"]), **after)

    return change


def _write_update(current: ConfigurationItem, new: ConfigurationItem) -> None:
    CONFIGURATIONS.write(current, new, _container_event("updated", new))


def update(tenant: str, configuration_id: str, patch: ConfigurationPatch,
           if_match: IfMatch | None) -> tuple[Configuration, str]:
    """Merge-patch a live configuration's name, description, file name or labels."""
    item = _mutate(tenant, configuration_id, if_match, _patched(patch), _write_update)
    return _view(item), item.revision


def _deletable(current: ConfigurationItem) -> ConfigurationItem:
    if _groups.uses_configuration(current.tenant, current.id):
        raise Conflict(f"configuration {current.id!r} is in use: a group is on one of its "
                       "versions")
    holder = _rollouts.holding(current.tenant, current.id)
    if holder is not None:
        raise Conflict(f"configuration {current.id!r} is in use: rollout {holder} moves a "
                       "group onto one of its versions")
    return _successor(current, deleted_at=deps().clock.now())


def _write_delete(current: ConfigurationItem, new: ConfigurationItem) -> None:
    CONFIGURATIONS.write(current, new, _container_event("deleted", new), release=True)


def delete(tenant: str, configuration_id: str, if_match: IfMatch | None) -> str:
    """Delete a configuration no group is on and free its name; returns its last revision.

    Its versions are kept (they are immutable), but no longer reachable through the API.
    """
    return _mutate(tenant, configuration_id, if_match, _deletable, _write_delete).revision


# --- versions --------------------------------------------------------------------------------


def _checked_body(content_type: str, text: str) -> bytes:
    """The body of ``text`` once it fits the size limit and parses, or the problem saying why."""
    try:
        return content.validate(content_type, text, settings().max_configuration_bytes)
    except content.ContentTooLarge as exc:
        raise AmporaError(str(exc), slug="payload-too-large", size=exc.size,
                          limit=exc.limit) from exc
    except content.ContentError as exc:
        raise ValidationFailed([{"pointer": "/content", "detail": str(exc)}],
                               f"the content is not valid {content_type}",
                               contentType=content_type, line=exc.line,
                               column=exc.column) from exc


def _last_number(tenant: str, configuration_id: str) -> int:
    newest = ConfigurationVersionItem.query(version_key(tenant, configuration_id),
                                            scan_index_forward=False, limit=1,
                                            consistent_read=True)
    return max((int(item.version) for item in newest), default=0)


def _new_version(container: ConfigurationItem, number: int, body: bytes,
                 message: str | None, author: dict[str, str]) -> ConfigurationVersionItem:
    return ConfigurationVersionItem(
        configuration=version_key(container.tenant, container.id), version=number,
        tenant=container.tenant, configuration_id=container.id,
        content_type=container.content_type, file_name=container.file_name, message=message,
        size=len(body), sha256=content.digest(body).hex(), author=author,
        created_at=deps().clock.now(),
    )


def _write_version(item: ConfigurationVersionItem, body: bytes) -> None:
    stored = ConfigurationContentItem(configuration=item.configuration, version=item.version,
                                      body=body)
    live = ConfigurationItem.id.exists() & ConfigurationItem.deleted_at.does_not_exist()
    try:
        with transaction() as tx:
            tx.condition_check(ConfigurationItem, item.tenant, item.configuration_id,
                               condition=live)
            tx.save(item, condition=ConfigurationVersionItem.version.does_not_exist())
            tx.save(stored, condition=ConfigurationContentItem.version.does_not_exist())
            tx.save(_version_event("saved", item))
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        raise Raced from exc


def save_version(principal: Principal, configuration_id: str,
                 spec: VersionCreate) -> VersionSummary:
    """Save ``spec`` as a draft with the next version number (413 too large, 422 unparseable)."""
    container = _load(principal.tenant, configuration_id)
    body = _checked_body(container.content_type, spec.content)
    for _ in range(ATTEMPTS):
        number = _last_number(principal.tenant, configuration_id) + 1
        item = _new_version(container, number, body, spec.message, principal.actor)
        try:
            _write_version(item, body)
        except Raced:
            container = _load(principal.tenant, configuration_id)
            continue
        return _summary(item)
    raise Conflict(f"configuration {configuration_id!r} is taking many versions at once; retry")


def list_versions(tenant: str, configuration_id: str, page: PageRequest) -> Page[VersionSummary]:
    """The versions of a live configuration, oldest first, without their content."""
    _load(tenant, configuration_id)
    found = query_page(ConfigurationVersionItem, version_key(tenant, configuration_id), page)
    return found.map(_summary)


def get_version(tenant: str, configuration_id: str, version: int) -> Version:
    """One version of a live configuration, with its content."""
    _load(tenant, configuration_id)
    item = _load_version(tenant, configuration_id, version)
    text = _load_body(item).decode("utf-8")
    return Version.model_validate({**_summary_fields(item), "content": text})


# --- publishing ------------------------------------------------------------------------------


def _publish_checks(container: ConfigurationItem, item: ConfigurationVersionItem) -> Any:
    """Everything that must hold for ``item`` to be published; raises the problem if not, and
    returns the policies' report (warn-mode findings included).

    The content must still parse and fit the size limit of this deployment, and the
    tenant's ``publish``-scope policies in force must allow it (422 ``policy-denied``).
    """
    text = _load_body(item).decode("utf-8")
    _checked_body(item.content_type, text)
    return _policies.enforce_publish(container.tenant, {
        "content_type": item.content_type, "text": text, "configuration_id": container.id,
        "version": int(item.version), "name": container.name, "file_name": item.file_name})


def _published(item: ConfigurationVersionItem, actor: dict[str, str]) -> ConfigurationVersionItem:
    state = {name: getattr(item, name) for name in ConfigurationVersionItem.get_attributes()}
    state.update(published_at=deps().clock.now(), published_by=actor)
    return ConfigurationVersionItem(**state)


def _write_publish(current: ConfigurationItem, container: ConfigurationItem,
                   version: ConfigurationVersionItem) -> None:
    try:
        with transaction() as tx:
            tx.save(container, condition=CONFIGURATIONS.unchanged(current))
            tx.save(version, condition=ConfigurationVersionItem.published_at.does_not_exist())
            tx.save(_version_event("published", version))
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        raise Raced from exc


def _publish_once(principal: Principal, configuration_id: str, version: int,
                  if_match: IfMatch | None) -> tuple[PublishedVersion, str]:
    """One attempt: already published is a success as is (RFC 9110 13.1.1), whatever If-Match."""
    current = _load(principal.tenant, configuration_id)
    item = _load_version(principal.tenant, configuration_id, version)
    if item.published_at is not None:
        return PublishedVersion.model_validate(_summary_fields(item)), current.revision
    _check(current, if_match)
    report = _publish_checks(current, item)
    published = _published(item, principal.actor)
    container = _successor(current, published_version=version,
                           published_at=published.published_at)
    _write_publish(current, container, published)
    warnings = [{"policy": w.policy, "policy_id": w.policy_id, "revision": w.revision,
                 "message": w.message} for w in report.warnings]
    return PublishedVersion.model_validate({
        **_summary_fields(published), "policy_warnings": warnings,
        "policy_warnings_total": report.warnings_total}), container.revision


def publish(principal: Principal, configuration_id: str, version: int,
            if_match: IfMatch | None) -> tuple[PublishedVersion, str]:
    """Publish a draft: it becomes the configuration's published version; returns it and the
    configuration's new revision. Publishing a published version changes nothing."""
    for _ in range(ATTEMPTS):
        try:
            return _publish_once(principal, configuration_id, version, if_match)
        except Raced:
            continue  # the next attempt sees the winner: 412, or already published
    raise Conflict(f"configuration {configuration_id!r} is being changed by others; retry")


# --- comparing -------------------------------------------------------------------------------


def _side(tenant: str, configuration_id: str, version: int) -> diff.Side:
    item = _load_version(tenant, configuration_id, version)
    return diff.Side(version=version, file_name=item.file_name,
                     text=_load_body(item).decode("utf-8"))


def compare(tenant: str, configuration_id: str, old: int, new: int) -> Comparison:
    """How version ``new`` differs from version ``old`` of a live configuration."""
    container = _load(tenant, configuration_id)
    before = _side(tenant, configuration_id, old)
    after = before if new == old else _side(tenant, configuration_id, new)
    found = diff.compare(container.content_type, before, after)
    changes = None if found.changes is None else [
        Change(path=c.path, kind=c.kind, old=c.old, new=c.new) for c in found.changes]
    return Comparison.model_validate({"from": old, "to": new, "unified_diff": found.unified_diff,
                                      "changes": changes})


# --- for delivery to agents ------------------------------------------------------------------


def require_published(tenant: str, configuration_id: str, version: int) -> None:
    """Make sure ``version`` of a live configuration of ``tenant`` may be given to agents.

    Raises NotFound for an unknown configuration or version, Conflict for a draft.
    """
    _load(tenant, configuration_id)
    item = _load_version(tenant, configuration_id, version)
    if item.published_at is None:
        raise Conflict(f"version {version} of configuration {configuration_id!r} is a draft; "
                       "publish it first")
