"""Fixtures for the vendor tests: fast retries, raw HTTP, a recording server, token timing.

The sandboxes themselves come from vendorkit's own pytest plugin (``vendorkit_sandbox``),
so these tests also exercise what users get.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from vendorkit import Token, sandbox

#: What the recording server answers: a status and a JSON body, or a function of the request.
Answer = tuple[int, Any] | Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Recorded:
    """One request as the recording server saw it."""

    method: str
    path: str
    content_type: str
    headers: Mapping[str, str]
    #: JSON object keys and values, or form / multipart text fields.
    fields: Mapping[str, Any]
    #: Multipart parts that were files rather than text fields.
    file_parts: tuple[str, ...] = ()


class Recorder:
    """A server on 127.0.0.1 that records every request and answers from ``routes``."""

    def __init__(self, routes: Mapping[tuple[str, str], Answer]) -> None:
        self.routes = dict(routes)
        self.requests: list[Recorded] = []
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def find(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fields: dict[str, Any] = {}
        files: list[str] = []
        if request.content_type == "application/json":
            body = json.loads(await request.read())
            fields = dict(body) if isinstance(body, dict) else {"<non-object>": body}
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for name, value in (await request.post()).items():
                if isinstance(value, str):
                    fields[name] = value
                else:
                    files.append(name)
        self.requests.append(Recorded(
            request.method, request.path, request.content_type, dict(request.headers), fields,
            tuple(files),
        ))
        answer = self.routes.get((request.method, request.path), (200, {}))
        if callable(answer):
            return await answer(request)
        status, body = answer
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)


@pytest.fixture(autouse=True)
def _fast_retries(vendorkit_fast_retries: None) -> None:
    """Injected 5xx faults are retried without waiting."""


@pytest.fixture
async def raw_http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, for speaking to a sandbox the way a client must not."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def serve_app() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """``base_url = await serve_app(app)``: run an aiohttp app on 127.0.0.1 for the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def serve(app: web.Application) -> str:
            return await stack.enter_async_context(sandbox.serve_app(app))

        yield serve


@pytest.fixture
def recorder(
    serve_app: Callable[[web.Application], Awaitable[str]],
) -> Callable[[Mapping[tuple[str, str], Answer]], Awaitable[Recorder]]:
    """``rec = await recorder({("POST", "/login"): (200, {...})})``; other routes answer 200 {}."""

    async def start(routes: Mapping[tuple[str, str], Answer]) -> Recorder:
        rec = Recorder(routes)
        rec.base_url = await serve_app(rec.app())
        return rec

    return start


async def _until_renewal(token: Token | None) -> None:
    assert token is not None and token.expires_at is not None
    await asyncio.sleep(max(0.0, token.expires_at - time.time() - 0.1))


@pytest.fixture
def until_renewal() -> Callable[[Token | None], Awaitable[None]]:
    """``await until_renewal(client.token)``: sleep until the token is 0.1 s from expiry,
    deep in its mandatory refresh window, so the next call must renew it first."""
    return _until_renewal
