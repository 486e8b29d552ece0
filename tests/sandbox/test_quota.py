"""The emulators' per-credential quota (GCRA): 429 with Retry-After past the burst."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.sandbox.test_sandbox import PROTECTED, PROTECTED_ROUTE, login, protected, token_of
from vendorkit.sandbox import Quota, SandboxThread, serve, serve_all
from vendorkit.sandbox._quota import Limiter, retry_after


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def test_gcra_allows_the_burst_at_once_then_one_request_per_interval() -> None:
    limiter = Limiter(Quota(rate=10, burst=3))
    assert [limiter.wait("key", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait("key", now=100.0) == pytest.approx(0.1)
    assert limiter.wait("key", now=100.05) == pytest.approx(0.05)  # refused: no permit taken
    assert limiter.wait("key", now=100.1) == 0.0  # one interval on: one more
    assert limiter.wait("key", now=100.1) == pytest.approx(0.1)
    assert limiter.wait("other", now=100.1) == 0.0  # each credential has its own


def test_gcra_never_lets_more_than_rate_times_time_plus_burst_through() -> None:
    limiter = Limiter(Quota(rate=50, burst=5))
    allowed = sum(limiter.wait("key", now=step / 1000) == 0.0 for step in range(2000))
    assert 2 * 50 + 5 - 2 <= allowed <= 2 * 50 + 5  # 2 s at 50/s, and the burst on top


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after(w) for w in (0.001, 0.99, 1.0, 1.01, 7.5)] == [1, 1, 1, 2, 8]


def test_quota_parses_rate_and_burst_and_refuses_nonsense() -> None:
    assert Quota.parse("400/20") == Quota(400, burst=20)
    assert Quota.parse("2.5") == Quota(2.5, burst=1)
    assert str(Quota(400, burst=20)) == "400/s, burst 20"
    for text in ("", "fast", "400/0", "0/5", "-1", "400/2.5"):
        with pytest.raises(ValueError, match="invalid quota"):
            Quota.parse(text)


@pytest.mark.parametrize("vendor", list(PROTECTED))
async def test_quota_answers_429_with_retry_after_past_the_burst(
    vendor: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor, quota=Quota(rate=0.5, burst=3)) as sandbox:
        token = await token_of(http, sandbox)
        answers = [await protected(http, sandbox, token) for _ in range(5)]
        assert [a.status for a in answers] == [200, 200, 200, 429, 429]
        # The next permit is 2 s (one interval) away: Retry-After says 2, never 0.
        assert {a.headers["Retry-After"] for a in answers[3:]} == {"2"}
        assert answers[3].body["retry_after"] == 2
        counters = sandbox.state.counters
        assert counters.rate_limited == 2
        assert counters.requests[PROTECTED_ROUTE[vendor]] == 5
        assert counters.logins == 1  # login routes are not limited


async def test_the_quota_is_per_credential_not_per_token(http: aiohttp.ClientSession) -> None:
    other = {"client_id": "cbp-other", "client_secret": "other-secret-9f7c2d"}
    async with serve("cambyopro", quota=Quota(rate=0.1, burst=2)) as sandbox:
        first, second = await token_of(http, sandbox), await token_of(http, sandbox)
        assert (await protected(http, sandbox, first)).status == 200
        assert (await protected(http, sandbox, second)).status == 200
        assert (await protected(http, sandbox, first)).status == 429  # same credential
        for credentials in (sandbox.state.credentials, sandbox.credentials):
            credentials.update(other)  # another client of the same vendor logs in
        third = await token_of(http, sandbox)
        assert (await protected(http, sandbox, third)).status == 200


async def test_a_refused_caller_gets_through_after_retry_after(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("wogeez", quota=Quota(rate=4, burst=1)) as sandbox:
        token = await token_of(http, sandbox)
        assert (await protected(http, sandbox, token)).status == 200
        refused = await protected(http, sandbox, token)
        assert (refused.status, refused.headers["Retry-After"]) == (429, "1")
        await asyncio.sleep(int(refused.headers["Retry-After"]))
        assert (await protected(http, sandbox, token)).status == 200


async def test_concurrent_calls_past_the_burst_are_refused_not_queued(
    http: aiohttp.ClientSession,
) -> None:
    async with serve_all(["cloudcx"], quota=Quota(rate=20, burst=10)) as running:
        sandbox = running["cloudcx"]
        token = await token_of(http, sandbox)
        started = time.monotonic()
        answers = await asyncio.gather(*(protected(http, sandbox, token) for _ in range(40)))
        elapsed = time.monotonic() - started
        ok = sum(a.status == 200 for a in answers)
        # 10 at once, plus at most the few the steady rate grants while they arrive.
        assert 10 <= ok <= 10 + math.ceil(20 * elapsed)
        assert sandbox.state.counters.rate_limited == 40 - ok


async def test_no_quota_by_default_and_injected_429s_are_counted_too(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("cloud4wi") as sandbox:
        assert sandbox.state.quota is None
        token = await token_of(http, sandbox)
        sandbox.state.faults.fail_next(1, 429, retry_after="1")
        statuses = [(await protected(http, sandbox, token)).status for _ in range(30)]
        assert statuses == [429] + [200] * 29
        assert sandbox.state.counters.rate_limited == 1


async def test_the_quota_can_change_while_the_sandbox_runs(http: aiohttp.ClientSession) -> None:
    async with serve("cambyopro") as sandbox:
        token = await token_of(http, sandbox)
        sandbox.state.quota = Quota(rate=1, burst=1)
        assert [(await protected(http, sandbox, token)).status for _ in range(2)] == [200, 429]
        sandbox.state.quota = None
        assert (await protected(http, sandbox, token)).status == 200


def test_sandbox_thread_serves_a_quota_to_other_threads() -> None:
    with SandboxThread(["cambyopro"], quota=Quota(rate=1, burst=2)) as thread:
        sandbox = thread.sandboxes["cambyopro"]

        async def three_calls() -> list[int]:
            async with aiohttp.ClientSession() as session:
                answer = await login(session, sandbox)
                token = answer.body["accessToken"]
                return [(await protected(session, sandbox, token)).status for _ in range(3)]

        assert asyncio.run(three_calls()) == [200, 200, 429]
        assert thread.call(lambda: sandbox.state.counters.rate_limited) == 1
