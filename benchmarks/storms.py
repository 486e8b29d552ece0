"""Token storms: many calls needing a token at the same moment.

- Cold storm: N calls started together on a client with no token must cause exactly one
  login, and the last call must finish within 10% of the time raw aiohttp needs for the
  same N calls with a token it already has. Logins are counted by the server.
- Expiry under load: 1,000 calls in flight while the token reaches its refresh window
  must cause exactly one new login, and no call may wait for a token longer than that
  one login took. Run twice: with the default windows (a background refresh while calls
  go on with the old token) and with the advisory window closed (every call waits for
  the single flight). Needs the sandbox, which issues tokens that really expire.

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
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.server import ROOT, Server, child_env, control, pinned
from benchmarks.server import start as start_server

__all__ = ["cold_storm", "expiry_storm", "run_storms"]

#: Lifetime of the expiring token: long enough for a steady load before the refresh,
#: short enough to keep the run brief; fractional so the JWT's exp is exact.
EXPIRY_LIFETIME = 4.5
#: The "advisory window closed" variant: both windows the last second of the lifetime.
MANDATORY_ONLY = {"advisory_seconds": 1.0, "mandatory_seconds": 1.0}

Report = Callable[[str], None]


def _run_json(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-6:])} failed: {done.stderr.strip()[-1500:]}")
    value: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return value


def cold_storm(
    server: Server, *, calls: int, runs: int, core: int | None, env: dict[str, str],
    report: Report,
) -> dict[str, Any]:
    """``calls`` concurrent calls: vendorkit with no token vs raw aiohttp holding one."""
    samples: dict[str, list[float]] = {"vendorkit": [], "aiohttp": []}
    logins: list[int] = []
    for run in range(runs):
        order = ("vendorkit", "aiohttp") if run % 2 == 0 else ("aiohttp", "vendorkit")
        for name in order:
            before = server.logins()
            figures = _run_json(pinned([
                sys.executable, "-m", "benchmarks.contenders", name, "--base-url",
                server.base_url, "--n", str(calls), "--concurrency", str(calls), "--cold",
            ], core), env)
            samples[name].append(figures["seconds"])
            if name == "vendorkit":
                logins.append(server.logins() - before)
            report(f"  cold storm on {server.kind}, run {run + 1}: {name:9} "
                   f"{calls} calls in {figures['seconds'] * 1000:7.1f} ms")
    vendorkit, raw = statistics.median(samples["vendorkit"]), statistics.median(samples["aiohttp"])
    return {
        "server": server.kind,
        "calls": calls,
        "runs": runs,
        "logins_per_run": logins,
        "vendorkit_seconds": samples["vendorkit"],
        "aiohttp_seconds": samples["aiohttp"],
        "vendorkit_median_seconds": vendorkit,
        "aiohttp_median_seconds": raw,
        "ratio": vendorkit / raw,
        "met": all(n == 1 for n in logins) and vendorkit <= 1.10 * raw,
    }


def expiry_storm(
    *, concurrency: int, lifetime: float, mandatory_only: bool, server_core: int | None,
    client_core: int | None, env: dict[str, str],
) -> dict[str, Any]:
    """One expiry under load, against a fresh sandbox issuing ``lifetime``-second tokens."""
    with start_server("sandbox", core=server_core, token_lifetime=lifetime) as server:
        command = [sys.executable, "-m", "benchmarks.storms", "expiry", "--base-url",
                   server.base_url, "--concurrency", str(concurrency)]
        if mandatory_only:
            command.append("--mandatory-only")
        figures = _run_json(pinned(command, client_core), env)
    figures["met"] = (
        figures["server_logins"] == 1
        and figures["client_logins"] == 1
        and figures["rejected"] == 0
        and figures["errors"] == 0
        and figures["max_token_wait_ms"] <= figures["login_round_trip_ms"] + 5.0
    )
    return figures


def run_storms(
    main_server: Server, *, calls: int, runs: int, concurrency: int,
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
    for mandatory_only in (False, True):
        figures = expiry_storm(concurrency=concurrency, lifetime=EXPIRY_LIFETIME,
                               mandatory_only=mandatory_only, server_core=server_core,
                               client_core=client_core, env=env)
        report(f"  expiry at concurrency {concurrency} ({figures['windows']}): "
               f"{figures['server_logins']} login(s), max token wait "
               f"{figures['max_token_wait_ms']:.1f} ms, login round trip "
               f"{figures['login_round_trip_ms']:.1f} ms")
        results["expiry"].append(figures)
    return results


# --- the expiry client (its own process) ----------------------------------------------


async def _expiry_client(base_url: str, concurrency: int, mandatory_only: bool) -> dict[str, Any]:
    from vendorkit import Cloud4WiClient, RefreshWindows

    windows = RefreshWindows(**MANDATORY_ONLY) if mandatory_only else RefreshWindows()
    login_times: list[float] = []
    client = Cloud4WiClient(
        os.environ["BENCH_CLIENT_KEY"], os.environ["BENCH_CLIENT_SECRET"], base_url=base_url,
        refresh_windows=windows,
        event_hooks={"login": [lambda _: login_times.append(time.time())]},
    )
    try:
        started = time.perf_counter()
        first = await client.login()
        idle_login_ms = (time.perf_counter() - started) * 1000
        if first.expires_at is None:
            raise RuntimeError("the sandbox token has no expiry")
        advisory_at, mandatory_at = windows.deadlines(first)
        # Stop where the next refresh could begin, or past the first token's expiry.
        stop_at = first.expires_at + 0.5 if mandatory_only else first.expires_at - 0.05
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
    renewals = login_times[1:]
    waits_ms = sorted(w * 1000 for w in token_waits)
    before_refresh = [lat for at, lat in latencies if at < refresh_from]
    return {
        "windows": "advisory window closed" if mandatory_only else "default windows",
        "concurrency": concurrency,
        "token_lifetime_s": first.expires_at - (first.issued_at or first.expires_at),
        "calls": len(token_waits),
        "server_logins": int(after["logins"]) - int(before["logins"]),  # type: ignore[call-overload]
        "rejected": int(after["rejected"]) - int(before["rejected"]),  # type: ignore[call-overload]
        "client_logins": stats["logins"],
        "reauths": stats["reauths"],
        "errors": stats["errors"],
        "retries": stats["retries"],
        "idle_login_ms": idle_login_ms,
        # The one refresh flight: from its window opening (the next call starts it) to done.
        "login_round_trip_ms": (renewals[0] - refresh_from) * 1000 if renewals else None,
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
