"""``vendorkit collect --shard K/N``: which pages of a listing shard K of N collects.

Shard K takes the pages whose offset from the listing's first page is K - 1 modulo N
(shard 2/3 of a listing counted from 1: pages 2, 5, 8...), so N processes, on one host or
many, each asking only for their own pages, together write every item once. Every shard
asks its pages in the same page size; a server that serves another size than asked is
asked again in the size it serves, so the shards share the server's page grid.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs

from ..pagination import Page

__all__ = ["Shard"]

logger = logging.getLogger("vendorkit")

#: Fetches page ``index`` of the listing in ``size`` items a page.
Fetch = Callable[[int, int], Awaitable[Page[Any]]]


@attrs.frozen
class Shard:
    """Shard ``index`` (from 1) of ``count``; ``Shard()`` is the whole listing."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"``; a ValueError that says what is wrong with anything else."""
        k, slash, n = text.strip().partition("/")
        try:
            index, count = int(k), int(n)
        except ValueError:
            raise ValueError(f"expected K/N, shard K of N (e.g. 2/8), got {text!r}") from None
        if not slash or count < 1:
            raise ValueError(f"expected K/N with N at least 1, got {text!r}")
        if not 1 <= index <= count:
            raise ValueError(f"there is no shard {index} of {count}: K counts from 1 to N "
                             f"(1/{count} ... {count}/{count})")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def start(self, first: int) -> int:
        """The index of this shard's first page, in a listing whose first page is ``first``."""
        return first + self.index - 1

    def items(self, total: int, size: int) -> int:
        """How many of a listing's ``total`` items fall in this shard's pages of ``size``."""
        pages = -(-total // size)
        owned = range(self.index - 1, pages, self.count)
        items = len(owned) * size
        if owned and owned[-1] == pages - 1:
            items -= pages * size - total  # the last page of the listing is short
        return items

    async def pages(self, fetch: Fetch, *, first: int, start: int,
                    size: int) -> AsyncIterator[Page[Any]]:
        """This shard's pages from page ``start`` (one of its own) to the listing's end."""
        index, previous = start, None
        while True:
            page = await fetch(index, size)
            if page.page_size != size:  # the server's grid: ask in it from now on
                size = page.page_size
                if index != first:  # only the first page is the same in either grid
                    page = await fetch(index, size)
            if previous is not None and page.items and page.items == previous.items:
                logger.warning("collect: page %d repeats page %d: the server ignores the page "
                               "index; stopping", index, index - self.count)
                return
            yield page
            index += self.count
            if not page.has_next or (page.total is not None
                                     and (index - first) * page.page_size >= page.total):
                return
            previous = page
