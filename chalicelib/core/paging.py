"""Paging shared by every list: ``limit`` with ``offset`` or an opaque, signed ``cursor``.

Cursors are tamper-evident (HMAC-SHA256 over the position and the query they
belong to), so a cursor only continues the same list, for the same tenant,
with the same filters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from chalicelib.core.problems import AmporaError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
PAGING_PARAMS = ("limit", "offset", "cursor")


def _invalid(detail: str) -> AmporaError:
    return AmporaError(detail, slug="invalid-paging")


@dataclass(frozen=True)
class PageRequest:
    """What the caller asked for: how many, and from where."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    cursor: str | None = None
    #: What a cursor of this list is bound to (tenant, path, filters).
    scope: str = ""
    #: The key cursors are signed with.
    secret: bytes = field(default=b"", repr=False)

    def start(self) -> Any:
        """The position the cursor points after (``None`` without a cursor)."""
        if self.cursor is None:
            return None
        return decode_cursor(self.cursor, scope=self.scope, secret=self.secret)

    def cursor_for(self, position: Any) -> str:
        """A cursor continuing this list after ``position``."""
        return encode_cursor(position, scope=self.scope, secret=self.secret)


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise _invalid(f"{name} must be a non-negative integer")
    return int(raw)


def parse_page(query: Mapping[str, str]) -> PageRequest:
    """Read ``limit``, ``offset`` and ``cursor``; 400 when out of range or combined."""
    limit = _int_param(query, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid(f"limit must be within 1..{MAX_LIMIT}")
    if "offset" in query and "cursor" in query:
        raise _invalid("use either offset or cursor, not both")
    cursor = query.get("cursor")
    if cursor is not None and not cursor:
        raise AmporaError("cursor is empty", slug="invalid-cursor")
    return PageRequest(limit=limit, offset=_int_param(query, "offset", 0), cursor=cursor)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the total and where the next page starts."""

    items: list[T]
    total: int
    next_offset: int | None = None
    next_cursor: str | None = None

    def map(self, fn: Callable[[T], Any]) -> Page[Any]:
        """The same page with each item transformed."""
        return Page([fn(i) for i in self.items], self.total, self.next_offset, self.next_cursor)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, scope: str, payload: bytes) -> str:
    digest = hmac.new(secret, scope.encode() + b"\x00" + payload, hashlib.sha256).digest()
    return _b64(digest[:16])


def encode_cursor(position: Any, *, scope: str, secret: bytes) -> str:
    """An opaque cursor for ``position`` within the list identified by ``scope``."""
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_mac(secret, scope, payload)}"


def decode_cursor(cursor: str, *, scope: str, secret: bytes) -> Any:
    """The position inside ``cursor``; 400 if it was altered or belongs to another list."""
    try:
        body, tag = cursor.split(".")
        payload = _unb64(body)
    except (ValueError, binascii.Error) as exc:
        raise AmporaError("cursor is not one this API issued", slug="invalid-cursor") from exc
    if not hmac.compare_digest(tag, _mac(secret, scope, payload)):
        raise AmporaError("cursor is not valid for this list", slug="invalid-cursor")
    return json.loads(payload)


def scope_of(tenant: str, path: str, filters: Mapping[str, Any]) -> str:
    """What a cursor is bound to: tenant, list path and the filter values."""
    kept = {k: v for k, v in sorted(filters.items()) if k not in PAGING_PARAMS and v is not None}
    return f"{tenant}|{path}|{urlencode(kept, doseq=True)}"


def take_page(
    items: Iterator[T], page: PageRequest, *, total: int, position_of: Callable[[T], Any],
    skip: int = 0,
) -> Page[T]:
    """Cut one page from ``items`` (already positioned at the cursor, if any).

    Reads one item past the page to know whether more remain; the next cursor
    is the position of the page's last item.
    """
    got = list(islice(islice(items, skip, None), page.limit + 1))
    more = len(got) > page.limit
    got = got[: page.limit]
    if not more:
        return Page(got, total)
    if page.cursor is None and page.offset:
        return Page(got, total, next_offset=page.offset + page.limit)
    return Page(got, total, next_cursor=page.cursor_for(position_of(got[-1])))


def page_of_list(values: Iterable[T], page: PageRequest, *, key: Callable[[T], Any]) -> Page[T]:
    """Page an in-memory sequence sorted by ``key`` (the cursor is the last item's key)."""
    ordered = list(values)
    start = page.offset
    after = page.start()
    if after is not None:
        start = next((i for i, v in enumerate(ordered) if key(v) > after), len(ordered))
    return take_page(iter(ordered[start:]), page, total=len(ordered), position_of=key)
