"""What agents receive for a published configuration version, as the OpAMP path reads it.

Published versions never change, so each process keeps the most recently used ones
in memory: a warm container reads a version's content once. This module imports no
schemas (the agents' path stays free of pydantic); the configurations service uses
its readers too.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from chalicelib.configurations import content
from chalicelib.configurations.models import (
    ConfigurationContentItem,
    ConfigurationVersionItem,
    version_key,
)
from chalicelib.core.db import ID
from chalicelib.core.problems import Conflict, NotFound

#: Deliveries kept in memory per process.
DELIVERY_CACHE_SIZE = 64


@dataclass(frozen=True)
class Delivery:
    """What an agent receives for one published version (OpAMP ``AgentRemoteConfig``)."""

    file_name: str
    content_type: str
    body: bytes
    #: The SHA-256 of ``body`` (32 bytes): the OpAMP ``config_hash``.
    config_hash: bytes


_deliveries: OrderedDict[tuple[str, str, int], Delivery] = OrderedDict()


def load_version(tenant: str, configuration_id: str, version: int) -> ConfigurationVersionItem:
    """A version of one of the tenant's configurations, or NotFound."""
    try:
        if ID.match(configuration_id):
            return ConfigurationVersionItem.get(version_key(tenant, configuration_id), version,
                                                consistent_read=True)
    except ConfigurationVersionItem.DoesNotExist:
        pass
    raise NotFound(f"configuration {configuration_id!r} has no version {version}")


def load_body(item: ConfigurationVersionItem) -> bytes:
    """The content of a version."""
    stored = ConfigurationContentItem.get(item.configuration, item.version, consistent_read=True)
    return bytes(stored.body)


def _delivery_of(tenant: str, configuration_id: str, version: int) -> Delivery:
    item = load_version(tenant, configuration_id, version)
    if item.published_at is None:
        raise Conflict(f"version {version} of configuration {configuration_id!r} is a draft")
    body = load_body(item)
    return Delivery(file_name=item.file_name, content_type=item.content_type, body=body,
                    config_hash=content.digest(body))


def delivery(tenant: str, configuration_id: str, version: int) -> Delivery:
    """What agents receive for a published version: file name, content type, body, hash.

    Raises NotFound for an unknown version, Conflict for a draft.
    """
    key = (tenant, configuration_id, version)
    found = _deliveries.get(key)
    if found is None:
        found = _delivery_of(tenant, configuration_id, version)
        _deliveries[key] = found
        while len(_deliveries) > DELIVERY_CACHE_SIZE:
            _deliveries.popitem(last=False)
    _deliveries.move_to_end(key)
    return found


def forget_deliveries() -> None:
    """Drop the deliveries this process remembers (tests reset the tables)."""
    _deliveries.clear()
