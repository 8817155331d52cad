"""Wire schemas of configurations: containers, versions, list filters and comparisons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from chalicelib.core.metadata import MAX_LABELS
from chalicelib.core.schema import NAME_PATTERN, Actor, Description, LabelSelector, Schema

ConfigurationName = Annotated[str, Field(
    min_length=1, max_length=100, pattern=NAME_PATTERN,
    description="Unique within the tenant, compared case-insensitively; no leading or "
                "trailing spaces, no control characters.")]
ContentType = Literal["application/yaml", "application/json", "text/plain"]
FileName = Annotated[str, Field(
    min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]*$",
    description="The file name agents receive the content under: letters, digits and ._- "
                "(no path).")]
# Labels are selectable by the label selectors of core.selectors, so they follow its grammar.
LabelKey = Annotated[str, Field(
    min_length=1, max_length=63, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9_./-]*[A-Za-z0-9])?$")]
LabelValue = Annotated[str, Field(max_length=253, pattern=r"^[A-Za-z0-9_.:/@-]*$")]
Message = Annotated[str, Field(max_length=1000, description="Why this version was made.")]
VersionNumber = Annotated[int, Field(ge=1, le=999_999_999)]


class ConfigurationCreate(Schema):
    """A new configuration container (its versions are saved separately)."""

    name: ConfigurationName
    description: Description | None = None
    content_type: ContentType = Field(description="What every version's content must parse as.")
    file_name: FileName | None = Field(
        default=None, description="Default: config.yaml, config.json or config.txt by type.")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, max_length=MAX_LABELS,
        description=f"Up to {MAX_LABELS} labels, selectable like agents' labels.")


class ConfigurationPatch(Schema):
    """A JSON merge patch (RFC 7396) of a configuration's metadata: absent fields stay.

    The content type cannot change: every version parses as it.
    """

    name: ConfigurationName | None = Field(default=None, description="A new name (not null).")
    description: Description | None = Field(default=None, description="null removes it.")
    file_name: FileName | None = Field(
        default=None, description="A new file name (not null), for versions saved from now on: "
                                  "a saved version keeps the name it was saved with.")
    labels: dict[LabelKey, LabelValue | None] | None = Field(
        default=None, max_length=MAX_LABELS,
        description="Merged into the labels: a null value removes that label; null removes all.")

    @field_validator("name", "file_name")
    @classmethod
    def _stays(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be removed")
        return value


class Configuration(Schema):
    """A configuration container as the API shows it."""

    id: str
    name: str
    description: str | None
    content_type: ContentType
    file_name: str
    labels: dict[str, str]
    published_version: int | None = Field(description="The version published most recently.")
    published_at: datetime | None
    created_at: datetime
    created_by: Actor
    updated_at: datetime


class ConfigurationQuery(Schema):
    """Filters of the configuration list (all must hold)."""

    name: str | None = Field(default=None, min_length=1, max_length=100,
                             description="Only names starting with this (case-insensitive).")
    labels: LabelSelector | None = None


class VersionCreate(Schema):
    """A draft: the content and why it was made."""

    content: str = Field(description="The whole content; it must parse as the configuration's "
                                     "content type and fit the size limit.")
    message: Message | None = None


class VersionSummary(Schema):
    """A version without its content."""

    configuration_id: str
    version: int
    status: Literal["draft", "published"]
    content_type: ContentType
    file_name: str
    message: str | None
    size: int = Field(description="Bytes of content (UTF-8).")
    sha256: str = Field(description="SHA-256 of the content in hex: the OpAMP config_hash.")
    author: Actor
    created_at: datetime
    published_at: datetime | None
    published_by: Actor | None


class PolicyWarning(Schema):
    """A warn-mode policy that did not allow the publish (the publish went through)."""

    policy: str
    policy_id: str
    revision: int
    message: str


class PublishedVersion(VersionSummary):
    """A version just published, with what warn-mode policies said of it."""

    policy_warnings: list[PolicyWarning] = Field(
        default_factory=list, description="Warn-mode publish policies that returned false or "
                                          "could not be evaluated (the first 100).")
    policy_warnings_total: int = 0


class Version(VersionSummary):
    """A version with its content."""

    content: str


class CompareQuery(Schema):
    """The two versions to compare."""

    from_: VersionNumber = Field(alias="from", description="The version compared from.")
    to: VersionNumber = Field(description="The version compared to.")


class Change(Schema):
    """One difference by key path (a JSON Pointer into the documents)."""

    path: str
    kind: Literal["added", "removed", "changed"]
    old: Any = Field(default=None, description="The value before (null when added).")
    new: Any = Field(default=None, description="The value after (null when removed).")


class Comparison(Schema):
    """How one version differs from another."""

    from_: int = Field(alias="from")
    to: int
    unified_diff: str = Field(description="Empty when the content is the same.")
    changes: list[Change] | None = Field(
        description="For YAML and JSON: the changes by key path; null for plain text.")
