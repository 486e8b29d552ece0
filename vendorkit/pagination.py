"""``Page[T]``, tolerant page envelopes, and ``async for`` across all pages.

Vendors wrap a page in different envelopes, often undocumented: the items under
``list``, ``records``, ``items``, ``rows``, ``content`` or ``data``, possibly inside a
``data`` object; the total under ``total``, ``totalCount``, ``totalElements`` or
``count``. :func:`parse_page` reads any of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from .errors import ResponseParseError
from .models import structure

__all__ = ["Page", "Paginator", "parse_page"]

T = TypeVar("T")

ITEM_KEYS = ("list", "records", "items", "rows", "content", "data", "results")
TOTAL_KEYS = ("total", "totalCount", "totalElements", "total_count", "count")


@attrs.frozen(slots=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    #: Items in the whole listing, when the server says.
    total: int | None
    #: The page's index as the vendor counts (CloudCX from 1, Spring-style APIs from 0).
    page_index: int
    page_size: int
    has_next: bool

    def __len__(self) -> int:
        return len(self.items)


def find_items(body: Mapping[str, Any]) -> tuple[list[Any], Mapping[str, Any]] | None:
    for name in ITEM_KEYS:
        value = body.get(name)
        if isinstance(value, list):
            return value, body
    inner = body.get("data")
    if isinstance(inner, Mapping):
        return find_items(inner)
    return None


def _find_total(*scopes: Mapping[str, Any]) -> int | None:
    for scope in scopes:
        for name in TOTAL_KEYS:
            value = scope.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
    return None


def parse_page(
    body: Any, item_type: type[T], *, page_index: int, page_size: int, first_index: int = 1
) -> Page[T]:
    """Read a page from any known envelope (or a bare JSON list)."""
    scope: Mapping[str, Any]
    if isinstance(body, list):
        raw_items, scope = body, {}
    elif isinstance(body, Mapping):
        found = find_items(body)
        if found is None:
            keys = ", ".join(sorted(map(str, body))) or "none"
            raise ResponseParseError(f"page answer has no list of items (keys seen: {keys})")
        raw_items, scope = found
    else:
        raise ResponseParseError(f"page answer is a JSON {type(body).__name__}, not a page")
    items = [structure(item, item_type, what="page item") for item in raw_items]
    total = _find_total(scope, body) if isinstance(body, Mapping) else None
    if total is not None:
        has_next = (page_index - first_index + 1) * page_size < total and bool(items)
    else:
        has_next = len(items) >= page_size > 0
    return Page(items, total, page_index, page_size, has_next)


class Paginator(Generic[T]):
    """``async for item in paginator`` walks every item; ``paginator.pages()`` every page.

    Pages are fetched one at a time, as the caller consumes them: memory stays constant
    however long the listing.
    """

    def __init__(self, fetch: Callable[[int], Awaitable[Page[T]]], *, first_index: int) -> None:
        self._fetch = fetch
        self._first_index = first_index

    async def pages(self, *, start: int | None = None) -> AsyncIterator[Page[T]]:
        """Every page, from page ``start`` (default: the first), to resume a walk."""
        index = self._first_index if start is None else start
        while True:
            page = await self._fetch(index)
            yield page
            if not page.has_next:
                return
            index += 1

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item
