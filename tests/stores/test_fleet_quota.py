"""Rate limits shared by a fleet: real worker processes, a real redis-server, a real emulator.

Each worker is ``quota_worker.py`` in its own process with its own limiter on the shared
store; it reports when each permit was granted (``time.time()``, one clock on one host).
Throttles are real 429s from the Cloud4Wi emulator's quota (``Retry-After: 1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import redis.asyncio as aioredis
from multidict import CIMultiDictProxy

from vendorkit.errors import TokenStoreError
from vendorkit.ratelimit import RateLimit, RateLimiter, build_limiter
from vendorkit.sandbox import Quota, SandboxThread, serve
from vendorkit.stores import RedisTokenStore, quota as q
from vendorkit.vendors.cloud4wi import Cloud4WiClient

from .quota_worker import QuotaFleet
from .redis_server import RedisServer

ROUTE = "/v2/customers/organizations/c1"
ROOT = Path(__file__).resolve().parents[2]


def new_key() -> str:
    return f"vendorkit:token:fleet:{uuid.uuid4().hex}"


def redis_args(url: str, namespace: str, key: str, *extra: str) -> tuple[str, ...]:
    return ("--store", "redis", "--redis-url", url, "--namespace", namespace, "--key", key,
            *extra)


def run_fleet(count: int, args: tuple[str, ...], tmp_path: Path,
              during: Callable[[], None] | None = None,
              client_kwargs: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Start ``count`` workers, let them go together, run ``during`` meanwhile; their results."""
    with QuotaFleet(count, *args, stderr_dir=tmp_path, client_kwargs=client_kwargs) as fleet:
        fleet.read("ready")
        fleet.go()
        if during is not None:
            during()
        return fleet.read("done")


def most_in_any_window(times: list[float], window: float) -> int:
    """The most permits granted within any ``window`` seconds."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


@contextlib.asynccontextmanager
async def real_429() -> AsyncIterator[CIMultiDictProxy[str]]:
    """The headers of a real 429 from the emulator (a 1/s quota, called twice at once)."""
    async with serve("cloud4wi", quota=Quota(1, burst=1)) as sandbox:
        client = Cloud4WiClient(**sandbox.client_kwargs)
        try:
            token = await client.session.get_token()
            auth = client.session.auth
            async with aiohttp.ClientSession(
                    headers={auth.header_name: auth.header_value(token)}) as http:
                statuses = []
                for _ in range(2):
                    async with http.get(sandbox.base_url + ROUTE) as response:
                        await response.read()
                        statuses.append(response.status)
                assert statuses == [200, 429]
                yield response.headers
        finally:
            await client.aclose()


# --- the configured limit -------------------------------------------------------------------


def test_four_processes_sharing_redis_keep_the_configured_rate_in_every_window(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    args = redis_args(redis_url, namespace, new_key(), "--rate", "100", "--burst", "10",
                      "--permits", "75", "--concurrency", "20")
    results = run_fleet(4, args, tmp_path)

    grants = [at for result in results for at in result["grants"]]
    span = max(grants) - min(grants)
    per_second = most_in_any_window(grants, 1.0)
    print(f"4 processes x 75 permits at 100/s, burst 10: {span:.2f} s, "
          f"at most {per_second} in any second")
    assert len(grants) == 300
    assert span >= (300 - 10) / 100 - 0.1  # no faster than the rate, fleet-wide
    assert per_second <= 100 + 10 + 2  # the rate plus the burst, in every 1 s window
    assert most_in_any_window(grants, 0.25) <= 25 + 10 + 2
    firsts = sorted(min(result["grants"]) for result in results)
    assert firsts[-1] - firsts[0] < 1.0  # every process got permits from the start: shared


def test_processes_sharing_a_token_file_keep_the_configured_rate_of_the_host(
    tmp_path: Path,
) -> None:
    args = ("--store", "file", "--file", str(tmp_path / "tokens.json"), "--key", new_key(),
            "--rate", "50", "--burst", "5", "--permits", "30", "--concurrency", "10")
    results = run_fleet(3, args, tmp_path)

    grants = [at for result in results for at in result["grants"]]
    assert len(grants) == 90
    assert max(grants) - min(grants) >= (90 - 5) / 50 - 0.1
    assert most_in_any_window(grants, 1.0) <= 50 + 5 + 2


# --- the shared pause -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def paused_fleet(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[float, list[list[float]]]]:
    """Three processes taking permits at 200/s while this process, on the same credential,
    reports a real 429 (Retry-After: 1) one second in: when it did, and each one's grants."""
    server = RedisServer().start()
    key, reported = new_key(), []

    async def report() -> None:
        store = RedisTokenStore(server.url, namespace="paused")
        limiter = build_limiter(RateLimit(200), store, key)
        assert limiter is not None
        await limiter.acquire()  # a member of the fleet: connected, its script loaded
        async with real_429() as headers:
            reported.append(time.time())
            limiter.on_response(429, headers)
            await asyncio.sleep(0.1)  # the report reaches Redis
        await store.aclose()

    def during() -> None:
        time.sleep(1.0)
        asyncio.run(report())

    args = redis_args(server.url, "paused", key, "--rate", "200", "--permits", "250",
                      "--concurrency", "20")
    try:
        results = run_fleet(3, args, tmp_path_factory.mktemp("paused"), during)
    finally:
        server.stop()
    yield reported[0], [sorted(result["grants"]) for result in results]


def test_a_429_seen_by_one_process_pauses_every_process_and_task_of_the_fleet(
    paused_fleet: tuple[float, list[list[float]]],
) -> None:
    reported, by_process = paused_fleet
    grants = sorted(at for process in by_process for at in process)
    during_pause = [at - reported for at in grants if reported + 0.05 < at < reported + 0.97]
    print(f"grants in the second after the 429: {during_pause}; "
          f"after it: {[sum(at >= reported + 0.97 for at in p) for p in by_process]}")
    assert len(grants) == 750
    assert all(process[0] < reported for process in by_process)  # all busy before ...
    assert during_pause == []  # ... then nobody, in any process or task, took a permit
    assert all(process[-1] >= reported + 0.97 for process in by_process)  # ... all resumed


def test_a_fleet_resumes_after_a_pause_spread_at_the_rate_not_at_one_instant(
    paused_fleet: tuple[float, list[list[float]]],
) -> None:
    reported, by_process = paused_fleet
    grants = sorted(at for process in by_process for at in process)
    resumed = [at for at in grants if at >= reported + 0.97][:40]
    spread = resumed[-1] - resumed[0]
    print(f"the first 40 permits after the pause spread over {spread * 1000:.0f} ms")
    assert spread >= 39 / 200 * 0.8  # 5 ms apart at 200/s, not released together
    assert most_in_any_window(resumed, 0.01) <= 10


async def test_an_adaptive_process_joining_a_throttled_fleet_waits_from_its_first_call(
    redis_url: str, namespace: str,
) -> None:
    key = new_key()
    store = RedisTokenStore(redis_url, namespace=namespace)
    other_store = RedisTokenStore(redis_url, namespace=namespace)  # another process's
    throttled = build_limiter(None, store, key)
    joining = build_limiter(None, other_store, key)
    assert throttled is not None and joining is not None
    async with real_429() as headers:
        throttled.on_response(429, headers)
        reported = time.monotonic()
        await asyncio.sleep(0.1)  # the report reaches Redis

    assert joining.engaged  # a shared adaptive limiter asks the fleet first
    waited = await joining.acquire()
    assert time.monotonic() - reported >= 0.95
    assert waited >= 0.8 and joining.rate is not None
    await store.aclose()
    await other_store.aclose()


async def test_an_adaptive_process_on_a_calm_fleet_drops_to_the_free_path_after_one_look(
    redis_url: str, namespace: str,
) -> None:
    store = RedisTokenStore(redis_url, namespace=namespace)
    limiter = build_limiter(None, store, new_key())
    assert limiter is not None and limiter.engaged

    assert await limiter.acquire() == pytest.approx(0.0, abs=0.05)
    assert not limiter.engaged
    await store.aclose()


# --- the adaptive rate, fleet-wide ----------------------------------------------------------


def test_an_adaptive_fleet_learns_the_quota_and_stops_hitting_it(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    rate = 100
    with SandboxThread(["cloud4wi"], quota=Quota(rate, burst=5)) as thread:
        sandbox = thread.sandboxes["cloud4wi"]
        args = redis_args(redis_url, namespace, "", "--permits", "250", "--concurrency", "20",
                          "--call")
        # The limiter's key is the token store's key of the credential, as a client's is.
        key = f"vendorkit:token:cloud4wi:{uuid.uuid4().hex}"
        args = tuple(key if a == "" else a for a in args)
        results = run_fleet(3, args, tmp_path, client_kwargs=sandbox.client_kwargs)
        counters = thread.call(sandbox.state.counters.snapshot)

    statuses = sorted((at, status) for result in results for at, status in result["statuses"])
    started = min(result["started"] for result in results)
    ended = statuses[-1][0]
    ok = sum(status == 200 for _, status in statuses)
    late = [status for at, status in statuses if at >= started + 4.0]
    late_429 = sum(status == 429 for status in late)
    goodput = (3 * 250 / rate) / (ended - started)
    print(f"adaptive fleet, 3 x 250 calls on {rate}/s: {len(statuses)} requests, "
          f"{len(statuses) - ok} answered 429, after 4 s {late_429} of {len(late)}; "
          f"goodput {goodput:.2f}; rates {[round(r['rate'] or 0) for r in results]}")
    assert ok == 3 * 250  # no call lost
    assert counters["rate_limited"] == len(statuses) - ok
    assert late_429 <= 0.1 * len(late)  # it learned: hardly throttled after the start
    assert goodput >= 0.4  # (the no-limiter baseline: benchmarks/README.md)
    assert all(0 < (r["rate"] or 0) <= 1.5 * rate for r in results)  # learned, not above


# --- Redis unreachable ----------------------------------------------------------------------


async def test_with_redis_unreachable_each_process_keeps_the_limit_on_its_own(
    redis_server: Callable[[], RedisServer],
) -> None:
    server = redis_server()
    store = RedisTokenStore(server.url, timeout=0.5)
    limiter: RateLimiter | None = build_limiter(RateLimit(20, burst=2), store, new_key())
    assert limiter is not None
    server.stop()
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(12)))

    assert time.monotonic() - started >= (12 - 2) / 20 - 0.05
    await store.aclose()


async def test_with_redis_unreachable_and_strict_a_permit_raises_token_store_error(
    redis_server: Callable[[], RedisServer],
) -> None:
    server = redis_server()
    store = RedisTokenStore(server.url, timeout=0.5, strict=True)
    limiter = build_limiter(RateLimit(20), store, new_key())
    assert limiter is not None
    server.stop()

    with pytest.raises(TokenStoreError, match="strict=True"):
        await limiter.acquire()
    await store.aclose()


# --- one algorithm, two languages -----------------------------------------------------------


async def test_the_redis_script_takes_the_same_steps_as_the_python_algorithm(
    redis_url: str, namespace: str,
) -> None:
    client = aioredis.from_url(redis_url)
    script = client.register_script(q.SCRIPT)
    key, rng = f"{namespace}:parity", random.Random(12)
    steps = [(rng.choice([0, 1, 1, 4, 12]), rng.choice([0.0, 0.0, 40.0]), rng.choice([1, 5]),
              q.Report(pause=rng.choice([0.0, 0.0, 0.0, 0.05]), throttled=rng.random() < 0.15,
                       estimate=rng.choice([0.0, 25.0])), rng.choice([0.0, 0.001, 0.02]))
             for _ in range(200)]
    # Then past the slow start for certain: throttles further apart than an episode.
    steps += [(3, 0.0, 1, q.Report(pause=0.05, throttled=True), q.EPISODE + 0.1)] * 3
    try:
        for step, (n, rate, burst, report, pause_after) in enumerate(steps):
            stored = await client.hgetall(key)
            state = q.QuotaState(**{k.decode(): float(v) for k, v in stored.items()})
            reply = await script(keys=[key], args=q.script_args(n, report, rate, burst, True))
            now = float(reply[5])  # Redis's clock, as the script read it
            q.throttle(state, now, report, adaptive=True)
            grant = q.take(state, now, n, rate, burst)

            stored = await client.hgetall(key)
            # Same steps, same numbers, to the last bit or two: Lua's math library and
            # Python's may round a cube root or a power one ulp apart.
            same = pytest.approx(attrs.asdict(state), rel=1e-12, abs=1e-12)
            assert {k.decode(): float(v) for k, v in stored.items()} == same, step
            assert (float(reply[0]), float(reply[1]), float(reply[3]), int(reply[4])) == (
                pytest.approx((grant.first, grant.interval, grant.rate, grant.count),
                              rel=1e-12, abs=1e-12)), step
            await asyncio.sleep(pause_after)
        assert state.rate > 0 and state.peak > 0  # the walk went past the slow start
    finally:
        await client.aclose()


# --- the benchmark's harness ----------------------------------------------------------------


def test_the_quota_benchmark_runs_every_row_in_its_quick_mode(redis_url: str,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "quota.json"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.quota", "--quick", "--redis-url", redis_url,
         "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr

    rows = {row["row"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"none", "adaptive", "configured"}
    assert all(row["calls"] == 80 and row["logins"] == 1 for row in rows.values())
    assert rows["configured"]["lost"] == 0
    assert "| Row | lost calls |" in finished.stdout
