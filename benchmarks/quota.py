"""Calls at a vendor's quota: a fleet on one credential, with no limiter, adaptive, configured.

The Cloud4Wi emulator runs in its own process with a per-credential quota
(``vendorkit sandbox --quota RATE/BURST``: GCRA, ``429`` + ``Retry-After`` beyond it). For each
row, P worker processes (this file, ``--worker``) each make N typed calls
(``get_organizations``) at concurrency C, with a ``Cloud4WiClient`` on one shared
``RedisTokenStore`` (a fresh namespace per row) and ``rate_limit=``:

- ``none``: ``False``, no limiter: today's behaviour, every 429 left to the retry policy;
- ``adaptive``: nothing given, the default: the limiter learns the rate from the 429s;
- ``configured``: ``RateLimit(RATE, burst=BURST)``, the quota as the vendor documents it.

Figures: calls lost (raised to the caller), the share of requests answered 429 (the
emulator's counters), goodput (ideal time, ``P * N / RATE``, over the wall time from the
start signal to the last call's end) and logins (the emulator's count)::

    python -m benchmarks.quota [--processes 8 --calls 500 --concurrency 50 --rate 400
        --burst 20] [--rows none,adaptive,configured] [--redis-url URL] [--json out.json]
    python -m benchmarks.quota --quick     # a smoke run: 2 x 40 calls, 100/s, a few seconds
    python -m benchmarks.quota --simulate  # the same fleet in virtual time (the logic alone)

Until the client takes ``rate_limit=``, only the ``none`` row runs (without the argument,
which is then today's behaviour) and the others are reported as not available.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import inspect
import json
import math
import os
import queue
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.run import cores
from benchmarks.server import pinned

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("none", "adaptive", "configured")
CONFIG_VARIABLE = "VENDORKIT_QUOTA_BENCH"
LABELS = {"none": "no limiter (rate_limit=False)", "adaptive": "adaptive (the default)",
          "configured": "configured (RateLimit(rate, burst=burst))"}


# --- the worker -----------------------------------------------------------------------------


async def work() -> None:
    """One process of the fleet: ready, wait for ``go``, make the calls, print the figures."""
    from vendorkit.ratelimit import RateLimit
    from vendorkit.stores import RedisTokenStore
    from vendorkit.vendors.cloud4wi import Cloud4WiClient

    config = json.loads(os.environ[CONFIG_VARIABLE])
    options: dict[str, Any] = {}
    if config["row"] == "none" and config["wired"]:
        options["rate_limit"] = False
    elif config["row"] == "configured":
        options["rate_limit"] = RateLimit(config["rate"], burst=config["burst"])
    store = RedisTokenStore(config["redis_url"], namespace=config["namespace"])
    client = Cloud4WiClient.from_env(token_store=store, **options)
    print(json.dumps({"event": "ready", "pid": os.getpid()}), flush=True)
    if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        return
    errors: collections.Counter[str] = collections.Counter()
    left = config["calls"]
    started = time.time()

    async def one() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            try:
                await client.get_organizations("c1")
            except Exception as exc:
                errors[type(exc).__name__] += 1

    try:
        await asyncio.gather(*(one() for _ in range(config["concurrency"])))
        ended = time.time()
        limiter = getattr(client.session, "limiter", None)
        print(json.dumps({
            "event": "done", "pid": os.getpid(), "started": started, "ended": ended,
            "lost": sum(errors.values()), "errors": dict(errors),
            "stats": client.stats.as_dict(),
            "waited": getattr(limiter, "waited", None),
            "rate": getattr(limiter, "rate", None),
        }), flush=True)
    finally:
        await client.aclose()
        await store.aclose()


# --- the simulation -------------------------------------------------------------------------


class _InstantSelector(selectors.DefaultSelector):
    """A selector that never blocks: a wait advances a virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if not ready and timeout:
            self.now += timeout
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task waits: seconds run in ms."""

    def __init__(self) -> None:
        self._selector_clock = _InstantSelector()
        super().__init__(self._selector_clock)

    def time(self) -> float:
        return self._selector_clock.now


async def simulate(args: argparse.Namespace, row: str, seed: int = 1) -> dict[str, Any]:
    """The same fleet in virtual time: the real limiter code, one in-process state for the
    fleet's shared one, a GCRA server answering 429 + Retry-After (whole seconds) after a
    round trip of 2-6 ms, each call tried again at once (the limiter holds it) or, with no
    limiter, after exactly Retry-After (as ``RetryPolicy`` waits); no CPU cost anywhere.
    For tuning on a busy machine."""
    from vendorkit.ratelimit import RateLimit, RateLimiter
    from vendorkit.stores.quota import LocalQuota

    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    interval, burst = 1 / args.rate, args.burst
    server = {"tat": 0.0, "ok": 0, "rejected": 0}
    shared = LocalQuota()
    limit = RateLimit(args.rate, burst=args.burst) if row == "configured" else None

    def answer(now: float) -> tuple[int, dict[str, str]]:
        tat = max(server["tat"], now)
        allowed = tat + interval - burst * interval
        if now < allowed:
            server["rejected"] += 1
            return 429, {"retry-after": str(max(1, math.ceil(allowed - now)))}
        server["tat"], server["ok"] = tat + interval, server["ok"] + 1
        return 200, {}

    async def process() -> None:
        await asyncio.sleep(rng.uniform(0, 0.005))
        limiter = None if row == "none" else RateLimiter(shared, limit, clock=loop.time)
        left = args.calls

        async def one() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                while True:
                    if limiter is not None and limiter.engaged:
                        await limiter.acquire()
                    latency = rng.uniform(0.002, 0.006)
                    await asyncio.sleep(latency / 2)
                    status, headers = answer(loop.time())
                    await asyncio.sleep(latency / 2)
                    if limiter is not None:
                        limiter.on_response(status, headers)
                    if status != 429:
                        break
                    if limiter is None or limiter.paused_for <= 0:  # as RetryPolicy does
                        await asyncio.sleep(float(headers["retry-after"]))

        await asyncio.gather(*(one() for _ in range(args.concurrency)))

    started = loop.time()
    await asyncio.gather(*(process() for _ in range(args.processes)))
    wall = loop.time() - started
    requests = server["ok"] + server["rejected"]
    ideal = args.processes * args.calls / args.rate
    return {"row": row, "label": LABELS[row] + ", simulated", "calls": server["ok"],
            "lost": 0, "requests": requests, "answered_429": server["rejected"],
            "share_429": server["rejected"] / requests, "wall_s": wall, "ideal_s": ideal,
            "goodput": ideal / wall, "logins": 0}


# --- the driver -----------------------------------------------------------------------------


def rate_limit_wired() -> bool:
    """Whether clients take ``rate_limit=`` (the session manager's parameter)."""
    from vendorkit.session import SessionManager

    return "rate_limit" in inspect.signature(SessionManager.__init__).parameters


@contextlib.contextmanager
def redis_server(url: str | None, core: int | None = None) -> Iterator[str]:
    """The given Redis, or a redis-server on a free 127.0.0.1 port for the run."""
    if url:
        yield url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not installed; pass --redis-url or install it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        pinned([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"], core), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def quota_sandbox(rate: float, burst: int,
                  core: int | None = None) -> Iterator[dict[str, Any]]:
    """The Cloud4Wi emulator with the quota, in its own process; its JSON description."""
    process = subprocess.Popen(
        pinned([sys.executable, "-m", "vendorkit.cli", "sandbox", "--vendors", "cloud4wi",
                "--json", "--quota", f"{rate:g}/{burst}"], core),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the quota sandbox did not start")
        yield json.loads(line)["cloud4wi"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _sandbox_call(base_url: str, path: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(base_url + path, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else {}


def run_row(row: str, args: argparse.Namespace, sandbox: dict[str, Any], redis_url: str,
            wired: bool, core: int | None = None) -> dict[str, Any]:
    """One fleet against the sandbox; the row's figures."""
    base_url = sandbox["base_url"]
    _sandbox_call(base_url, "/_sandbox/reset", "POST")
    time.sleep(max(1.0, args.burst / args.rate))  # the quota's burst fills up again
    config = {"row": row, "wired": wired, "rate": args.rate, "burst": args.burst,
              "calls": args.calls, "concurrency": args.concurrency, "redis_url": redis_url,
              "namespace": f"quota-bench-{uuid.uuid4().hex[:12]}"}
    env = {**os.environ, **sandbox["environment"], CONFIG_VARIABLE: json.dumps(config)}
    processes = [subprocess.Popen(pinned([sys.executable, "-m", "benchmarks.quota", "--worker"],
                                         core),
                                  env=env, cwd=ROOT, text=True, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(args.processes)]
    lines = [_lines(process) for process in processes]
    try:
        for process, messages in zip(processes, lines, strict=True):
            _expect(process, messages, "ready", timeout=60)
        go = time.time()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [_expect(process, messages, "done", timeout=args.timeout)
                   for process, messages in zip(processes, lines, strict=True)]
    finally:
        for process in processes:
            if process.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    counters = _sandbox_call(base_url, "/_sandbox/counters")
    api_requests = sum(n for route, n in counters["requests"].items()
                       if "/organizations/" in route)
    wall = max(result["ended"] for result in results) - go
    ideal = args.processes * args.calls / args.rate
    return {
        "row": row,
        "label": LABELS[row] if wired else "no limiter (today's client)",
        "calls": args.processes * args.calls,
        "lost": sum(result["lost"] for result in results),
        "errors": dict(sum((collections.Counter(r["errors"]) for r in results),
                           collections.Counter())),
        "requests": api_requests,
        "answered_429": counters["rate_limited"],
        "share_429": counters["rate_limited"] / api_requests if api_requests else 0.0,
        "wall_s": wall,
        "ideal_s": ideal,
        "goodput": ideal / wall,
        "logins": counters["logins"],
        "waited_s": [r["waited"] for r in results],
        "rates": [r["rate"] for r in results],
    }


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _expect(process: subprocess.Popen[str], lines: queue.Queue[str], event: str,
            timeout: float) -> dict[str, Any]:
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise SystemExit(f"worker {process.pid}: no {event!r} within {timeout:g} s") from None
    message = json.loads(line) if line.strip() else {}
    if message.get("event") != event:
        stderr = process.stderr.read() if process.stderr and process.poll() is not None else ""
        raise SystemExit(f"worker {process.pid}: expected {event!r}, got {line!r}\n{stderr}")
    return message


def render(rows: list[dict[str, Any]], args: argparse.Namespace, wired: bool) -> str:
    lines = [
        f"{args.processes} processes x {args.calls} calls (concurrency {args.concurrency}) on "
        f"one Cloud4Wi credential shared through Redis; quota {args.rate:g}/s, burst "
        f"{args.burst}, 429 + Retry-After beyond; ideal time {rows[0]['ideal_s']:.1f} s."
        + (f" Pinned: {args.pinning}." if getattr(args, "pinning", None) else ""),
        "",
        "| Row | lost calls | requests | answered 429 | goodput | wall s | logins |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['lost']:,} | {row['requests']:,} | "
            f"{row['share_429']:.1%} | {row['goodput']:.2f} | {row['wall_s']:.1f} | "
            f"{row['logins']} |")
    if not wired:
        missing = [row for row in args.rows if row != "none"]
        if missing:
            lines += ["", f"Not run: {', '.join(missing)} (clients do not take rate_limit= "
                          "yet; the none row is today's client, without the argument)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Calls at a vendor's quota, fleet-wide.")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500, help="calls per process")
    parser.add_argument("--concurrency", type=int, default=50, help="per process")
    parser.add_argument("--rate", type=float, default=400.0, help="the quota, requests/s")
    parser.add_argument("--burst", type=int, default=20, help="the quota's burst")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"from {', '.join(ROWS)}")
    parser.add_argument("--redis-url", help="an existing Redis (default: start one)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per row")
    parser.add_argument("--json", type=Path, help="also write the rows here as JSON")
    parser.add_argument("--simulate", action="store_true",
                        help="run the fleet in virtual time, in this process (no server, no "
                             "Redis, no CPU cost): the limiter's logic alone")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the sandbox to core 0 and the fleet and Redis to core 1")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 processes x 40 calls, concurrency 10, 100/s, burst 5")
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(work())
        return 0
    if args.quick:
        args.processes, args.calls, args.concurrency = 2, 40, 10
        args.rate, args.burst = 100.0, 5
    args.rows = [row for row in args.rows.split(",") if row]
    if unknown := set(args.rows) - set(ROWS):
        parser.error(f"unknown row(s): {', '.join(sorted(unknown))}")

    if args.simulate:
        results = []
        for row in args.rows:
            loop = VirtualTimeLoop()
            try:
                results.append(loop.run_until_complete(simulate(args, row)))
            finally:
                loop.close()
        print(render(results, args, wired=True))
        return 0
    wired = rate_limit_wired()
    runnable = [row for row in args.rows if wired or row == "none"]
    results = []
    # The vendor's server runs on its own machine: here, on its own core, so that a fleet of
    # P processes on a small machine does not starve it and turn its clock into the fleet's.
    server_core, fleet_core = cores(args.no_pin)
    args.pinning = (None if server_core is None else
                    f"sandbox on core {server_core}, Redis and the fleet on core {fleet_core}")
    with (redis_server(args.redis_url, fleet_core) as redis_url,
          quota_sandbox(args.rate, args.burst, server_core) as sb):
        for row in runnable:
            results.append(run_row(row, args, sb, redis_url, wired, fleet_core))
            print(f"  {row}: {results[-1]['lost']} lost, {results[-1]['share_429']:.1%} "
                  f"answered 429, goodput {results[-1]['goodput']:.2f}", file=sys.stderr)
    print(render(results, args, wired))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: v for k, v in vars(args).items()
                                                  if k not in ("json", "worker")},
                                         "wired": wired, "rows": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
