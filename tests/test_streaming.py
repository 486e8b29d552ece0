"""``client.stream()``: bodies read as they arrive, through the same auth, re-auth and
retries as any call up to the answer's head, and the connection released on exit.

The export server below streams generated chunks (no file, nothing held whole); for the
200 MB test it runs in a process of its own (``python -m tests.test_streaming``), so the
memory measured is the client's alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import FAST_RETRY
from vendorkit import (
    ConnectError,
    JSONLogin,
    NotFoundError,
    RetryPolicy,
    SessionManager,
    TimeoutError,
    TransportError,
)
from vendorkit.client import VendorClient
from vendorkit.sandbox import serve_app

USERNAME, PASSWORD = "exporter", "export-password-Vb3n"
MB = 1024 * 1024
PATTERN = bytes(range(256)) * 256  # 64 KiB, written again and again
LINES = ["id,name", "1,Ada", "2,Grace Hopper", "3,Zoë ñandú 🚀", "", "4,last line no newline"]


class ExportServer:
    """A JSON login and protected routes that stream large answers in generated chunks.

    ``GET /export?size=&gap=`` streams ``size`` bytes of ``PATTERN`` (``gap`` seconds
    between 64 KiB chunks); ``GET /lines`` sends ``LINES`` cut at awkward places (inside
    a ``\\r\\n``, inside a UTF-8 character); ``GET /small`` answers a little JSON.
    """

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.logins = 0
        self.requests: collections.Counter[str] = collections.Counter()
        #: Statuses to answer, in turn, before the route's own answer.
        self.faults: collections.deque[int] = collections.deque()
        #: Close the connection after sending this many bytes of an export.
        self.drop_after: int | None = None
        self.base_url = ""
        self._serving = contextlib.AsyncExitStack()

    async def start(self) -> ExportServer:
        app = web.Application()
        app.add_routes([
            web.post("/login", self._login),
            web.get("/export", self._export),
            web.get("/lines", self._lines),
            web.get("/small", self._small),
        ])
        self.base_url = await self._serving.enter_async_context(
            serve_app(app, shutdown_timeout=0.5)
        )
        return self

    async def stop(self) -> None:
        await self._serving.aclose()

    def revoke_all_tokens(self) -> None:
        self.tokens.clear()

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (body.get("username"), body.get("password")) != (USERNAME, PASSWORD):
            return web.json_response({"message": "bad credentials"}, status=401)
        self.logins += 1
        token = "exp-" + secrets.token_urlsafe(16)
        self.tokens.add(token)
        return web.json_response({"accessToken": token, "tokenType": "Bearer",
                                  "expiresIn": 3600})

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer that replaces the route's own: a programmed fault, or a 401."""
        self.requests[request.path] += 1
        if self.faults:
            status = self.faults.popleft()
            return web.json_response({"error": f"fault {status}"}, status=status)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return web.json_response({"error": "invalid_token"}, status=401)
        return None

    async def _export(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        size, gap = int(request.query["size"]), float(request.query.get("gap", 0))
        response = web.StreamResponse(headers={"X-Request-Id": "req-export",
                                               "Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        sent = 0
        while sent < size:
            chunk = PATTERN[: size - sent]
            if self.drop_after is not None and sent + len(chunk) > self.drop_after:
                await response.write(chunk[: self.drop_after - sent])
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write(chunk)
            sent += len(chunk)
            if gap:
                await asyncio.sleep(gap)
        await response.write_eof()
        return response

    async def _lines(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        body = "\r\n".join(LINES[:3]).encode() + b"\n" + "\n".join(LINES[3:]).encode()
        cuts = [3, body.index(b"\r") + 1, body.index("ë".encode()) + 1, len(body) - 2]
        response = web.StreamResponse(headers={"Content-Type": "text/csv"})
        await response.prepare(request)
        for start, end in itertools.pairwise([0, *sorted(cuts), len(body)]):
            await response.write(body[start:end])
            await asyncio.sleep(0.01)  # each piece its own chunk at the client
        await response.write_eof()
        return response

    async def _small(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        return refusal or web.json_response({"ok": True})


def _login() -> JSONLogin:
    return JSONLogin(vendor="exporter", login_path="/login",
                     body={"username": USERNAME, "password": PASSWORD},
                     identity_field="username")


@pytest.fixture
async def server() -> AsyncIterator[ExportServer]:
    running = await ExportServer().start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def manager(server: ExportServer) -> AsyncIterator[SessionManager]:
    async with SessionManager(server.base_url, _login(), retry=FAST_RETRY) as made:
        yield made


async def _read_all(manager: SessionManager, path: str, **params: str) -> bytes:
    async with manager.stream("GET", path, params=params) as answer:
        return b"".join([chunk async for chunk in answer.iter_bytes()])


# --- the answer and its body ----------------------------------------------------------


async def test_a_stream_logs_in_and_yields_status_headers_and_every_byte(
    manager: SessionManager, server: ExportServer
) -> None:
    async with manager.stream("GET", "/export", params={"size": str(3 * MB + 5)}) as answer:
        assert (answer.status, answer.ok, answer.request_id) == (200, True, "req-export")
        assert answer.headers["Content-Type"] == "application/octet-stream"
        body = b"".join([chunk async for chunk in answer.iter_bytes()])

    assert len(body) == 3 * MB + 5
    assert body == (PATTERN * 49)[: 3 * MB + 5]
    assert server.logins == 1
    assert manager.stats.requests == 2  # the login and the stream


async def test_iter_bytes_with_a_chunk_size_cuts_the_body_in_those_chunks(
    manager: SessionManager,
) -> None:
    async with manager.stream("GET", "/export", params={"size": str(100_000)}) as answer:
        sizes = [len(chunk) async for chunk in answer.iter_bytes(chunk_size=30_000)]

    assert sizes == [30_000, 30_000, 30_000, 10_000]


async def test_iter_lines_rejoins_lines_cut_across_chunks(manager: SessionManager) -> None:
    async with manager.stream("GET", "/lines") as answer:
        lines = [line async for line in answer.iter_lines()]

    assert lines == LINES


async def test_the_body_can_be_read_once_and_only_inside_the_block(
    manager: SessionManager,
) -> None:
    async with manager.stream("GET", "/export", params={"size": "10"}) as answer:
        assert [chunk async for chunk in answer.iter_bytes()] == [PATTERN[:10]]
        with pytest.raises(RuntimeError, match="only once"):
            await anext(answer.iter_bytes())

    with pytest.raises(RuntimeError, match="closed"):
        await anext(answer.iter_lines())


# --- up to the first byte: auth, re-auth, retries, errors ------------------------------


async def test_a_503_before_the_body_is_retried(
    manager: SessionManager, server: ExportServer
) -> None:
    server.faults.extend([503, 502])

    body = await _read_all(manager, "/export", size="1000")

    assert len(body) == 1000
    assert server.requests["/export"] == 3
    assert manager.stats.retries == 2


async def test_a_rejected_token_is_renewed_and_the_stream_sent_again(
    manager: SessionManager, server: ExportServer
) -> None:
    await manager.login()
    server.revoke_all_tokens()

    body = await _read_all(manager, "/export", size="1000")

    assert len(body) == 1000
    assert server.logins == 2
    assert server.requests["/export"] == 2  # the rejected try, the replay
    assert manager.stats.reauths == 1


async def test_an_error_status_raises_its_typed_error_before_the_block(
    manager: SessionManager, server: ExportServer
) -> None:
    server.faults.append(404)
    entered = False

    with pytest.raises(NotFoundError) as caught:
        async with manager.stream("GET", "/export", params={"size": "10"}):
            entered = True

    assert not entered
    assert caught.value.status == 404
    assert "fault 404" in str(caught.value)  # the error body was read for the message


async def test_a_connection_dropped_mid_body_raises_and_is_not_retried(
    manager: SessionManager, server: ExportServer
) -> None:
    server.drop_after = MB
    received = 0

    with pytest.raises(ConnectError) as caught:
        async with manager.stream("GET", "/export", params={"size": str(4 * MB)}) as answer:
            async for chunk in answer.iter_bytes():
                received += len(chunk)

    assert received <= MB
    assert isinstance(caught.value, TransportError)
    assert caught.value.__context__ is None  # aiohttp's exception, holding headers, is dropped
    assert server.requests["/export"] == 1


# --- timeouts and connections ---------------------------------------------------------


async def test_the_timeout_bounds_each_read_not_the_whole_download(
    server: ExportServer,
) -> None:
    async with SessionManager(server.base_url, _login(), timeout=0.5,
                              retry=RetryPolicy.never()) as manager:
        slow_but_moving = await _read_all(manager, "/export", size=str(8 * 65536), gap="0.15")
        with pytest.raises(TimeoutError):
            await _read_all(manager, "/export", size=str(2 * 65536), gap="1.5")

    assert len(slow_but_moving) == 8 * 65536  # 1.05 s in all, past the 0.5 s timeout
    assert server.requests["/export"] == 2


async def test_a_views_timeout_applies_to_its_streams(server: ExportServer) -> None:
    client = VendorClient(server.base_url, _login(), timeout=0.3, retry=RetryPolicy.never())
    async with client:
        with pytest.raises(TimeoutError):
            async with client.stream("GET", "/export", params={"size": "70000",
                                                               "gap": "0.6"}) as answer:
                _ = [chunk async for chunk in answer.iter_bytes()]
        async with client.with_options(timeout=5).stream(
            "GET", "/export", params={"size": "70000", "gap": "0.6"}
        ) as answer:
            body = b"".join([chunk async for chunk in answer.iter_bytes()])

    assert len(body) == 70000


async def test_leaving_the_block_early_releases_the_connection(server: ExportServer) -> None:
    async with SessionManager(server.base_url, _login(), max_connections=1,
                              retry=FAST_RETRY) as manager:
        for _ in range(3):  # one pooled connection: a leak would hang the next call
            async with manager.stream("GET", "/export", params={"size": str(50 * MB)}) as answer:
                first = await anext(answer.iter_bytes())
            assert first
        response = await asyncio.wait_for(manager.request("GET", "/small"), 10)
        streamed = await asyncio.wait_for(_read_all(manager, "/export", size="1000"), 10)

    assert response.json() == {"ok": True}
    assert len(streamed) == 1000


# --- 200 MB, flat memory --------------------------------------------------------------


def _rss() -> int:
    """This process's resident memory now, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def server_process() -> Iterator[str]:
    """The export server in a process of its own; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.test_streaming"], cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()  # the server's signal to stop
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        process.stdout.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
async def test_streaming_200_mb_keeps_the_clients_memory_flat(server_process: str) -> None:
    size = 200 * MB
    async with SessionManager(server_process, _login(), retry=FAST_RETRY) as manager:
        await manager.request("GET", "/small")  # log in, open the pool: not part of the figure
        baseline = peak = _rss()
        received = 0
        async with manager.stream("GET", "/export", params={"size": str(size)}) as answer:
            async for chunk in answer.iter_bytes():
                received += len(chunk)
                peak = max(peak, _rss())
        peak = max(peak, _rss())

    growth = peak - baseline
    print(f"\nstreamed {received // MB} MB: client RSS grew {growth / MB:.1f} MB "
          f"(from {baseline / MB:.0f} MB to a peak of {peak / MB:.0f} MB)")
    assert received == size
    assert growth < 30 * MB


async def _serve_until_stdin_closes() -> None:
    server = await ExportServer().start()
    print(server.base_url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(_serve_until_stdin_closes())
