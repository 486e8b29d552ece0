"""``Page[T]``, tolerant page envelopes, and ``async for`` across all pages.

A page is read from any envelope of :mod:`vendorkit.envelope`, and where a listing ends
comes from the server's answer, never from the page size asked for (servers cap it):

1. an empty page is the end;
2. else the server's own ``hasNext`` / ``last`` / ``totalPages``, when it says;
3. else the items up to this page against the server's ``total``, counted in the page
   size the server used: the one it states (``pageSize``, ``size``), or, when it
   silently served another size, the one it served;
4. else a full page may have a successor.

:class:`Paginator` asks every next page in the page size the server used for the first,
so page indexes line up and every item comes once; if the server's ``total`` disagrees
with what the walk received, it logs one WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from .envelope import HAS_NEXT_KEYS, LAST_KEYS, PAGE_SIZE_KEYS, TOTAL_KEYS, TOTAL_PAGES_KEYS
from .models import as_int, find_list, structure_items

if TYPE_CHECKING:
    from .response import Response

__all__ = ["Page", "Paginator", "parse_page"]

T = TypeVar("T")

logger = logging.getLogger("vendorkit")

Scopes = Sequence[Mapping[str, Any]]


@attrs.frozen(slots=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    #: Items in the whole listing, when the server says.
    total: int | None
    #: The page's index as the vendor counts (CloudCX from 1, Spring-style APIs from 0).
    page_index: int
    #: The page size the server used: the one it states, else the one it evidently
    #: served, else the one asked for.
    page_size: int
    has_next: bool
    #: Raw items that could not be read as the item type at all (logged); never lost.
    skipped: list[Any] = attrs.field(factory=list)

    def __len__(self) -> int:
        return len(self.items)


def _number(scopes: Scopes, keys: tuple[str, ...], *, minimum: int) -> int | None:
    for scope in scopes:
        for name in keys:
            value = scope.get(name)
            if value is None:
                continue
            try:
                number = as_int(value)
            except TypeError:
                continue
            if number >= minimum:
                return number
    return None


def _flag(scopes: Scopes, keys: tuple[str, ...]) -> bool | None:
    for scope in scopes:
        for name in keys:
            value = scope.get(name)
            if isinstance(value, bool):
                return value
    return None


def _stated_next(scopes: Scopes, page_number: int) -> bool | None:
    """Whether a next page exists, as the server says it outright (None: it does not)."""
    has_next = _flag(scopes, HAS_NEXT_KEYS)
    if has_next is not None:
        return has_next
    last = _flag(scopes, LAST_KEYS)
    if last is not None:
        return not last
    pages = _number(scopes, TOTAL_PAGES_KEYS, minimum=0)
    return None if pages is None else page_number + 1 < pages


def parse_page(
    body: Any,
    item_type: type[T],
    *,
    page_index: int,
    page_size: int,
    first_index: int = 1,
    what: str = "page answer",
    response: Response | None = None,
) -> Page[T]:
    """Read a page from any known envelope, a bare JSON list, or one object.

    ``response``, when given, is carried by any :class:`ResponseParseError` raised.
    """
    raw, scopes = find_list(body, item_type, what=what, response=response)
    items, skipped = structure_items(raw, item_type, what=what)
    received = len(raw)
    page_number = page_index - first_index
    total = _number(scopes, TOTAL_KEYS, minimum=0)
    size = _number(scopes, PAGE_SIZE_KEYS, minimum=1)
    if size is None:
        size = page_size
        # Served another size than asked, without saying: a server that caps the size
        # (or ignores it). Not when this is, in the size asked, exactly the last page.
        served_other = received > page_size if total is None else (
            page_number * page_size + received != total)
        if received and received != page_size and served_other:
            size = received
    if not received:
        has_next = False
    else:
        stated = _stated_next(scopes, page_number)
        if stated is not None:
            has_next = stated
        elif total is not None:
            has_next = page_number * size + received < total
        else:
            has_next = received >= size > 0
    return Page(items, total, page_index, size, has_next, skipped)


class Paginator(Generic[T]):
    """``async for item in paginator`` walks every item; ``paginator.pages()`` every page.

    ``fetch(page_index, page_size)`` gets one page. Pages are fetched one at a time, as
    the caller consumes them: memory stays constant however long the listing.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], Awaitable[Page[T]]],
        *,
        first_index: int,
        page_size: int,
        what: str = "listing",
    ) -> None:
        self._fetch = fetch
        self._first_index = first_index
        self._page_size = page_size
        self._what = what

    async def pages(self, *, start: int | None = None) -> AsyncIterator[Page[T]]:
        """Every page, from page ``start`` (default: the first), to resume a walk."""
        index = self._first_index if start is None else start
        size = self._page_size
        offset: int | None = None  # items before the walk's first page, in the server's size
        received = 0
        total: int | None = None
        previous: Page[T] | None = None
        while True:
            page = await self._fetch(index, size)
            if offset is None:
                size = page.page_size  # asked from now on, so that page indexes line up
                offset = (index - self._first_index) * size
            if previous is not None and page.items and (page.items, page.skipped) == (
                    previous.items, previous.skipped):
                logger.warning("%s: page %d repeats page %d: the server ignores the page "
                               "index; stopping", self._what, index, index - 1)
                return
            yield page
            received += len(page.items) + len(page.skipped)
            total = page.total if page.total is not None else total
            if not page.has_next:
                break
            previous = page
            index += 1
        if total is not None and offset + received != total:
            logger.warning("%s: the server's total is %d items but the listing ended after "
                           "%d", self._what, total, offset + received)

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item
