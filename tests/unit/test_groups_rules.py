"""Group rules and input shapes, table-driven: names, labels, merge patches, member ids."""

from __future__ import annotations

import pytest

from chalicelib.core.metadata import MAX_LABELS, merge_labels, name_key
from chalicelib.core.problems import ValidationFailed
from chalicelib.core.schema import validate
from chalicelib.groups.schemas import GroupCreate, GroupPatch, MembersInput


@pytest.mark.parametrize(("a", "b", "same"), [
    ("web", "WEB", True),
    ("Straße", "STRASSE", True),
    ("web", "web ", False),
    ("web-eu", "web_eu", False),
])
def test_names_compare_case_insensitively(a: str, b: str, same: bool) -> None:
    assert (name_key(a) == name_key(b)) is same


@pytest.mark.parametrize(("current", "patch", "expected"), [
    ({"env": "prod"}, {}, {"env": "prod"}),
    ({"env": "prod"}, {"env": "dev"}, {"env": "dev"}),
    ({"env": "prod", "tier": "edge"}, {"tier": None}, {"env": "prod"}),
    ({"env": "prod"}, {"absent": None, "team": "sre"}, {"env": "prod", "team": "sre"}),
    ({"env": "prod"}, None, {}),
])
def test_labels_merge_as_rfc_7396(current, patch, expected) -> None:
    assert merge_labels(current, patch) == expected


def test_merge_beyond_the_label_limit_is_refused() -> None:
    current = {f"k{i}": "v" for i in range(MAX_LABELS)}
    assert len(merge_labels(current, {"k0": None, "new": "v"})) == MAX_LABELS
    with pytest.raises(ValidationFailed) as raised:
        merge_labels(current, {"one-more": "v"}, "group")
    assert raised.value.extensions["errors"][0] == {
        "pointer": "/labels", "detail": f"a group has at most {MAX_LABELS} labels"}


@pytest.mark.parametrize(("name", "valid"), [
    ("web", True),
    ("Edge nodes (EU) — 2", True),
    ("x" * 100, True),
    ("", False),
    ("x" * 101, False),
    (" web", False),
    ("web ", False),
    ("we\nb", False),
    ("we\x7fb", False),
])
def test_group_names(name: str, valid: bool) -> None:
    assert _valid(GroupCreate, {"name": name}) is valid


@pytest.mark.parametrize(("labels", "valid"), [
    ({"env": "prod"}, True),
    ({"app.kubernetes.io/name": "otel"}, True),
    ({"env": ""}, True),
    ({"k" * 63: "v"}, True),
    ({"k" * 64: "v"}, False),
    ({"-env": "v"}, False),
    ({"env=prod": "v"}, False),
    ({"": "v"}, False),
    ({"env": "v" * 256}, True),
    ({"env": "v" * 257}, False),
    ({"env": "line\nbreak"}, False),
    ({f"k{i}": "v" for i in range(MAX_LABELS + 1)}, False),
])
def test_group_labels(labels: dict, valid: bool) -> None:
    assert _valid(GroupCreate, {"name": "web", "labels": labels}) is valid


@pytest.mark.parametrize(("patch", "valid"), [
    ({}, True),
    ({"description": None}, True),
    ({"labels": None}, True),
    ({"labels": {"env": None}}, True),
    ({"name": None}, False),
    ({"name": "ok", "deletedAt": None}, False),
])
def test_merge_patches(patch: dict, valid: bool) -> None:
    assert _valid(GroupPatch, patch) is valid


def test_a_patch_knows_which_fields_it_sets() -> None:
    given = validate(GroupPatch, {"description": None}).model_fields_set
    assert given == {"description"}


@pytest.mark.parametrize(("ids", "valid"), [
    (["ab" * 16], True),
    (["ab" * 16] * 1000, True),
    ([], False),
    (["ab" * 16] * 1001, False),
    (["AB" * 16], False),
    (["ab" * 15], False),
])
def test_member_ids(ids: list[str], valid: bool) -> None:
    assert _valid(MembersInput, {"agentIds": ids}) is valid


def _valid(schema, data) -> bool:
    try:
        validate(schema, data)
    except ValidationFailed:
        return False
    return True
