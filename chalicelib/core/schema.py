"""Base classes for request and response schemas: camelCase on the wire, nothing unknown."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from chalicelib.core import selectors
from chalicelib.core.problems import ValidationFailed

#: A character that is not a control character.
PRINTABLE = r"[^\x00-\x1f\x7f]"
#: A name operators see: no control characters, and no spaces at either end.
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
#: A resource's free-text description.
Description = Annotated[str, Field(max_length=1000)]


def _selector(value: str) -> str:
    selectors.parse(value)
    return value


#: A label selector query parameter, checked when parsed (``env=prod,tier!=edge``).
LabelSelector = Annotated[str, AfterValidator(_selector), Field(
    max_length=1000, description="Label selector, e.g. 'env=prod,tier!=edge'.")]


class Schema(BaseModel):
    """A wire schema: camelCase aliases, unknown fields rejected, values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=False,
        defer_build=True,
        field_title_generator=lambda name, _info: name.replace("_", " ").capitalize(),
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form, with wire (camelCase) names."""
        return self.model_dump(mode="json", by_alias=True)


class Actor(Schema):
    """Who did something: a user (OIDC subject) or a personal access token."""

    type: Literal["user", "pat"]
    id: str
    name: str


def pointer(loc: tuple[int | str, ...]) -> str:
    """The JSON Pointer (RFC 6901) of a pydantic error location."""
    parts = (str(part).replace("~", "~0").replace("/", "~1") for part in loc)
    return "".join(f"/{part}" for part in parts)


def error_list(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``{pointer, detail}`` items, without echoing input values."""
    return [{"pointer": pointer(err["loc"]), "detail": err["msg"]} for err in exc.errors()]


def validate(model: type[Schema], data: Any) -> Any:
    """``data`` validated as ``model``, or a 422 problem listing every failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(error_list(exc)) from exc
