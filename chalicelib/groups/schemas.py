"""Wire schemas of groups: create, merge-patch, list filters, membership changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from chalicelib.core.metadata import MAX_LABELS
from chalicelib.core.schema import NAME_PATTERN, PRINTABLE, Description, Schema

GroupName = Annotated[str, Field(
    min_length=1, max_length=100, pattern=NAME_PATTERN,
    description="Unique within the tenant, compared case-insensitively; no leading or "
                "trailing spaces, no control characters.")]
LabelKey = Annotated[str, Field(
    min_length=1, max_length=63, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$")]
LabelValue = Annotated[str, Field(max_length=256, pattern=f"^{PRINTABLE}*$")]
AgentId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$",
                               description="The agent's OpAMP instance_uid as 32 hex digits.")]


class GroupCreate(Schema):
    """A new group."""

    name: GroupName
    description: Description | None = None
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, max_length=MAX_LABELS,
        description=f"Up to {MAX_LABELS} labels: keys of letters, digits and ._/- "
                    "(at most 63), values of at most 256 characters.")


class GroupPatch(Schema):
    """A JSON merge patch (RFC 7396) of a group: absent fields stay, ``null`` removes."""

    name: GroupName | None = Field(default=None, description="A new name (cannot be null).")
    description: Description | None = Field(default=None, description="null removes it.")
    labels: dict[LabelKey, LabelValue | None] | None = Field(
        default=None, max_length=MAX_LABELS,
        description="Merged into the labels: a null value removes that label; null removes all.")

    @field_validator("name")
    @classmethod
    def _name_stays(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("a group's name cannot be removed")
        return value


class DesiredConfiguration(Schema):
    """The published configuration version a group's agents should run."""

    configuration_id: str
    version: int


class Group(Schema):
    """A group as the API shows it."""

    id: str
    name: str
    description: str | None
    labels: dict[str, str]
    is_default: bool = Field(description="The tenant's default group: never deleted.")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(description="Set once the group is soft-deleted.")
    desired_configuration: DesiredConfiguration | None = Field(
        default=None, description="The configuration version its agents receive over OpAMP.")


class GroupQuery(Schema):
    """Filters of the group list."""

    name: str | None = Field(default=None, min_length=1, max_length=100,
                             description="Only groups whose name starts with this "
                                         "(case-insensitive).")
    include_deleted: bool = Field(default=False, description="Also list soft-deleted groups.")


class GroupGetQuery(Schema):
    """Options of reading one group."""

    include_deleted: bool = Field(default=False,
                                  description="Also answer for a soft-deleted group.")


class MembersInput(Schema):
    """Agents to move into the group."""

    agent_ids: list[AgentId] = Field(min_length=1, max_length=1000)


class MembersResult(Schema):
    """What a membership change did."""

    group_id: str
    moved: list[str] = Field(description="Agents now in the group.")
    not_found: list[str] = Field(description="Ids with no agent in this tenant.")
