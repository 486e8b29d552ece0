"""Pages: every envelope the vendors use, where a listing ends as the server says it, and
``async for`` across all pages yielding every item once, whatever page size is served."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from tests.conftest import MakeManager
from tests.toy import Toy
from vendorkit import Page, Paginator, ResponseParseError, SessionManager
from vendorkit.models import key, model
from vendorkit.pagination import parse_page
from vendorkit.sandbox import serve_app


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
        ({"code": 0, "result": {"items": users(1, 2), "total": "9"}}, 9),
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
    ("envelope", "page_index", "count", "page_size", "has_next"),
    [
        ({"total": 137, "pageSize": 50}, 1, 50, 50, True),  # capped: 100 asked, 50 served
        ({"total": 137, "pageSize": 50}, 3, 37, 50, False),
        ({"total": 137}, 1, 50, 50, True),  # capped without saying so: 50 is its size
        ({"total": 137}, 2, 50, 50, True),  # ...also on a walk resumed at page 2
        ({"total": 137}, 2, 37, 100, False),  # exactly the last page in the size asked
        ({}, 1, 120, 120, True),  # served more than asked: a full page in its size
        ({}, 1, 37, 100, False),
        ({"total": 500, "last": True}, 1, 100, 100, False),  # the server says, outright
        ({"total": 100, "hasNext": True}, 1, 100, 100, True),
        ({"has_more": False}, 1, 100, 100, False),
        ({"totalPages": 3}, 2, 100, 100, True),
        ({"totalPages": 3}, 3, 100, 100, False),
        ({"hasNext": True, "total": 500}, 1, 0, 100, False),  # but an empty page is the end
    ],
)
def test_the_server_decides_the_page_size_and_whether_a_next_page_exists(
    envelope: dict[str, Any], page_index: int, count: int, page_size: int, has_next: bool
) -> None:
    body = {"code": 0, "data": {**envelope, "list": users(*range(count))}}

    page = parse_page(body, User, page_index=page_index, page_size=100, first_index=1)

    assert (page.page_size, page.has_next) == (page_size, has_next)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"status": "ok", "message": "fine"}, "keys seen: message, status"),
        ({"data": {"user": {"id": 1}}}, "no list of items"),
        ("page", "JSON string"),
        (12, "JSON number"),
    ],
)
def test_wrong_page_shapes_raise_response_parse_error(body: object, says: str) -> None:
    with pytest.raises(ResponseParseError, match=says):
        parse_page(body, User, page_index=1, page_size=10)


@pytest.mark.parametrize("body", [None, {"data": None}, {"data": {"list": None}}, {}])
def test_null_page_answers_are_an_empty_last_page(body: object) -> None:
    page = parse_page(body, User, page_index=1, page_size=10)

    assert (page.items, page.total, page.has_next) == ([], None, False)


def test_items_that_cannot_be_read_are_skipped_not_fatal_and_still_counted() -> None:
    body = {"list": [*users(1), {"userName": "no id"}, 7, *users(4)], "total": 8}

    page = parse_page(body, User, page_index=1, page_size=4)

    assert page.items == [User(1, "user1"), User(4, "user4")]
    assert page.skipped == [{"userName": "no id"}, 7]
    assert page.has_next  # 4 of the 8 received, whatever could be read


def test_bogus_totals_are_ignored_and_numeric_strings_read() -> None:
    for total in (-1, True, "nine", 9.5, None, [9]):
        page = parse_page({"list": users(1), "total": total}, User, page_index=1, page_size=5)
        assert page.total is None
    assert parse_page({"list": users(1), "total": "9"}, User, page_index=1, page_size=5).total == 9


# --- the paginator against real servers -----------------------------------------------------


@attrs.define
class Listing:
    """A paged listing on 127.0.0.1 (``?page=&size=``) that serves at most ``cap`` items a
    page, in one of several envelope styles; it records each (page, size) asked."""

    count: int
    cap: int = 1000
    style: str = "cloudcx"  # "cloudcx", "silent" (no pageSize), "spring", "bare"
    first: int = 1
    total_lie: int = 0  # added to the total the server states
    ignores_index: bool = False
    fixed_size: int | None = None  # serve this many a page whatever is asked
    asked: list[tuple[int, int]] = attrs.field(factory=list)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        page, asked = int(request.query["page"]), int(request.query["size"])
        self.asked.append((page, asked))
        size = self.fixed_size or min(asked, self.cap)
        start = 0 if self.ignores_index else (page - self.first) * size
        rows = users(*range(start + 1, min(start + size, self.count) + 1))
        total = self.count + self.total_lie
        if self.style == "bare":
            return web.json_response(rows)
        if self.style == "spring":
            pages = -(-total // size)
            return web.json_response({"content": rows, "totalElements": total, "size": size,
                                      "number": page, "totalPages": pages,
                                      "last": page - self.first >= pages - 1})
        data: dict[str, Any] = {"total": total, "pageIndex": page, "list": rows}
        if self.style == "cloudcx":
            data["pageSize"] = size
        return web.json_response({"code": 0, "msg": "success", "data": data})

    def walk(self, http: aiohttp.ClientSession, page_size: int) -> Paginator[User]:
        async def fetch(index: int, size: int) -> Page[User]:
            async with http.get(f"{self.base_url}/users",
                                params={"page": index, "size": size}) as response:
                body = await response.json()
            return parse_page(body, User, page_index=index, page_size=size,
                              first_index=self.first)

        return Paginator(fetch, first_index=self.first, page_size=page_size, what="users")


StartListing = Callable[..., Awaitable[Listing]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def listing() -> AsyncIterator[StartListing]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(count: int, **options: Any) -> Listing:
            server = Listing(count, **options)
            app = web.Application()
            app.router.add_get("/users", server.handle)
            server.base_url = await stack.enter_async_context(serve_app(app))
            return server

        yield start


@pytest.mark.parametrize("style", ["cloudcx", "silent", "spring"])
async def test_a_server_that_caps_the_page_size_still_yields_every_item_once(
    listing: StartListing, http: aiohttp.ClientSession, style: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = 0 if style == "spring" else 1
    server = await listing(137, cap=50, style=style, first=first)

    ids = [user.id async for user in server.walk(http, page_size=100)]

    assert ids == list(range(1, 138))
    assert server.asked == [(first, 100), (first + 1, 50), (first + 2, 50)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_walk_resumed_mid_listing_on_a_capping_server_lines_up(
    listing: StartListing, http: aiohttp.ClientSession,
) -> None:
    server = await listing(137, cap=50, style="silent")

    pages = [page async for page in server.walk(http, page_size=100).pages(start=2)]

    assert [u.id for page in pages for u in page.items] == list(range(51, 138))
    assert [(p.page_index, p.page_size, p.has_next) for p in pages] == [
        (2, 50, True), (3, 50, False)]


async def test_a_server_that_serves_more_than_asked_is_followed_in_its_own_size(
    listing: StartListing, http: aiohttp.ClientSession,
) -> None:
    server = await listing(45, style="bare", fixed_size=20)

    ids = [user.id async for user in server.walk(http, page_size=10)]

    assert ids == list(range(1, 46))
    assert server.asked == [(1, 10), (2, 20), (3, 20)]


async def test_a_total_that_disagrees_with_the_items_received_logs_one_warning(
    listing: StartListing, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    server = await listing(137, cap=50, style="silent", total_lie=3)

    ids = [user.id async for user in server.walk(http, page_size=100)]

    assert ids == list(range(1, 138))
    assert server.asked[-1] == (4, 50)  # the total asked for more; the empty page ended it
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.name == "vendorkit"
    assert "140" in warning.getMessage() and "137" in warning.getMessage()


async def test_a_server_that_ignores_the_page_index_cannot_make_the_walk_endless(
    listing: StartListing, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    server = await listing(500, style="bare", ignores_index=True)

    ids = [user.id async for user in server.walk(http, page_size=10)]

    assert ids == list(range(1, 11))
    assert len(server.asked) == 2
    assert "ignores the page index" in caplog.text


# --- the paginator through a SessionManager -----------------------------------------------


def user_pages(manager: SessionManager, size: int) -> Paginator[User]:
    async def fetch(index: int, page_size: int) -> Page[User]:
        response = await manager.request("GET", "/users",
                                         params={"page": index, "size": page_size})
        return parse_page(response.json(), User, page_index=index, page_size=page_size,
                          response=response)

    return Paginator(fetch, first_index=1, page_size=size)


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
