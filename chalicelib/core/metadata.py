"""Pure rules shared by the named, labelled resources (groups, configurations): how names
compare, and how a JSON merge patch changes labels."""

from __future__ import annotations

from chalicelib.core.problems import ValidationFailed

#: At most this many labels on one resource.
MAX_LABELS = 64


def name_key(name: str) -> str:
    """The form of a name that uniqueness and prefix filters compare (case-insensitive)."""
    return name.casefold()


def merge_labels(current: dict[str, str], patch: dict[str, str | None] | None,
                 owner: str = "resource") -> dict[str, str]:
    """``current`` after an RFC 7396 merge of ``patch``: null removes a label, or all of them.

    More than :data:`MAX_LABELS` is a validation failure that names the ``owner``'s kind.
    """
    merged = dict(current) if patch is not None else {}
    for key, value in (patch or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_LABELS:
        raise ValidationFailed([{"pointer": "/labels",
                                 "detail": f"a {owner} has at most {MAX_LABELS} labels"}])
    return merged
