"""Where the list is in a vendor's answer, and the keys that say how a listing is paged.

One home for these rules: typed lists (:mod:`vendorkit.models`) and pages
(:mod:`vendorkit.pagination`) read an answer the same way. Vendors wrap a list in
different envelopes, often undocumented: a bare list; the items under ``list``,
``records``, ``items``, ``rows``, ``content``, ``data`` or ``results``; that object itself
under ``data`` or ``result``, up to two levels down (``{"code": 0, "data": {"records":
[...]}}``). A JSON ``null`` where the list belongs (``{"data": null}``, ``{"data":
{"list": null}}``, or the whole answer) is an empty list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "HAS_NEXT_KEYS",
    "ITEM_KEYS",
    "LAST_KEYS",
    "PAGE_SIZE_KEYS",
    "TOTAL_KEYS",
    "TOTAL_PAGES_KEYS",
    "WRAPPER_KEYS",
    "Envelope",
    "open_envelope",
]

#: Keys that hold the list of items, in the order they are tried.
ITEM_KEYS = ("list", "records", "items", "rows", "content", "data", "results")
#: Keys that hold an object that holds the list (``{"code": 0, "data": {...}}``).
WRAPPER_KEYS = ("data", "result")
#: How many wrapper objects deep the list may be.
MAX_WRAPPERS = 2
#: Items in the whole listing.
TOTAL_KEYS = ("total", "totalCount", "totalElements", "total_count", "totalRecords", "count")
#: The page size the server used (which may be smaller than the one asked for).
PAGE_SIZE_KEYS = ("pageSize", "page_size", "size", "perPage", "per_page")
TOTAL_PAGES_KEYS = ("totalPages", "total_pages", "pageCount", "page_count")
HAS_NEXT_KEYS = ("hasNext", "has_next", "hasMore", "has_more")
#: True on the last page (Spring Data's ``last``).
LAST_KEYS = ("last", "isLast", "is_last")


@attrs.frozen(slots=True)
class Envelope:
    """What :func:`open_envelope` found in an answer."""

    #: The raw items; None when the answer holds no list (it may be a single object).
    items: list[Any] | None
    #: The JSON objects passed through on the way to the list, innermost first: where
    #: the total and the paging keys are looked up.
    scopes: tuple[Mapping[str, Any], ...] = ()


def open_envelope(body: Any) -> Envelope:
    """The list in ``body``, bare or in any envelope above; ``items=None`` if there is none."""
    if body is None:
        return Envelope([])
    if isinstance(body, list):
        return Envelope(body)
    if not isinstance(body, Mapping):
        return Envelope(None)
    scopes = [body]
    while True:
        scope = scopes[-1]
        for name in ITEM_KEYS:
            value = scope.get(name)
            if isinstance(value, list):
                return Envelope(value, tuple(reversed(scopes)))
        inner = next((scope[name] for name in WRAPPER_KEYS
                      if isinstance(scope.get(name), Mapping)), None)
        if inner is None or len(scopes) > MAX_WRAPPERS:
            empty = not scope or any(name in scope and scope[name] is None for name in ITEM_KEYS)
            return Envelope([] if empty else None, tuple(reversed(scopes)))
        scopes.append(inner)
