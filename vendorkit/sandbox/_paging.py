"""Page listings: the rows of one page, and the envelopes servers wrap them in.

One listing, several plausible answers: CloudCX's own ``{"code", "data": {"list", "total",
"pageIndex", "pageSize"}}``, a Spring Data page, a MyBatis-Plus ``records`` page, a bare
``{"data": {"list", "total", "pageSize"}}`` and a bare JSON list. A capped server serves at
most ``page_cap`` rows whatever size is asked, and its envelope says the size it served.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ._variants import PageStyle, Settings

Row = dict[str, object]


@attrs.frozen
class PageRequest:
    """A page as asked: ``index`` counted as the vendor counts, from ``first_index``."""

    index: int
    size: int
    first_index: int


def page_body(
    settings: Settings, default: PageStyle, rows: Sequence[Row], asked: PageRequest
) -> object:
    """The page ``asked`` of ``rows`` in the selected envelope, capped if a variant says so."""
    size = min(asked.size, settings.page_cap) if settings.page_cap else asked.size
    offset = asked.index - asked.first_index
    content = list(rows[offset * size : (offset + 1) * size])
    total, pages = len(rows), -(-len(rows) // size)
    style = settings.page_style or default
    if style == "bare":
        return content
    if style == "spring":  # Spring's page number counts from 0 whatever the request did
        return {
            "content": content,
            "totalElements": total,
            "totalPages": pages,
            "number": offset,
            "size": size,
            "numberOfElements": len(content),
            "first": offset == 0,
            "last": offset >= pages - 1,
            "empty": not content,
        }
    if style == "records":
        return {
            "code": 0,
            "msg": "success",
            "data": {
                "records": content,
                "total": total,
                "size": size,
                "current": asked.index,
                "pages": pages,
            },
        }
    if style == "list":
        return {"data": {"list": content, "total": total, "pageSize": size}}
    return {
        "code": 0,
        "msg": "success",
        "data": {"total": total, "pageIndex": asked.index, "pageSize": size, "list": content},
    }
