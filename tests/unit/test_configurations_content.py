"""Configuration content: parsing per content type with error positions, size, hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.configurations import content
from chalicelib.configurations.content import ContentError, ContentTooLarge
from chalicelib.core.settings import CONFIGURATION_BYTES_CAP, Settings, SettingsError

YAML, JSON, TEXT = content.YAML, content.JSON, content.TEXT
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("content_type", "text", "document"), [
    (YAML, "receivers:\n  otlp: {}\n", {"receivers": {"otlp": {}}}),
    (YAML, "a: &x [1, 2]\nb: *x\n", {"a": [1, 2], "b": [1, 2]}),
    (YAML, "", None),
    (YAML, "# only a comment\n", None),
    (YAML, "é: ü\n", {"é": "ü"}),
    (YAML, "---\na: 1\n...\n", {"a": 1}),
    (JSON, '{"a": [1, 2.5, true, null, "x"]}', {"a": [1, 2.5, True, None, "x"]}),
    (JSON, '  "NaN"  ', "NaN"),
    (JSON, '{"note": "Infinity \\" NaN"}', {"note": 'Infinity " NaN'}),
    (TEXT, "anything: [at all\n{", "anything: [at all\n{"),
    (TEXT, "", ""),
])
def test_valid_content_parses_as_its_type(content_type: str, text: str, document: Any) -> None:
    assert content.parse(content_type, text) == document


def test_yaml_tags_that_run_code_are_refused() -> None:
    # Given YAML asking for a Python object / Then the safe loader refuses it with its place
    with pytest.raises(ContentError) as caught:
        content.parse(YAML, "a: 1\nb: !!python/object/apply:os.system ['true']\n")
    assert (caught.value.line, caught.value.column) == (2, 4)


@pytest.mark.parametrize(("content_type", "text", "line", "column"), [
    (YAML, "receivers:\n  otlp:\n    endpoint: a: b\n", 3, 16),
    (YAML, "receivers:\n  otlp: {}\n   bad: [1, 2\n", 3, 4),
    (YAML, "a: [1, 2\nb: 3\n", 2, 2),
    (YAML, "a: 1\nb: *undefined\n", 2, 4),
    (YAML, "a: 1\n---\nb: 2\n", 2, 1),
    (YAML, "key: 'unterminated\n", 2, 1),
    (YAML, "a:\n\tb: 1\n", 2, 1),
    (YAML, "é: 1\nok: 2\nbad: \x07\n", 3, 6),
    (JSON, "", 1, 1),
    (JSON, '{"a": 1,}', 1, 9),
    (JSON, '{\n  "a": 1\n  "b": 2\n}', 3, 3),
    (JSON, '{"a": [1, 2}', 1, 12),
    (JSON, '{"a": 1} {"b": 2}', 1, 10),
    (JSON, '{"a": NaN}', 1, 7),
    (JSON, '{"NaN": "x",\n "b": -Infinity}', 2, 7),
    (JSON, '["Infinity", Infinity]', 1, 14),
])
def test_unparseable_content_names_line_and_column(content_type: str, text: str, line: int,
                                                   column: int) -> None:
    with pytest.raises(ContentError) as caught:
        content.parse(content_type, text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert f"line {line}, column {column}" in str(caught.value)


def test_yaml_aliases_that_expand_too_far_are_refused() -> None:
    # Given a "billion laughs" document: nine levels of nine aliases
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    # When it is parsed / Then it is refused rather than walked
    with pytest.raises(ContentError, match="expands to more than"):
        content.parse(YAML, "\n".join(lines) + "\n")


def test_a_recursive_yaml_document_is_refused() -> None:
    with pytest.raises(ContentError):
        content.parse(YAML, "a: &a [*a]\n")


def nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_maps(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("content_type", [YAML, JSON])
@pytest.mark.parametrize("text", [nested_lists(201), nested_maps(201), nested_lists(50_000),
                                  nested_maps(50_000)], ids=["lists", "maps", "lists-50k",
                                                             "maps-50k"])
def test_documents_nesting_too_deep_are_refused(content_type: str, text: str) -> None:
    # Given a document nested deeper than the limit (or than the parser itself can go)
    # When parsed / Then it is refused, never a crash
    with pytest.raises(ContentError):
        content.parse(content_type, text)


@pytest.mark.parametrize("content_type", [YAML, JSON])
def test_documents_nesting_to_the_limit_parse(content_type: str) -> None:
    assert content.parse(content_type, nested_lists(200)) is not None
    assert content.parse(content_type, nested_maps(200)) is not None


def test_text_that_is_not_unicode_is_refused_with_its_place() -> None:
    # Given text with an unpaired surrogate (JSON can carry "\ud800")
    text = json.loads('"line one\\nab\\ud800"')
    # When it is encoded / Then it is refused, with the place of the surrogate
    with pytest.raises(ContentError) as caught:
        content.validate(TEXT, text, 1024)
    assert (caught.value.line, caught.value.column) == (2, 3)


@pytest.mark.parametrize(("text", "limit", "fits"), [
    ("", 1, True),
    ("abc", 3, True),
    ("abcd", 3, False),
    ("é", 2, True),  # two bytes in UTF-8
    ("éa", 2, False),
    ("€" * 10, 30, True),
    ("€" * 10, 29, False),
])
def test_size_counts_utf8_bytes(text: str, limit: int, fits: bool) -> None:
    if fits:
        assert content.validate(TEXT, text, limit) == text.encode()
        return
    with pytest.raises(ContentTooLarge) as caught:
        content.validate(TEXT, text, limit)
    assert (caught.value.size, caught.value.limit) == (len(text.encode()), limit)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(ContentTooLarge):
        content.validate(YAML, "a: [" * 100, 10)


@pytest.mark.parametrize(("body", "hex_digest"), [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
])
def test_digest_is_sha256(body: bytes, hex_digest: str) -> None:
    assert content.digest(body).hex() == hex_digest
    assert len(content.digest(body)) == 32 == hashlib.sha256().digest_size


@pytest.mark.parametrize(("text", "offset", "place"), [
    ("abc", 0, (1, 1)), ("abc", 2, (1, 3)), ("a\nbc", 2, (2, 1)), ("a\nbc", 3, (2, 2)),
    ("\n\n", 2, (3, 1)),
])
def test_position_counts_lines_and_columns_from_one(text: str, offset: int,
                                                    place: tuple[int, int]) -> None:
    assert content.position(text, offset) == place


def test_every_content_type_has_a_default_file_name() -> None:
    assert set(content.DEFAULT_FILE_NAMES) == set(content.CONTENT_TYPES)


def test_an_unknown_content_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown content type"):
        content.parse("application/xml", "<a/>")


@pytest.mark.parametrize(("env", "expected"), [
    ({}, 262_144),
    ({"AMPORA_MAX_CONFIGURATION_BYTES": "1024"}, 1_024),
    ({"AMPORA_MAX_CONFIGURATION_BYTES": str(CONFIGURATION_BYTES_CAP)}, CONFIGURATION_BYTES_CAP),
])
def test_the_size_limit_is_a_setting(env: dict[str, str], expected: int) -> None:
    assert Settings.from_env(env).max_configuration_bytes == expected


@pytest.mark.parametrize("raw", ["1023", str(CONFIGURATION_BYTES_CAP + 1), "big"])
def test_the_size_limit_stays_within_what_one_item_holds(raw: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"AMPORA_MAX_CONFIGURATION_BYTES": raw})
    assert CONFIGURATION_BYTES_CAP < 400 * 1024


def test_content_loads_yaml_only_when_it_parses_yaml() -> None:
    code = ("import sys; from chalicelib.configurations import content; "
            "assert 'yaml' not in sys.modules; content.parse('application/json', '{}'); "
            "assert 'yaml' not in sys.modules; content.parse('application/yaml', 'a: 1'); "
            "assert 'yaml' in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
