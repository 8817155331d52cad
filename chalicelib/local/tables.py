"""The local stack's DynamoDB: every model's table on moto, and snapshots that outlive a restart.

Tables are created from the pynamodb models themselves (keys, indexes, stream,
TTL), exactly as infra deploys them. A snapshot is every item of every table in
DynamoDB JSON, written to a temp file and renamed, so a crash never leaves a
half-written snapshot behind.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from chalicelib.local.state import atomic_write

SNAPSHOT_FILE = "dynamodb.json"
SNAPSHOT_VERSION = 1
_BATCH = 25


def encode_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB JSON item made JSON-safe: binary (``B``/``BS``) values become base64 text."""
    return {name: _convert(value, _to_text) for name, value in item.items()}


def decode_item(item: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`encode_item`."""
    return {name: _convert(value, base64.b64decode) for name, value in item.items()}


def _to_text(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def _convert(attribute: dict[str, Any], binary: Any) -> dict[str, Any]:
    """One attribute value (``{type: value}``) with its binary parts passed through ``binary``."""
    (kind, value), = attribute.items()
    if kind == "B":
        return {kind: binary(value)}
    if kind == "BS":
        return {kind: [binary(v) for v in value]}
    if kind == "M":
        return {kind: {k: _convert(v, binary) for k, v in value.items()}}
    if kind == "L":
        return {kind: [_convert(v, binary) for v in value]}
    return {kind: value}


def _scan(client: Any, table: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def dump(client: Any, tables: Iterable[str]) -> dict[str, Any]:
    """Every item of ``tables`` as a JSON-safe snapshot document."""
    return {
        "version": SNAPSHOT_VERSION,
        "savedAt": int(time.time()),
        "tables": {t: [encode_item(item) for item in _scan(client, t)] for t in tables},
    }


def save(client: Any, tables: Iterable[str], home: Path) -> int:
    """Write the snapshot of ``tables`` under ``home`` atomically; the number of items."""
    document = dump(client, tables)
    atomic_write(home / SNAPSHOT_FILE, json.dumps(document, separators=(",", ":")).encode())
    return sum(len(items) for items in document["tables"].values())


def read_snapshot(home: Path) -> dict[str, list[dict[str, Any]]]:
    """The tables of the snapshot under ``home`` (empty when there is none yet)."""
    path = home / SNAPSHOT_FILE
    if not path.exists():
        return {}
    document = json.loads(path.read_bytes())
    if not isinstance(document, dict) or document.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"{path} is not a version-{SNAPSHOT_VERSION} Ampora snapshot")
    tables = document.get("tables") or {}
    return {name: [decode_item(i) for i in items] for name, items in tables.items()}


def restore(client: Any, snapshot: dict[str, list[dict[str, Any]]], tables: Iterable[str]
            ) -> tuple[int, list[str]]:
    """Load the snapshot's items into the existing ``tables``; (items loaded, tables skipped)."""
    known = set(tables)
    loaded, skipped = 0, []
    for table, items in snapshot.items():
        if table not in known:
            skipped.append(table)
            continue
        for start in range(0, len(items), _BATCH):
            _write_batch(client, table, items[start:start + _BATCH])
        loaded += len(items)
    return loaded, skipped


def _write_batch(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    requests = {table: [{"PutRequest": {"Item": item}} for item in items]}
    while requests:
        result = client.batch_write_item(RequestItems=requests)
        requests = result.get("UnprocessedItems") or {}
