"""Token storms: many calls needing a token at the same moment.

- Cold storm: N calls started together on a client with no token must cause exactly one
  login, and the last call must finish within 10% of the time raw aiohttp needs for the
  same N calls with a token it already has. Logins are counted by the server.
- Expiry under load: 1,000 calls in flight while the token reaches its refresh window
  must cause exactly one new login, and no call may wait for a token longer than that
  one login took. Run twice: with the default windows (a background refresh while calls
  go on with the old token) and with the advisory window closed (every call waits for
  the single flight). Needs the sandbox, which issues tokens that really expire. A third
  run, not a target, has exactly as many calls in flight as the pool has connections.

``python -m benchmarks.storms expiry --base-url URL`` runs one expiry client and prints
one JSON line; :func:`run_storms` drives everything from ``benchmarks.run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from benchmarks.server import ROOT, Server, control, pinned, python, start as start_server

__all__ = ["cold_storm", "expiry_storm", "run_storms"]

#: Lifetime of the expiring token: long enough for a steady load before the refresh,
#: short enough to keep the run brief; fractional so the JWT's exp is exact.
EXPIRY_LIFETIME = 4.5
#: The "advisory window closed" variant: both windows open with a quarter of the lifetime left.
MANDATORY_ONLY = {"advisory_fraction": 0.25, "mandatory_fraction": 0.25}
#: Allowed on top of the login round trip: the event loop resumes the waiters in turn.
RESUME_SLACK_MS = 5.0
#: vendorkit's default pool size: the third expiry run has this many calls in flight.
POOL_SIZE = 100

Report = Callable[[str], None]


def _run_json(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-6:])} failed: {done.stderr.strip()[-1500:]}")
    value: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return value


#: Who makes the cold storm's calls: raw aiohttp already holding a token, and vendorkit
#: starting with none, through request() (the same work as raw: GET, decode JSON) and
#: through the typed call (which also builds the models, so costs more per call).
COLD_CONTENDERS = ("aiohttp", "vendorkit-request", "vendorkit")


def cold_storm(
    server: Server, *, calls: int, runs: int, core: int | None, env: dict[str, str],
    report: Report,
) -> dict[str, Any]:
    """``calls`` concurrent calls: vendorkit with no token vs raw aiohttp holding one."""
    seconds: dict[str, list[float]] = {name: [] for name in COLD_CONTENDERS}
    logins: dict[str, list[int]] = {name: [] for name in COLD_CONTENDERS[1:]}
    for run in range(runs):
        shift = run % len(COLD_CONTENDERS)  # rotate the order, as the main runs do
        for name in COLD_CONTENDERS[shift:] + COLD_CONTENDERS[:shift]:
            before = server.logins()
            figures = _run_json(pinned([
                *python(), "-m", "benchmarks.contenders", name, "--base-url",
                server.base_url, "--n", str(calls), "--concurrency", str(calls), "--cold",
            ], core), env)
            seconds[name].append(figures["seconds"])
            if name in logins:
                logins[name].append(server.logins() - before)
            report(f"  cold storm on {server.kind}, run {run + 1}: {name:17} "
                   f"{calls} calls in {figures['seconds'] * 1000:7.1f} ms")
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    raw = medians["aiohttp"]
    return {
        "server": server.kind,
        "calls": calls,
        "runs": runs,
        "seconds": seconds,
        "median_seconds": medians,
        "logins_per_run": logins,
        "ratio": {name: medians[name] / raw for name in logins},
        # The target compares the same work: request() and raw aiohttp both decode JSON.
        "met": all(n == 1 for counts in logins.values() for n in counts)
        and medians["vendorkit-request"] <= 1.10 * raw,
    }


def expiry_storm(
    *, concurrency: int, lifetime: float, mandatory_only: bool, server_core: int | None,
    client_core: int | None, env: dict[str, str],
) -> dict[str, Any]:
    """One expiry under load, against a fresh sandbox issuing ``lifetime``-second tokens."""
    with start_server("sandbox", core=server_core, token_lifetime=lifetime) as server:
        command = [*python(), "-m", "benchmarks.storms", "expiry", "--base-url",
                   server.base_url, "--concurrency", str(concurrency)]
        if mandatory_only:
            command.append("--mandatory-only")
        figures = _run_json(pinned(command, client_core), env)
    # The slack: the waiters are resumed one after another once the login lands.
    figures["met"] = (
        figures["server_logins"] == 1
        and figures["client_logins"] == 1
        and figures["rejected"] == 0
        and figures["errors"] == 0
        and figures["max_token_wait_ms"] <= figures["login_round_trip_ms"] + RESUME_SLACK_MS
    )
    return figures


def run_storms(
    main_server: Server, *, calls: int, runs: int, concurrency: int, lifetime: float,
    server_core: int | None, client_core: int | None, env: dict[str, str], report: Report,
) -> dict[str, Any]:
    """Every storm: cold on the main server and on a sandbox, then both expiry variants."""
    results: dict[str, Any] = {"cold": [], "expiry": []}
    results["cold"].append(cold_storm(main_server, calls=calls, runs=runs, core=client_core,
                                      env=env, report=report))
    if main_server.kind != "sandbox":
        with start_server("sandbox", core=server_core) as sandbox:
            results["cold"].append(cold_storm(sandbox, calls=calls, runs=runs,
                                              core=client_core, env=env, report=report))
    expiry_runs = [(concurrency, False, True), (concurrency, True, True)]
    if concurrency > POOL_SIZE:
        expiry_runs.append((POOL_SIZE, False, False))
    for in_flight, mandatory_only, is_target in expiry_runs:
        figures = expiry_storm(concurrency=in_flight, lifetime=lifetime,
                               mandatory_only=mandatory_only, server_core=server_core,
                               client_core=client_core, env=env)
        figures["target"] = is_target
        report(f"  expiry at concurrency {in_flight} ({figures['windows']}): "
               f"{figures['server_logins']} login(s), max token wait "
               f"{figures['max_token_wait_ms']:.1f} ms, login round trip "
               f"{figures['login_round_trip_ms']:.1f} ms, renewal started "
               f"{figures['refresh_started_ms']:.0f} ms into its window")
        results["expiry"].append(figures)
    return results


# --- the expiry client (its own process) ----------------------------------------------


class _TimedLogin:
    """The client's login strategy, each login timed: instrumentation, not a replacement."""

    def __init__(self, strategy: Any) -> None:
        self._strategy = strategy
        self.logins: list[tuple[float, float]] = []  # (start, end), UNIX seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._strategy, name)

    async def login(self, transport: Any) -> Any:
        started = time.time()
        try:
            return await self._strategy.login(transport)
        finally:
            self.logins.append((started, time.time()))


async def _expiry_client(base_url: str, concurrency: int, mandatory_only: bool) -> dict[str, Any]:
    from vendorkit import Cloud4WiClient, RefreshWindows

    windows = RefreshWindows(**MANDATORY_ONLY) if mandatory_only else RefreshWindows()
    client = Cloud4WiClient(
        os.environ["BENCH_CLIENT_KEY"], os.environ["BENCH_CLIENT_SECRET"], base_url=base_url,
        refresh_windows=windows,
    )
    timed = _TimedLogin(client.session.tokens.auth)
    client.session.tokens.auth = timed  # type: ignore[assignment]
    try:
        first = await client.login()
        if first.expires_at is None:
            raise RuntimeError("the sandbox token has no expiry")
        advisory_at, mandatory_at = windows.deadlines(first)
        # Start no call after this: a margin before the renewed token's own advisory
        # window could open (calls queued for a connection take their token late), or,
        # with the advisory window closed, the same margin past the first token's expiry.
        margin = min(0.5, 0.1 * (first.expires_at - (first.issued_at or 0.0)))
        stop_at = first.expires_at + (margin if mandatory_only else -margin)
        before = control(base_url, "GET", "/_sandbox/counters")
        stats_before = client.stats.as_dict()
        token_waits: list[float] = []
        latencies: list[tuple[float, float]] = []
        session = client.session
        cid = "customer-42"

        async def worker() -> None:
            while time.time() < stop_at:
                begun = time.perf_counter()
                await session.get_token()
                waited = time.perf_counter() - begun
                await client.get_organizations(cid)
                token_waits.append(waited)
                latencies.append((time.time(), time.perf_counter() - begun))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        after = control(base_url, "GET", "/_sandbox/counters")
        stats = {k: v - stats_before[k] for k, v in client.stats.as_dict().items()}
    finally:
        await client.aclose()
    refresh_from = mandatory_at if mandatory_only else advisory_at
    (idle_start, idle_end), *renewals = timed.logins
    waits_ms = sorted(w * 1000 for w in token_waits)
    before_refresh = [lat for at, lat in latencies if at < refresh_from]
    return {
        "windows": "advisory window closed" if mandatory_only else "default windows",
        "concurrency": concurrency,
        "token_lifetime_s": first.expires_at - (first.issued_at or first.expires_at),
        "calls": len(token_waits),
        "server_logins": int(after["logins"]) - int(before["logins"]),
        "rejected": int(after["rejected"]) - int(before["rejected"]),
        "client_logins": stats["logins"],
        "reauths": stats["reauths"],
        "errors": stats["errors"],
        "retries": stats["retries"],
        "idle_login_ms": (idle_end - idle_start) * 1000,
        # The renewal: its login request's round trip under the load, and when it began
        # after its window opened (the next call starts it in the advisory window).
        "login_round_trip_ms": (renewals[0][1] - renewals[0][0]) * 1000 if renewals else None,
        "refresh_started_ms": (renewals[0][0] - refresh_from) * 1000 if renewals else None,
        "renewed_at_ms": (renewals[0][1] - refresh_from) * 1000 if renewals else None,
        "mandatory_after_advisory_ms": (mandatory_at - advisory_at) * 1000,
        "calls_that_waited": sum(1 for w in waits_ms if w >= 1.0),
        "max_token_wait_ms": waits_ms[-1] if waits_ms else 0.0,
        "p50_latency_ms": _percentile([lat for _, lat in latencies], 50) * 1000,
        "p99_latency_ms": _percentile([lat for _, lat in latencies], 99) * 1000,
        "max_latency_ms": max(lat for _, lat in latencies) * 1000,
        "max_latency_before_refresh_ms": max(before_refresh, default=0.0) * 1000,
    }


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One token-expiry storm client.")
    parser.add_argument("mode", choices=["expiry"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--mandatory-only", action="store_true")
    args = parser.parse_args(argv)
    figures = asyncio.run(_expiry_client(args.base_url, args.concurrency, args.mandatory_only))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
