"""Wire schemas of bootstrap tokens and token pools."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from chalicelib.core.schema import PRINTABLE, Actor, Schema
from chalicelib.core.settings import settings
from chalicelib.enrollment.rules import MAX_USES

Status = Literal["active", "revoked", "expired", "exhausted"]
MAX_LABELS = 64

Name = Annotated[str, Field(min_length=1, max_length=100)]
GroupId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
LabelKey = Annotated[str, Field(
    min_length=1, max_length=63, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$")]
LabelValue = Annotated[str, Field(max_length=256, pattern=f"^{PRINTABLE}*$")]
Labels = Annotated[dict[LabelKey, LabelValue], Field(
    max_length=MAX_LABELS,
    description=f"Up to {MAX_LABELS} labels given to every agent the token enrolls.")]


def _within_max_ttl(value: int) -> int:
    maximum = settings().bootstrap_token_max_ttl_seconds
    if value > maximum:
        raise ValueError(f"must be at most {maximum} (AMPORA_BOOTSTRAP_TOKEN_MAX_TTL_SECONDS)")
    return value


Ttl = Annotated[int, Field(strict=True, ge=1, description=(
    "Lifetime in seconds (default 86400, at most the deployment's maximum)")),
    AfterValidator(_within_max_ttl)]
Uses = Annotated[int, Field(strict=True, ge=1, le=MAX_USES)]
GROUP_ID = "The group the enrolled agents land in (default: the tenant's default group)."


class BootstrapTokenCreate(Schema):
    """A new bootstrap token: where its agents land, how long and how often it enrolls."""

    name: Name
    group_id: GroupId | None = Field(default=None, description=GROUP_ID)
    labels: Labels = Field(default_factory=dict)
    ttl_seconds: Ttl | None = None
    max_uses: Uses = Field(default=1, description="How many agents the token may enroll.")


class BootstrapToken(Schema):
    """A bootstrap token as listed: never the secret."""

    id: str
    name: str
    status: Status
    hint: str = Field(description="The token's first characters, to recognise it.")
    group_id: str
    labels: dict[str, str]
    max_uses: int
    uses: int = Field(description="How many agents it enrolled.")
    pool_id: str | None = Field(description="The pool that issued it, if any.")
    created_at: datetime
    created_by: Actor
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: Actor | None
    last_used_at: datetime | None


class BootstrapTokenCreated(BootstrapToken):
    """The answer to issuing: the only time the token itself is shown."""

    token: str = Field(description="The bootstrap token. Shown once; store it now.")


class BootstrapTokenQuery(Schema):
    """Filters of the bootstrap token list."""

    status: Status | None = None
    group: GroupId | None = Field(default=None, description="Only tokens of this group.")


class TokenPoolCreate(Schema):
    """A template that issues bootstrap tokens on demand, at most ``quotaPerHour`` an hour."""

    name: Name
    group_id: GroupId | None = Field(default=None, description=GROUP_ID)
    labels: Labels = Field(default_factory=dict)
    ttl_seconds: Ttl | None = None
    uses_per_token: Uses = Field(default=1, description="maxUses of each token issued.")
    quota_per_hour: Annotated[int, Field(strict=True, ge=1, le=MAX_USES, description=(
        "How many tokens the pool may issue per UTC hour."))]


class TokenPool(Schema):
    """A token pool."""

    id: str
    name: str
    group_id: str
    labels: dict[str, str]
    ttl_seconds: int
    uses_per_token: int
    quota_per_hour: int
    created_at: datetime
    created_by: Actor


class TokenPoolIssue(Schema):
    """Optional details of one token issued by a pool."""

    name: Name | None = Field(default=None, description="Default: the pool's name.")
