"""The base of every pynamodb model: table naming, region, and the table registry.

Every model is declared with :func:`table`, so the local stack creates each table
and infra deploys each one with the same keys and indexes.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pynamodb.models import Model

from chalicelib.core import selectors
from chalicelib.core.paging import MAX_LIMIT, Page, PageRequest, take_page
from chalicelib.core.settings import settings

M = TypeVar("M", bound=type[Model])

#: Every table model, in declaration order.
MODELS: list[type[Model]] = []


def table_name(short: str) -> str:
    """The deployed name of the table called ``short``."""
    return f"{settings().table_prefix}{short}"


def table(model: M) -> M:
    """Register ``model`` as a table (class decorator)."""
    meta = model.Meta  # type: ignore[attr-defined]
    meta.region = settings().region
    meta.billing_mode = "PAY_PER_REQUEST"
    MODELS.append(model)
    return model


def ttl_attribute(model: type[Model]) -> str | None:
    """The name of ``model``'s TTL attribute, if it has one."""
    for name, attribute in model.get_attributes().items():
        if type(attribute).__name__ == "TTLAttribute":
            return attribute.attr_name or name
    return None


def _key_names(model: type[Model], index: Any | None) -> list[str]:
    names = [model._hash_keyname, model._range_keyname]
    if index is not None:
        for attribute in (index._hash_key_attribute(), index._range_key_attribute()):
            if attribute is not None:
                names.append(attribute.attr_name)
    return [n for n in dict.fromkeys(names) if n]


def position_of(item: Model, index: Any | None = None) -> dict[str, Any]:
    """The DynamoDB key (``ExclusiveStartKey`` form) of ``item`` within a table or index."""
    serialized = item.serialize()
    return {name: serialized[name] for name in _key_names(type(item), index)}


def query_page(
    model: type[Model],
    hash_key: Any,
    page: PageRequest,
    *,
    range_key_condition: Any = None,
    filter_condition: Any = None,
    index: Any | None = None,
    newest_first: bool = False,
) -> Page[Any]:
    """One page of a partition (of a table or index), with the total that matches."""
    source = index if index is not None else model
    start = page.start()
    total = source.count(
        hash_key, range_key_condition=range_key_condition, filter_condition=filter_condition
    )
    items = source.query(
        hash_key,
        range_key_condition=range_key_condition,
        filter_condition=filter_condition,
        scan_index_forward=not newest_first,
        last_evaluated_key=start,
        page_size=min(page.limit + 1 + page.offset, MAX_LIMIT),
    )
    return take_page(
        iter(items), page, total=total, skip=page.offset if start is None else 0,
        position_of=lambda item: position_of(item, index),
    )


_connection: Any = None


def _shared_connection() -> Any:
    """One pynamodb connection per process: a new one would rebuild its botocore client."""
    global _connection
    if _connection is None:
        from pynamodb.connection import Connection

        _connection = Connection(region=settings().region)
    return _connection


def transaction() -> Any:
    """A DynamoDB transaction (use as a context manager; it commits on exit)."""
    from pynamodb.transactions import TransactWrite

    return TransactWrite(connection=_shared_connection())


def condition_failed(exc: Exception) -> bool:
    """Whether a pynamodb write failed because its condition did not hold."""
    if exc.__class__.__name__ == "TransactWriteError":
        reasons = getattr(exc, "cancellation_reasons", None) or []
        return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def transact(build: Any) -> dict[str, str]:
    """Run the transaction ``build(tx)`` adds its operations to; ``{}`` once committed, or
    why it was cancelled, by table (see :func:`cancelled`). Other errors are raised."""
    from pynamodb.exceptions import TransactWriteError

    tx = transaction()
    try:
        with tx:
            build(tx)
    except TransactWriteError as exc:
        found = cancelled(exc, tx)
        if not found:
            raise
        return found
    return {}


def cancelled(exc: Exception, tx: Any) -> dict[str, str]:
    """Why the transaction ``tx`` was cancelled: by the table of each operation that caused
    it (``ConditionalCheckFailed``, ``TransactionConflict``...); empty for other errors.

    DynamoDB answers one reason per operation, in the order sent, and pynamodb sends condition
    checks, deletes, puts and updates in that order, whatever the order they were added in.
    """
    reasons = getattr(exc, "cancellation_reasons", None) or []
    sent = [*tx._condition_check_items, *tx._delete_items, *tx._put_items, *tx._update_items]
    found: dict[str, str] = {}
    for operation, reason in zip(sent, reasons, strict=False):
        if reason is not None and reason.code not in (None, "None"):
            found.setdefault(str(operation["TableName"]), reason.code)
    return found


def create_tables(models: list[type[Model]] | None = None) -> list[str]:
    """Create each table (keys, indexes, stream, TTL) unless it exists; return their names.

    For the local stack and tests; in AWS, infra creates the same tables.
    """
    names = []
    for model in models or MODELS:
        model.create_table(wait=False, billing_mode="PAY_PER_REQUEST",
                           ignore_update_ttl_errors=False)
        names.append(model.Meta.table_name)
    return names


#: What an id Ampora mints (or a caller may name) looks like; anything else names no item.
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def find(model: Any, tenant: str, item_id: str) -> Any:
    """The tenant's item ``item_id`` (a consistent read), or None (also for a malformed id)."""
    if not ID.match(item_id):
        return None
    try:
        return model.get(tenant, item_id, consistent_read=True)
    except model.DoesNotExist:
        return None


def get_or_not_found(model: Any, tenant: str, item_id: str, what: str) -> Any:
    """The tenant's item ``item_id`` (a consistent read), or a 404 naming ``what``."""
    from chalicelib.core.problems import NotFound

    item = find(model, tenant, item_id)
    if item is None:
        raise NotFound(f"no {what} {item_id!r}")
    return item


def _requirement(labels: Any, requirement: selectors.Requirement) -> Any:
    path = labels[requirement.key]
    values = requirement.values
    return {
        "=": lambda: path == values[0],
        "!=": lambda: path.does_not_exist() | (path != values[0]),
        "exists": path.exists,
        "!exists": path.does_not_exist,
        "in": lambda: path.is_in(*values),
        "notin": lambda: path.does_not_exist() | ~path.is_in(*values),
    }[requirement.op]()


def label_conditions(labels: Any, selector: str | None) -> list[Any]:
    """The filter conditions of a label selector (``env=prod,tier!=edge``) over a model's map
    attribute ``labels``: one per requirement, all of which must hold."""
    return [_requirement(labels, r) for r in selectors.parse(selector or "")]
