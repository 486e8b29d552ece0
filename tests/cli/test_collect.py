"""``vendorkit collect``: whole listings to JSON Lines, page by page, resumable after Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from tests.cli.conftest import TIMEOUT
from tests.stores.redis_server import REDIS_URL_VARIABLE as TEST_REDIS_URL, RedisServer
from vendorkit.cli.collect import REDIS_URL_VARIABLE
from vendorkit.cli.progress import RateStatus
from vendorkit.events import EventHook
from vendorkit.sandbox import Quota, SandboxState, serve
from vendorkit.sandbox.cloudcx import users as sandbox_users
from vendorkit.sandbox.wogeez import companies as wogeez_companies
from vendorkit.vendors import CloudCXClient

if TYPE_CHECKING:
    from tests.cli.conftest import CLI, Sandboxes

USERS, COMPANIES = 2500, 300


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON Lines file, parsed (a torn line fails the test)."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the file ends mid-line"
    return [json.loads(line) for line in text.splitlines()]


def test_collect_cloudcx_users_writes_every_user_once(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "users.jsonl"

    result = cli.run("collect", "cloudcx", "users", "--sandbox", "--out", str(out))

    assert result.returncode == 0, result.stderr
    users = records(out)
    assert len(users) == len({user["id"] for user in users}) == USERS
    assert {"id", "userName", "displayName", "email"} <= set(users[0])  # the vendor's keys
    assert "role" in users[0]  # a key the model does not declare is kept
    assert f"wrote {USERS} users to {out}" in result.stdout
    assert not Path(f"{out}.progress").exists()


def test_collect_wogeez_companies_writes_every_company(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "companies.jsonl"

    result = cli.run("collect", "wogeez", "companies", "--sandbox", "--out", str(out),
                     "--page-size", "40")

    assert result.returncode == 0, result.stderr
    companies = records(out)
    assert len({company["id"] for company in companies}) == len(companies) == COMPANIES
    assert "foundedYear" in companies[0]


def test_collect_with_keywords_keeps_only_matching_users(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "silva.jsonl"

    result = cli.run("collect", "cloudcx", "users", "--keywords", "silva", "--sandbox",
                     "--out", str(out))

    assert result.returncode == 0, result.stderr
    users = records(out)
    assert 0 < len(users) < USERS
    assert all("silva" in (user["userName"] + user["displayName"] + user["email"]).lower()
               for user in users)


def test_interrupted_collect_leaves_whole_pages_and_resume_completes_it(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path
) -> None:
    out = tmp_path / "users.jsonl"
    env = sandbox.env("cloudcx")
    state = sandbox.state("cloudcx")

    def set_latency(seconds: float) -> None:
        def change(target: SandboxState = state) -> None:
            target.faults.latency = seconds

        sandbox.thread.call(change)

    set_latency(0.05)  # 50 pages of 50 users: long enough to interrupt
    process = cli.start("collect", "cloudcx", "users", "--page-size", "50", "--out", str(out),
                        env=env)
    deadline = time.monotonic() + 30
    while (not out.exists() or out.stat().st_size < 20_000) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    set_latency(0)

    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    assert "Traceback" not in stderr
    partial = records(out)
    assert 0 < len(partial) < USERS
    assert len(partial) % 50 == 0  # whole pages only

    other_settings = cli.run("collect", "cloudcx", "users", "--page-size", "100",
                             "--out", str(out), "--resume", env=env)
    not_resumed = cli.run("collect", "cloudcx", "users", "--page-size", "50",
                          "--out", str(out), env=env)
    resumed = cli.run("collect", "cloudcx", "users", "--page-size", "50", "--out", str(out),
                      "--resume", env=env)

    assert other_settings.returncode == 2
    assert "page_size differs" in cli.one_line(other_settings.stderr)
    assert not_resumed.returncode == 2
    assert "pass --resume" in cli.one_line(not_resumed.stderr)
    assert resumed.returncode == 0, resumed.stderr
    users = records(out)
    assert users[: len(partial)] == partial
    assert len(users) == len({user["id"] for user in users}) == USERS
    pages = sandbox.counters("cloudcx")["requests"]
    assert isinstance(pages, dict)
    # Each page asked for once, and perhaps again the one in flight at Ctrl-C.
    assert USERS // 50 <= pages["GET /openapi/v2/user/page"] <= USERS // 50 + 1


def test_resume_of_a_finished_file_is_refused(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "companies.jsonl"
    assert cli.run("collect", "wogeez", "companies", "--sandbox", "--out",
                   str(out)).returncode == 0

    result = cli.run("collect", "wogeez", "companies", "--sandbox", "--out", str(out),
                     "--resume")

    assert result.returncode == 2
    assert "no progress record" in cli.one_line(result.stderr)
    assert len(records(out)) == COMPANIES


def test_collect_refuses_an_unknown_listing(cli: CLI, tmp_path: Path) -> None:
    result = cli.run("collect", "wokelo", "companies", "--sandbox",
                     "--out", str(tmp_path / "x.jsonl"))

    assert result.returncode == 2
    assert "collectable: cloudcx users, wogeez companies" in cli.one_line(result.stderr)


# --- a fleet: --shard, --rate, --redis -------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """CI's Redis (``VENDORKIT_TEST_REDIS_URL``), else a redis-server started for the module."""
    url = os.environ.get(TEST_REDIS_URL)
    if url:
        yield url
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def changed(sandbox: Sandboxes, vendor: str, **values: object) -> Iterator[None]:
    """The emulator's state with some attributes changed (``quota``, ``settings``), on its
    own loop, and restored after."""
    state = sandbox.state(vendor)
    before = {name: getattr(state, name) for name in values}

    def apply(changes: dict[str, object]) -> None:
        for name, value in changes.items():
            setattr(state, name, value)

    sandbox.thread.call(lambda: apply(values))
    try:
        yield
    finally:
        sandbox.thread.call(lambda: apply(before))


def run_shards(cli: CLI, count: int, *args: str,
               envs: list[dict[str, str]]) -> list[tuple[int, str, str]]:
    """``vendorkit collect ... --shard K/count`` for every K at once, one process each;
    (exit status, stdout, stderr) of each, in shard order."""
    processes = [cli.start(*args, "--shard", f"{k}/{count}", env=envs[k - 1])
                 for k in range(1, count + 1)]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
        results.append((process.returncode, stdout, stderr))
    return results


def every_user_id() -> list[Any]:
    """The emulator's user ids, sorted: what the shards must write between them, once each."""
    return sorted(user["id"] for user in sandbox_users())


def cloudcx_counter(sandbox: Sandboxes, name: str) -> int:
    value = sandbox.counters("cloudcx")[name]
    assert isinstance(value, int)
    return value


def shard_files(out: Path, count: int) -> list[Path]:
    return [out.with_name(f"{out.stem}-{k}-of-{count}{out.suffix}") for k in range(1, count + 1)]


def test_three_shards_in_three_processes_write_every_user_exactly_once(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path
) -> None:
    out = tmp_path / "users.jsonl"

    results = run_shards(cli, 3, "collect", "cloudcx", "users", "--page-size", "100",
                         "--out", str(out), envs=[sandbox.env("cloudcx")] * 3)

    for status, _, stderr in results:
        assert status == 0, stderr
    files = shard_files(out, 3)
    parts = [[user["id"] for user in records(path)] for path in files]
    assert [len(part) for part in parts] == [900, 800, 800]  # pages 1,4..25 / 2,5..23 / 3,6..24
    ids = [user_id for part in parts for user_id in part]
    assert sorted(ids) == every_user_id()  # no overlap
    assert f"wrote 800 users to {files[1]}" in results[1][1]
    assert not out.exists() and not any(Path(f"{path}.progress").exists() for path in files)
    requests = sandbox.counters("cloudcx")["requests"]
    assert isinstance(requests, dict)
    assert requests["GET /openapi/v2/user/page"] == 25  # each page once, none past the end


def test_shards_of_a_capped_listing_split_the_pages_the_server_serves(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path
) -> None:
    out = tmp_path / "users.jsonl"
    capped = attrs.evolve(sandbox.state("cloudcx").settings, page_cap=50)

    with changed(sandbox, "cloudcx", settings=capped):
        results = run_shards(cli, 3, "collect", "cloudcx", "users", "--page-size", "100",
                             "--out", str(out), envs=[sandbox.env("cloudcx")] * 3)

    assert [status for status, _, _ in results] == [0, 0, 0], results
    ids = [user["id"] for path in shard_files(out, 3) for user in records(path)]
    assert sorted(ids) == every_user_id()


def test_an_interrupted_shard_resumes_its_own_pages_only(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path
) -> None:
    out = tmp_path / "companies.jsonl"
    part = tmp_path / "companies-2-of-3.jsonl"
    env = sandbox.env("wogeez")
    args = ("collect", "wogeez", "companies", "--page-size", "10", "--shard", "2/3",
            "--out", str(out))

    with changed(sandbox, "wogeez"):
        sandbox.thread.call(lambda: setattr(sandbox.state("wogeez").faults, "latency", 0.1))
        process = cli.start(*args, env=env)
        deadline = time.monotonic() + 30
        while (not part.exists() or part.stat().st_size < 3_000) and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    sandbox.thread.call(lambda: setattr(sandbox.state("wogeez").faults, "latency", 0))
    other_shard = cli.run(*args[:-4], "--shard", "3/3", "--out", str(out), "--resume", env=env)
    resumed = cli.run(*args, "--resume", env=env)

    assert process.returncode == 130, stderr
    assert other_shard.returncode == 0, other_shard.stderr  # its own file: a fresh start
    assert resumed.returncode == 0, resumed.stderr
    # Shard 2 of 3, pages of 10 counted from 0: pages 1, 4, 7 ... 28.
    expected = [c["id"] for i, c in enumerate(wogeez_companies()) if (i // 10) % 3 == 1]
    assert [company["id"] for company in records(part)] == expected


@pytest.mark.parametrize(("shard", "message"), [
    ("0/3", "there is no shard 0 of 3: K counts from 1 to N (1/3 ... 3/3)"),
    ("4/3", "there is no shard 4 of 3: K counts from 1 to N (1/3 ... 3/3)"),
    ("1/0", "expected K/N with N at least 1, got '1/0'"),
    ("3", "expected K/N, shard K of N (e.g. 2/8), got '3'"),
])
def test_a_shard_outside_one_to_n_is_refused(cli: CLI, tmp_path: Path, shard: str,
                                             message: str) -> None:
    result = cli.run("collect", "cloudcx", "users", "--sandbox", "--shard", shard,
                     "--out", str(tmp_path / "users.jsonl"))

    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line == f"vendorkit collect: error: argument --shard: {message}"
    assert not list(tmp_path.glob("users*"))


def test_burst_without_rate_is_refused(cli: CLI, tmp_path: Path) -> None:
    result = cli.run("collect", "cloudcx", "users", "--sandbox", "--burst", "5",
                     "--out", str(tmp_path / "users.jsonl"))

    assert result.returncode == 2
    assert cli.one_line(result.stderr) == "vendorkit: error: --burst needs --rate"


def test_shards_at_a_rate_below_the_quota_lose_no_user_and_draw_few_429s(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path
) -> None:
    out = tmp_path / "users.jsonl"

    with changed(sandbox, "cloudcx", quota=Quota(20, burst=5)):
        # One HOME: the three share the token cache file, and with it the rate (per host).
        results = run_shards(cli, 3, "collect", "cloudcx", "users", "--page-size", "50",
                             "--rate", "15", "--out", str(out),
                             envs=[sandbox.env("cloudcx")] * 3)

    for status, _, stderr in results:
        assert status == 0, stderr
        assert "limit 15/s" in stderr  # the progress shows the rate
    ids = [user["id"] for path in shard_files(out, 3) for user in records(path)]
    assert sorted(ids) == every_user_id()
    assert cloudcx_counter(sandbox, "rate_limited") <= 2  # 3 x 15/s unshared would be 45/s


def test_shards_on_separate_hosts_share_the_token_and_the_rate_through_redis(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path, redis_url: str
) -> None:
    out = tmp_path / "users.jsonl"
    hosts = [{"HOME": str(tmp_path / f"host{k}"), "XDG_CACHE_HOME": str(tmp_path / f"host{k}"),
              "XDG_CONFIG_HOME": str(tmp_path / f"host{k}")} for k in range(3)]

    with changed(sandbox, "cloudcx", quota=Quota(20, burst=5)):
        results = run_shards(cli, 3, "collect", "cloudcx", "users", "--page-size", "50",
                             "--rate", "15", "--redis", redis_url, "--out", str(out),
                             envs=[sandbox.env("cloudcx") | host for host in hosts])

    for status, _, stderr in results:
        assert status == 0, stderr
    ids = [user["id"] for path in shard_files(out, 3) for user in records(path)]
    assert sorted(ids) == every_user_id()
    assert cloudcx_counter(sandbox, "logins") <= 1  # the token came from Redis
    assert cloudcx_counter(sandbox, "rate_limited") <= 2  # 15/s held for the three together


def test_collect_against_a_quota_with_no_rate_given_adapts_and_shows_the_429s(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path
) -> None:
    out = tmp_path / "users.jsonl"

    with changed(sandbox, "cloudcx", quota=Quota(10, burst=2)):
        result = cli.run("collect", "cloudcx", "users", "--page-size", "200", "--out", str(out),
                         env=sandbox.env("cloudcx"))

    assert result.returncode == 0, result.stderr
    assert len({user["id"] for user in records(out)}) == USERS
    throttled = cloudcx_counter(sandbox, "rate_limited")
    assert throttled > 0  # 13 pages back to back: over the quota
    final = result.stderr.strip().splitlines()[-1]
    assert final.startswith(f"cloudcx users: {USERS}/{USERS}")
    assert f"{throttled} x 429" in final


async def test_rate_status_shows_a_pause_and_the_429s_while_a_throttle_holds() -> None:
    throttled = asyncio.Event()
    hooks: dict[str, list[EventHook]] = {"rate_limited": [lambda _: throttled.set()]}
    async with serve("cloudcx", quota=Quota(1, burst=1)) as running, \
            CloudCXClient(**running.client_kwargs, event_hooks=hooks) as client:  # type: ignore[arg-type]
        status = RateStatus(client.stats, client.session.limiter)
        await client.get_user_page()
        second = asyncio.create_task(client.get_user_page())  # over the quota: 429, pause
        await asyncio.wait_for(throttled.wait(), timeout=10)
        during = status()
        await second
        after = status()

    assert "paused" in during and "1 x 429" in during, during
    assert "paused" not in after
    assert "learned limit" in after  # adaptive: a rate learned from the throttle


def test_redis_url_from_the_environment_is_used_and_its_password_never_shown(
    cli: CLI, tmp_path: Path
) -> None:
    out = tmp_path / "companies.jsonl"

    result = cli.run("collect", "wogeez", "companies", "--sandbox", "--out", str(out),
                     env={REDIS_URL_VARIABLE: "redis://:s3cr3t-pass@127.0.0.1:1/0"})

    assert result.returncode == 0, result.stderr  # the store falls back to this process
    assert "redis://:***@127.0.0.1:1/0 is unreachable" in result.stderr
    assert "s3cr3t-pass" not in result.stdout + result.stderr
    assert len(records(out)) == COMPANIES
