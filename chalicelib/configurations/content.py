"""Configuration content: the content types Ampora accepts, parsing with the error's position,
the size bound and the SHA-256 hash (which is also the OpAMP ``config_hash``).

Pure: no I/O. PyYAML is imported only by the function that parses YAML, so a process that
never parses YAML never loads it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

YAML = "application/yaml"
JSON = "application/json"
TEXT = "text/plain"
#: Every content type a configuration may have.
CONTENT_TYPES = (YAML, JSON, TEXT)
#: The content types parsed into a document (and so compared by key path).
STRUCTURED = (YAML, JSON)
#: The file name agents receive when a configuration names none, by content type.
DEFAULT_FILE_NAMES = {YAML: "config.yaml", JSON: "config.json", TEXT: "config.txt"}
#: A document may hold at most this many values, counting each use of a YAML alias.
MAX_VALUES = 100_000
#: A document may nest at most this deep.
MAX_DEPTH = 200


class ContentError(ValueError):
    """The content does not parse as its content type.

    ``line`` and ``column`` (both from 1) locate the error when it has a place.
    """

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.line = line
        self.column = column


class ContentTooLarge(ValueError):
    """The content is larger than the deployment allows."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the content is {size} bytes; at most {limit} are allowed")
        self.size = size
        self.limit = limit


def position(text: str, offset: int) -> tuple[int, int]:
    """The line and column (both from 1) of the character at ``offset`` in ``text``."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def encode(text: str) -> bytes:
    """The UTF-8 bytes of ``text``: what is stored, hashed and delivered to agents."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line, column = position(text, exc.start)
        raise ContentError("not Unicode text (an unpaired surrogate)", line, column) from exc


def check_size(body: bytes, limit: int) -> None:
    """Refuse ``body`` if it is larger than ``limit`` bytes."""
    if len(body) > limit:
        raise ContentTooLarge(len(body), limit)


def digest(body: bytes) -> bytes:
    """The SHA-256 of ``body`` (32 bytes): the content hash and the OpAMP ``config_hash``."""
    return hashlib.sha256(body).digest()


def parse(content_type: str, text: str) -> Any:
    """The document ``text`` holds as ``content_type`` (plain text is its own document)."""
    if content_type == YAML:
        document = _yaml(text)
    elif content_type == JSON:
        document = _json(text)
    elif content_type == TEXT:
        return text
    else:
        raise ValueError(f"unknown content type {content_type!r}")
    _check_shape(document)
    return document


def validate(content_type: str, text: str, limit: int) -> bytes:
    """The body of ``text`` once it fits in ``limit`` bytes and parses as ``content_type``."""
    body = encode(text)
    check_size(body, limit)
    parse(content_type, text)
    return body


# --- YAML ------------------------------------------------------------------------------------


def _yaml(text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader (C or Python)
    except yaml.MarkedYAMLError as exc:
        raise _marked(exc) from exc
    except yaml.reader.ReaderError as exc:
        offset = text.find(chr(exc.character)) if isinstance(exc.character, int) else -1
        line, column = position(text, offset) if offset >= 0 else (None, None)
        raise ContentError(f"YAML: {exc.reason}", line, column) from exc
    except RecursionError as exc:
        raise ContentError(f"YAML: nested deeper than {MAX_DEPTH} levels") from exc


def _marked(exc: Any) -> ContentError:
    mark = exc.problem_mark or exc.context_mark
    reason = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
    if mark is None:
        return ContentError(f"YAML: {reason}")
    return ContentError(f"YAML: {reason}", mark.line + 1, mark.column + 1)


# --- JSON ------------------------------------------------------------------------------------


class _NotJson(ValueError):
    """A token Python's parser accepts but JSON does not (NaN, Infinity)."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def _json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ContentError(f"JSON: {exc.msg}", exc.lineno, exc.colno) from exc
    except _NotJson as exc:
        line, column = position(text, _constant_offset(text, str(exc)))
        raise ContentError(f"JSON: {exc} is not a JSON value", line, column) from exc
    except RecursionError as exc:
        raise ContentError(f"JSON: nested deeper than {MAX_DEPTH} levels") from exc


def _constant_offset(text: str, name: str) -> int:
    """Where ``name`` first appears outside a string of JSON ``text`` (0 if nowhere)."""
    in_string = escaped = False
    for offset, char in enumerate(text):
        if escaped:
            escaped = False
        elif in_string:
            escaped = char == "\\"
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif text.startswith(name, offset):
            return offset
    return 0


# --- shape -----------------------------------------------------------------------------------


def _check_shape(document: Any) -> None:
    """Refuse documents that expand too far (YAML aliases) or nest too deep."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ContentError(f"the document expands to more than {MAX_VALUES} values")
        if isinstance(value, dict | list) and depth > MAX_DEPTH:
            raise ContentError(f"the document nests deeper than {MAX_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value \
            if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)
