"""Wire schemas of personal access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field

from chalicelib.core.access import parse_endpoint
from chalicelib.core.schema import Actor, Schema

RoleName = Literal["Viewer", "Operator", "Admin"]


def _endpoint(entry: str) -> str:
    parse_endpoint(entry)
    return entry


Endpoint = Annotated[str, AfterValidator(_endpoint), Field(max_length=300)]


class ApiTokenCreate(Schema):
    """What a new token may do, and until when."""

    name: str = Field(min_length=1, max_length=100)
    role: RoleName
    allowed_endpoints: list[Endpoint] | None = Field(
        default=None, min_length=1, max_length=100,
        description="If set, the only endpoints the token may call, e.g. 'GET /api/agents'.")
    expires_at: AwareDatetime | None = None


class ApiToken(Schema):
    """A token as listed: never the secret."""

    id: str
    name: str
    role: RoleName
    status: Literal["active", "revoked", "expired"]
    hint: str = Field(description="The token's first characters, to recognise it.")
    allowed_endpoints: list[str] | None
    created_at: datetime
    created_by: Actor
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: Actor | None
    last_used_at: datetime | None


class ApiTokenCreated(ApiToken):
    """The answer to creation: the only time the token itself is shown."""

    token: str = Field(description="The bearer token. Shown once; store it now.")


class ApiTokenQuery(Schema):
    """Filters of the token list."""

    status: Literal["active", "revoked", "expired"] | None = None
