"""RetryPolicy: Retry-After obeyed, attempts and time bounded, POST only when safe."""

from __future__ import annotations

import email.utils
import math
import socket
import time

import pytest

from tests.conftest import MakeManager, SleepRecorder
from tests.toy import Toy, json_login
from vendorkit import (
    ConnectError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SessionManager,
)
from vendorkit.retry import is_testing, parse_retry_after, set_testing

# --- Retry-After --------------------------------------------------------------------------


async def test_retry_after_seconds_is_obeyed(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json", retry=RetryPolicy(base_delay=0.0, max_delay=0.0))
    await manager.login()
    toy.answer_next(1, status=503, retry_after="1")
    started = time.monotonic()

    response = await manager.request("GET", "/data")

    assert response.status == 200
    assert 1.0 <= time.monotonic() - started < 1.5
    assert toy.counters.requests["GET /data"] == 2


async def test_retry_after_http_date_is_obeyed(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json", retry=RetryPolicy(base_delay=0.0, max_delay=0.0))
    await manager.login()
    not_before = math.ceil(time.time() + 1.0)  # HTTP dates have whole seconds
    toy.answer_next(1, status=429, retry_after=email.utils.formatdate(not_before, usegmt=True))

    response = await manager.request("GET", "/data")

    assert response.status == 200
    assert time.time() >= not_before - 0.02
    assert toy.counters.requests["GET /data"] == 2


async def test_retry_after_is_capped(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    manager = make_manager("json", retry=RetryPolicy(retry_after_cap=2.0, sleep=sleeps))
    toy.answer_next(1, status=503, retry_after="3600")

    await manager.request("GET", "/data")

    assert sleeps.waits == [2.0]


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("-4") == 0.0
    for unusable in (None, "", "soon", "nan", "Mon, 99 Foo 20xx"):
        assert parse_retry_after(unusable) is None


# --- bounds -------------------------------------------------------------------------------


async def test_retries_stop_at_max_attempts(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    manager = make_manager("json", retry=RetryPolicy(max_attempts=3, sleep=sleeps))
    await manager.login()
    toy.answer_next(10, status=503)

    with pytest.raises(ServerError) as caught:
        await manager.request("GET", "/data")

    assert caught.value.status == 503
    assert toy.counters.requests["GET /data"] == 3
    assert len(sleeps.waits) == 2
    assert manager.stats.retries == 2


async def test_retries_stop_at_max_time(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json", retry=RetryPolicy(max_attempts=100, max_time=1.0))
    await manager.login()
    toy.answer_next(100, status=503, retry_after="0.4")
    started = time.monotonic()

    with pytest.raises(ServerError):
        await manager.request("GET", "/data")

    # Tries at 0, 0.4 and 0.8 s; a wait to 1.2 s would pass max_time, so it gives up.
    assert 0.8 <= time.monotonic() - started < 1.0
    assert toy.counters.requests["GET /data"] == 3


async def test_backoff_grows_and_is_capped(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    policy = RetryPolicy(max_attempts=8, base_delay=0.1, max_delay=0.4, sleep=sleeps)
    manager = make_manager("json", retry=policy)
    toy.answer_next(7, status=502)

    await manager.request("GET", "/data")

    assert len(sleeps.waits) == 7
    assert all(0 <= wait <= 0.4 for wait in sleeps.waits)  # full jitter below the cap


async def test_set_testing_makes_retry_sleeps_instant(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json", retry=RetryPolicy(max_attempts=3))
    toy.answer_next(2, status=503, retry_after="30")
    with set_testing():
        assert is_testing()
        started = time.monotonic()
        response = await manager.request("GET", "/data")
    assert not is_testing()  # the previous mode is restored

    assert response.status == 200
    assert time.monotonic() - started < 0.5
    assert toy.counters.requests["GET /data"] == 3


# --- what may be retried ------------------------------------------------------------------


async def test_post_is_not_retried_by_default(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json")
    await manager.login()
    toy.answer_next(1, route="POST /items", status=503)

    with pytest.raises(ServerError):
        await manager.request("POST", "/items", json={"name": "x"})

    assert toy.counters.requests["POST /items"] == 1
    assert manager.stats.retries == 0


async def test_post_marked_idempotent_is_retried(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    manager = make_manager("json", retry=RetryPolicy(sleep=sleeps))
    toy.answer_next(1, route="POST /items", status=503)

    response = await manager.request("POST", "/items", json={"name": "x"}, idempotent=True)

    assert response.status == 201
    assert response.json() == {"created": {"name": "x"}}
    assert toy.counters.requests["POST /items"] == 2
    assert len(sleeps.waits) == 1


async def test_post_is_retried_after_429(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    manager = make_manager("json", retry=RetryPolicy(sleep=sleeps), rate_limit=False)
    toy.answer_next(1, route="POST /items", status=429, retry_after="2")

    response = await manager.request("POST", "/items", json={"name": "x"})

    assert response.status == 201  # a 429 was refused, not processed: safe to send again
    assert toy.counters.requests["POST /items"] == 2
    assert sleeps.waits == [2.0]


async def test_429_beyond_the_throttle_wait_budget_raises_rate_limit_error(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    policy = RetryPolicy(max_attempts=2, max_throttle_wait=8, sleep=sleeps)
    manager = make_manager("json", retry=policy, rate_limit=False)
    toy.answer_next(3, status=429, retry_after="5")

    with pytest.raises(RateLimitError) as caught:
        await manager.request("GET", "/data")

    assert caught.value.retry_after == 5.0
    assert sleeps.waits == [5.0]  # a second wait of 5 s would pass the 8 s budget
    assert toy.counters.requests["GET /data"] == 2


async def test_429_waits_are_bounded_by_time_not_by_the_attempt_count(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    policy = RetryPolicy(max_attempts=2, sleep=sleeps)  # 2 attempts for 5xx and drops
    manager = make_manager("json", retry=policy, rate_limit=False)
    toy.answer_next(6, status=429, retry_after="1")

    response = await manager.request("GET", "/data")

    assert response.status == 200  # the server kept saying when to come back: no call lost
    assert sleeps.waits == [1.0] * 6
    assert toy.counters.requests["GET /data"] == 7


async def test_connection_refused_is_retried_even_for_post() -> None:
    with socket.socket() as probe:  # a port with nobody listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = Toy()
    waits: list[float] = []

    async def start_server_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        if late.base_url == "":
            await late.start(port)

    manager = SessionManager(
        f"http://127.0.0.1:{port}", json_login(late),
        retry=RetryPolicy(sleep=start_server_while_waiting),
    )
    try:
        response = await manager.request("POST", "/echo", json={"n": 1}, authenticate=False)
    finally:
        await manager.aclose()
        await late.stop()

    assert response.json() == {"echo": {"n": 1}}
    assert len(waits) == 1  # refused once, then sent
    assert late.counters.requests["POST /echo"] == 1  # the server saw the POST exactly once


async def test_connection_refused_gives_up_with_connect_error(sleeps: SleepRecorder) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manager = SessionManager(
        f"http://127.0.0.1:{port}", json_login(Toy()),
        retry=RetryPolicy(max_attempts=3, sleep=sleeps),
    )
    try:
        with pytest.raises(ConnectError) as caught:
            await manager.request("POST", "/echo", json={}, authenticate=False)
    finally:
        await manager.aclose()

    assert caught.value.request_sent is False
    assert "could not connect" in str(caught.value)
    assert len(sleeps.waits) == 2


async def test_dropped_connection_is_retried_for_get(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    manager = make_manager("json", retry=RetryPolicy(sleep=sleeps))
    await manager.login()
    toy.answer_next(3, drop=True)

    response = await manager.request("GET", "/data")

    assert response.status == 200
    assert toy.counters.requests["GET /data"] == 4
    # aiohttp itself resends an idempotent request once after a dropped connection; the
    # other drops must have been retried by the RetryPolicy.
    assert manager.stats.retries >= 1
    assert len(sleeps.waits) == manager.stats.retries


async def test_dropped_connection_is_not_retried_for_post(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    await manager.login()
    toy.answer_next(1, route="POST /items", drop=True)

    with pytest.raises(ConnectError) as caught:
        await manager.request("POST", "/items", json={})

    assert caught.value.request_sent is True  # the server may have acted on it
    assert toy.counters.requests["POST /items"] == 1


async def test_login_is_retried_on_a_transient_failure(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    manager = make_manager("json", retry=RetryPolicy(sleep=sleeps))
    toy.answer_next(1, route="POST /login", status=503)

    response = await manager.request("GET", "/data")

    assert response.ok
    assert toy.counters.requests["POST /login"] == 2
    assert toy.counters.logins == 1
