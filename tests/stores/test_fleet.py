"""Fleets of real worker processes sharing one credential through a token store.

The sandbox runs on a thread of this process, so its counters are read directly; each
worker is ``fleet_worker.py`` in its own process with its own client and store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from vendorkit.sandbox import RunningSandbox, SandboxThread

from .fleet_worker import Fleet
from .redis_server import RedisServer

CALLS = 500
LOCK_TTL = 2.0
LOGIN_ROUTE = "POST /v1/sts/login/services"


class Sandbox:
    """One vendor's emulator on a background thread."""

    def __init__(self, thread: SandboxThread, vendor: str) -> None:
        self.thread = thread
        self.running: RunningSandbox = thread.sandboxes[vendor]

    def counters(self) -> dict[str, Any]:
        state = self.running.state
        return self.thread.call(state.counters.snapshot)

    def call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the sandbox state (or its faults) on the sandbox's own loop."""
        state = self.running.state
        owner, _, name = what.rpartition(".")
        target = state.faults if owner == "faults" else state
        return self.thread.call(lambda: getattr(target, name)(*args, **kwargs))


@pytest.fixture
def cloud4wi() -> Iterator[Sandbox]:
    with SandboxThread(["cloud4wi"]) as thread:
        yield Sandbox(thread, "cloud4wi")


def redis_fleet(count: int, sandbox: Sandbox, url: str, namespace: str, tmp_path: Path,
                *extra: str) -> Fleet:
    return Fleet(count, sandbox.running.client_kwargs, "--vendor", sandbox.running.vendor,
                 "--store", "redis", "--redis-url", url, "--namespace", namespace,
                 "--calls", str(CALLS), *extra, stderr_dir=tmp_path)


def assert_all_succeeded(results: list[dict[str, Any]], workers: int) -> None:
    assert len(results) == workers
    assert [(r["ok"], r["failed"], r["errors"]) for r in results] == [(CALLS, 0, {})] * workers


def test_cold_fleet_of_8_processes_x_500_calls_makes_one_login(
    cloud4wi: Sandbox, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    with redis_fleet(8, cloud4wi, redis_url, namespace, tmp_path) as fleet:
        fleet.ready()
        results = fleet.run_phase()

    counters = cloud4wi.counters()
    print(f"8 processes x {CALLS} calls: {counters['logins']} login(s) seen by the sandbox")
    assert_all_succeeded(results, 8)
    assert counters["logins"] == 1
    assert sum(r["logins"] for r in results) == 1
    assert counters["requests"]["GET /v2/customers/organizations/{cid}"] == 8 * CALLS


def test_without_a_shared_store_every_process_logs_in(
    cloud4wi: Sandbox, tmp_path: Path
) -> None:
    # The control for the test above: the harness does see one login per process.
    with Fleet(4, cloud4wi.running.client_kwargs, "--vendor", "cloud4wi", "--store", "memory",
               "--calls", str(CALLS), stderr_dir=tmp_path) as fleet:
        fleet.ready()
        results = fleet.run_phase()

    assert_all_succeeded(results, 4)
    assert cloud4wi.counters()["logins"] == 4


def test_after_the_token_expires_the_fleet_refreshes_once(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    # Wokelo rotates the refresh token and revokes the access token it replaces, and ends
    # the session if a used refresh token comes back: a second refresh anywhere in the
    # fleet would show as a failed login and a new login. Phase 1 is short so that it
    # ends long before the refresh windows open; phase 2 starts once the token expired.
    with SandboxThread(["wokelo"], token_lifetime=6.0) as thread:
        wokelo = Sandbox(thread, "wokelo")
        with redis_fleet(8, wokelo, redis_url, namespace, tmp_path, "--first-calls", "10",
                         "--phases", "2", "--advisory", "0.5", "--mandatory", "0.25") as fleet:
            fleet.ready()
            before = fleet.run_phase()
            expires_at = max(r["expires_at"] for r in before)
            time.sleep(max(0.0, expires_at - time.time()) + 0.2)
            after = fleet.run_phase()
        counters = wokelo.counters()

    print(f"after expiry: {counters['refreshes']} refresh(es), {counters['logins']} login(s)")
    assert [(r["ok"], r["failed"]) for r in before] == [(10, 0)] * 8
    assert_all_succeeded(after, 8)
    assert counters["logins"] == 1
    assert counters["refreshes"] == 1
    assert counters["failed_logins"] == 0
    assert len({r["expires_at"] for r in before}) == 1
    assert len({r["expires_at"] for r in after}) == 1  # every process uses the new token
    assert min(r["expires_at"] for r in after) > expires_at


def test_a_lock_holder_killed_mid_login_is_replaced_within_the_lock_ttl(
    cloud4wi: Sandbox, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    cloud4wi.call("faults.slow_next", 1, 30.0, target="auth")  # the first login hangs
    with redis_fleet(8, cloud4wi, redis_url, namespace, tmp_path,
                     "--lock-ttl", str(LOCK_TTL)) as fleet:
        fleet.ready()
        fleet.go()
        holder = wait_for_lock_holder(redis_url, namespace)
        wait_for(lambda: cloud4wi.counters()["requests"].get(LOGIN_ROUTE, 0) == 1)
        fleet.kill(holder)  # now that its login is stuck in the sandbox
        killed_at = time.time()
        results = fleet.read()

    assert holder not in {r["pid"] for r in results}
    assert_all_succeeded(results, 7)
    recovery = min(r["first_ok_at"] for r in results) - killed_at
    print(f"lock holder {holder} killed; the fleet recovered in {recovery:.2f} s "
          f"(lock TTL {LOCK_TTL} s)")
    assert 0 < recovery <= LOCK_TTL + 1.0  # the lock's TTL, plus one login and one call
    assert cloud4wi.counters()["logins"] == 1  # the killed holder's login never finished


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def wait_for_lock_holder(redis_url: str, namespace: str, timeout: float = 15.0) -> int:
    """The pid of the process holding the login lock (lock values are host:pid:nonce)."""
    deadline = time.monotonic() + timeout
    with redis.Redis.from_url(redis_url) as client:
        while time.monotonic() < deadline:
            for key in client.scan_iter(match=f"{namespace}:*:lock"):
                owner = client.get(key)
                if owner:
                    return int(owner.decode().split(":")[-2])
            time.sleep(0.01)
    raise AssertionError("no process took the login lock")


def test_redis_stopped_mid_run_falls_back_and_calls_keep_succeeding(
    cloud4wi: Sandbox, namespace: str, tmp_path: Path
) -> None:
    server = RedisServer().start()
    try:
        with redis_fleet(8, cloud4wi, server.url, namespace, tmp_path,
                         "--phases", "2") as fleet:
            fleet.ready()
            before = fleet.run_phase()
            server.stop()
            cloud4wi.call("revoke_all_tokens")  # every process must now renew its token
            after = fleet.run_phase()
        stderr = fleet.stderr()
    finally:
        server.stop()

    assert_all_succeeded(before, 8)
    assert_all_succeeded(after, 8)
    assert [text.count("is unreachable") for text in stderr] == [1] * 8  # one warning each
    assert 2 <= cloud4wi.counters()["logins"] <= 1 + 8  # 1 shared, then each on its own


def test_file_store_fleet_of_4_processes_makes_one_login(
    cloud4wi: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "tokens.json"
    with Fleet(4, cloud4wi.running.client_kwargs, "--vendor", "cloud4wi", "--store", "file",
               "--file", str(path), "--calls", str(CALLS), stderr_dir=tmp_path) as fleet:
        fleet.ready()
        results = fleet.run_phase()

    assert_all_succeeded(results, 4)
    assert cloud4wi.counters()["logins"] == 1
    assert path.stat().st_mode & 0o777 == 0o600
