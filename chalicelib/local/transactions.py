"""The local stack's DynamoDB transactions: moto's, rolled back by item instead of by table.

To make ``TransactWriteItems`` atomic, moto deep-copies every table a transaction
touches before running it and puts the copies back if it is cancelled. That costs
time in proportion to the tables' size, so a local stack slows down as its fleet
grows (enrolling an agent is two transactions). Here the items a transaction
touches are saved before it runs and, if it fails, written back as they were;
moto's whole-table copy is skipped for the duration of the call. Conditions,
cancellation reasons and errors are still moto's own.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

_in_transaction = threading.local()


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _before(backend: Any, transact_items: list[dict[str, Any]]
            ) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(table, key, item as DynamoDB JSON or None) of each item the transaction touches."""
    saved = []
    for entry in transact_items:
        try:
            (op_type, op), = entry.items()
            key = _key(backend, op_type, op)
            current = backend.get_item(op["TableName"], key)
        except Exception:  # noqa: BLE001, S112 - moto itself reports a malformed operation
            continue
        saved.append((op["TableName"], key,
                      None if current is None else current.to_json()["Attributes"]))
    return saved


def _restore(backend: Any, saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]]
             ) -> None:
    for table_name, key, attrs in reversed(saved):
        if attrs is None:
            backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, attrs)


def _table_deepcopy(table: Any, memo: dict[int, Any]) -> Any:
    """Within a transaction, moto's backup of a table is the table itself; otherwise a true
    deep copy (as ``copy.deepcopy`` makes of any plain object)."""
    if getattr(_in_transaction, "active", False):
        return table
    kind: Any = type(table)
    clone = kind.__new__(kind)
    memo[id(table)] = clone
    for name, value in vars(table).items():
        setattr(clone, name, copy.deepcopy(value, memo))
    return clone


def install() -> Callable[[], None]:
    """Make moto's DynamoDB transactions roll back by item; returns what undoes it."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "rolls_back_by_item", False):
        return lambda: None

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _before(self, transact_items)
        _in_transaction.active = True
        try:
            original(self, transact_items)
        except Exception:
            _restore(self, saved)
            raise
        finally:
            _in_transaction.active = False

    def uninstall() -> None:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        del Table.__deepcopy__  # type: ignore[attr-defined]

    transact_write_items.rolls_back_by_item = True  # type: ignore[attr-defined]
    Table.__deepcopy__ = _table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    return uninstall
