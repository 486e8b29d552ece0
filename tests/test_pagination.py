"""Pages: every envelope the vendors use, has_next, and ``async for`` across all pages."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from tests.conftest import MakeManager
from tests.toy import Toy
from vendorkit import Page, Paginator, ResponseParseError, SessionManager
from vendorkit.models import key, model
from vendorkit.pagination import parse_page


@model
@attrs.frozen
class User:
    id: int
    user_name: str = key("userName", default="")


def users(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "userName": f"user{i}"} for i in ids]


@pytest.mark.parametrize(
    ("body", "total"),
    [
        (users(1, 2), None),
        ({"list": users(1, 2), "total": 9}, 9),
        ({"records": users(1, 2), "totalCount": 9}, 9),
        ({"items": users(1, 2), "totalElements": 9}, 9),
        ({"rows": users(1, 2), "count": 9}, 9),
        ({"content": users(1, 2), "total_count": 9}, 9),
        ({"data": users(1, 2), "total": 9}, 9),
        ({"results": users(1, 2)}, None),
        ({"code": 0, "data": {"list": users(1, 2), "totalCount": 9}}, 9),
        ({"data": {"records": users(1, 2)}, "total": 9}, 9),  # total beside the data object
        ({"data": {"data": {"rows": users(1, 2)}}}, None),
    ],
)
def test_parse_page_reads_every_envelope(body: object, total: int | None) -> None:
    page = parse_page(body, User, page_index=1, page_size=2)

    assert page.items == [User(1, "user1"), User(2, "user2")]
    assert page.total == total
    assert len(page) == 2


@pytest.mark.parametrize(
    ("page_index", "page_size", "count", "total", "first_index", "has_next"),
    [
        (1, 10, 10, 25, 1, True),
        (2, 10, 10, 25, 1, True),
        (3, 10, 5, 25, 1, False),
        (3, 10, 10, 30, 1, False),  # exactly full: the total says it was the last page
        (0, 10, 10, 20, 0, True),  # Spring counts pages from 0
        (1, 10, 10, 20, 0, False),
        (1, 10, 0, 25, 1, False),  # an empty page ends the walk whatever the total says
        (1, 10, 10, None, 1, True),  # no total: a full page may have a successor
        (1, 10, 9, None, 1, False),
        (1, 0, 0, None, 1, False),
    ],
)
def test_has_next(
    page_index: int, page_size: int, count: int, total: int | None, first_index: int,
    has_next: bool,
) -> None:
    body: dict[str, Any] = {"list": users(*range(count))}
    if total is not None:
        body["total"] = total

    page = parse_page(body, User, page_index=page_index, page_size=page_size,
                      first_index=first_index)

    assert page.has_next is has_next


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"status": "ok", "message": "fine"}, "keys seen: message, status"),
        ({"data": {"user": {"id": 1}}}, "no list of items"),
        ("page", "JSON str"),
        (None, "JSON NoneType"),
        ({"list": [{"userName": "no id"}]}, "does not fit User"),
        ({"list": [1, 2]}, "does not fit User"),
    ],
)
def test_wrong_page_shapes_raise_response_parse_error(body: object, says: str) -> None:
    with pytest.raises(ResponseParseError, match=says):
        parse_page(body, User, page_index=1, page_size=10)


def test_bogus_totals_are_ignored() -> None:
    for total in (-1, True, "9", 9.5):
        page = parse_page({"list": users(1), "total": total}, User, page_index=1, page_size=5)
        assert page.total is None


def user_pages(manager: SessionManager, size: int) -> Paginator[User]:
    async def fetch(index: int) -> Page[User]:
        response = await manager.request("GET", "/users", params={"page": index, "size": size})
        return parse_page(response.json(), User, page_index=index, page_size=size)

    return Paginator(fetch, first_index=1)


async def test_paginator_walks_all_pages_and_stops_at_the_last(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")

    walked = [user.id async for user in user_pages(manager, size=3)]

    assert walked == [1, 2, 3, 4, 5, 6, 7]
    assert toy.counters.requests["GET /users"] == 3  # 3 + 3 + 1, and no fourth request


async def test_paginator_pages_yields_each_page(toy: Toy, make_manager: MakeManager) -> None:
    toy.users = 6
    manager = make_manager("json")

    pages = [page async for page in user_pages(manager, size=3).pages()]

    assert [(p.page_index, len(p), p.total, p.has_next) for p in pages] == [
        (1, 3, 6, True), (2, 3, 6, False)
    ]
    assert toy.counters.requests["GET /users"] == 2


async def test_paginator_over_an_empty_listing_fetches_once(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.users = 0
    manager = make_manager("json")

    assert [user async for user in user_pages(manager, size=3)] == []
    assert toy.counters.requests["GET /users"] == 1


async def test_paginator_fetches_lazily(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json")

    async for user in user_pages(manager, size=3):
        assert user.id == 1
        break

    assert toy.counters.requests["GET /users"] == 1
