"""The configurations tables: containers, their name claims, versions, and version content.

A version's content lives apart from its metadata, so listing versions never reads
(nor pays for) the content, however large it is.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BinaryAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.core.db import table, table_name


def version_key(tenant: str, configuration_id: str) -> str:
    """The partition of a configuration's versions (tenant ids never contain ``#``)."""
    return f"{tenant}#{configuration_id}"


@table
class ConfigurationItem(Model):
    """A configuration container of one tenant; soft-deleted ones keep ``deleted_at``."""

    class Meta:
        table_name = table_name("configurations")

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    #: The name as compared for uniqueness and prefix filters (case-folded).
    name_key = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    content_type = UnicodeAttribute()
    file_name = UnicodeAttribute()
    labels = MapAttribute[str, str](default=dict)
    revision = UnicodeAttribute()
    #: The version published most recently, and when.
    published_version = NumberAttribute(null=True)
    published_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    created_by = JSONAttribute()
    updated_at = UTCDateTimeAttribute()
    deleted_at = UTCDateTimeAttribute(null=True)


@table
class ConfigurationNameItem(Model):
    """The claim of a name by a live configuration (a conditional put makes names unique)."""

    class Meta:
        table_name = table_name("configuration-names")

    tenant = UnicodeAttribute(hash_key=True)
    name_key = UnicodeAttribute(range_key=True)
    configuration_id = UnicodeAttribute()


@table
class ConfigurationVersionItem(Model):
    """One numbered version of a configuration: immutable but for being published once."""

    class Meta:
        table_name = table_name("configuration-versions")

    #: ``<tenant>#<configuration id>``: see :func:`version_key`.
    configuration = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    tenant = UnicodeAttribute()
    configuration_id = UnicodeAttribute()
    #: The content type and file name of the configuration when this version was saved.
    content_type = UnicodeAttribute()
    file_name = UnicodeAttribute()
    message = UnicodeAttribute(null=True)
    size = NumberAttribute()
    #: SHA-256 of the content, as hex.
    sha256 = UnicodeAttribute()
    author = JSONAttribute()
    created_at = UTCDateTimeAttribute()
    published_at = UTCDateTimeAttribute(null=True)
    published_by = JSONAttribute(null=True)


@table
class ConfigurationContentItem(Model):
    """The content of one version, exactly as agents receive it (UTF-8)."""

    class Meta:
        table_name = table_name("configuration-contents")

    configuration = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    body = BinaryAttribute(legacy_encoding=False)
