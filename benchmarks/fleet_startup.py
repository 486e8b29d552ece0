"""Fleet start-up: N worker processes on one credential, with and without a shared store.

For each store (``memory``: every process on its own; ``redis``: RedisTokenStore;
``file``: FileTokenStore), N processes start together against a fresh Cloud4Wi sandbox,
each makes ``--calls`` concurrent calls, and the table shows the logins the sandbox saw,
the time from the start signal to each process's first successful call (median and
slowest process) and to the fleet's last call::

    python benchmarks/fleet_startup.py --processes 8 [--calls 100] [--latency 0.05]
        [--redis-url redis://127.0.0.1:6379/0] [--json out.json]

Without ``--redis-url`` it starts its own redis-server on a free 127.0.0.1 port and stops
it afterwards; the sandbox runs on a thread of this process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import redis

from vendorkit.sandbox import SandboxThread

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "stores" / "fleet_worker.py"
STORES = ("memory", "redis", "file")


def load_worker() -> ModuleType:
    """``tests/stores/fleet_worker.py``, the worker the fleet tests use, and its ``Fleet``."""
    spec = importlib.util.spec_from_file_location("fleet_worker", WORKER)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {WORKER}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """The given Redis, or a redis-server started on a free port for the run."""
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
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis.from_url(url) as client:
                    client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.kill()
        process.wait()


def run_fleet(store: str, args: argparse.Namespace, redis_url: str, workdir: Path,
              fleet_class: Any) -> dict[str, Any]:
    """One fleet start-up against a fresh sandbox; its figures."""
    with SandboxThread(["cloud4wi"]) as thread:
        sandbox = thread.sandboxes["cloud4wi"]
        thread.call(lambda: setattr(sandbox.state.faults, "latency", args.latency))
        options = ["--vendor", "cloud4wi", "--store", store, "--calls", str(args.calls)]
        if store == "redis":
            options += ["--redis-url", redis_url, "--namespace", f"bench-{uuid.uuid4().hex}"]
        elif store == "file":
            options += ["--file", str(workdir / f"tokens-{uuid.uuid4().hex}.json")]
        with fleet_class(args.processes, sandbox.client_kwargs, *options,
                         stderr_dir=workdir) as fleet:
            fleet.ready()
            started = time.time()
            results = fleet.run_phase(timeout=300)
        counters = thread.call(sandbox.state.counters.snapshot)
    first = [r["first_ok_at"] - started for r in results if r["first_ok_at"] is not None]
    return {
        "store": store,
        "processes": args.processes,
        "calls_per_process": args.calls,
        "logins": counters["logins"],
        "failed_calls": sum(r["failed"] for r in results),
        "first_ok_median_s": statistics.median(first) if first else None,
        "first_ok_max_s": max(first) if first else None,
        "all_done_s": max(r["started_at"] + r["elapsed"] for r in results) - started,
    }


def render(rows: list[dict[str, Any]]) -> str:
    header = (f"{'store':<8} {'processes':>9} {'logins':>6} {'failed':>6} "
              f"{'first ok p50':>12} {'first ok max':>12} {'all done':>9}")
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['store']:<8} {row['processes']:>9} {row['logins']:>6} "
            f"{row['failed_calls']:>6} {row['first_ok_median_s'] * 1000:>10.0f}ms "
            f"{row['first_ok_max_s'] * 1000:>10.0f}ms {row['all_done_s'] * 1000:>7.0f}ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fleet start-up: logins and time to first call.")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--calls", type=int, default=100, help="concurrent calls per process")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the sandbox adds to every request, login included")
    parser.add_argument("--redis-url", help="an existing Redis (default: start one)")
    parser.add_argument("--stores", default=",".join(STORES),
                        help=f"comma-separated, from {', '.join(STORES)}")
    parser.add_argument("--json", type=Path, help="also write the rows here as JSON")
    args = parser.parse_args(argv)
    stores = [s for s in args.stores.split(",") if s]
    if unknown := set(stores) - set(STORES):
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}")

    fleet_class = load_worker().Fleet
    rows = []
    with redis_server(args.redis_url) as url, tempfile.TemporaryDirectory() as tmp:
        for store in stores:
            rows.append(run_fleet(store, args, url, Path(tmp), fleet_class))
    print(f"Fleet start-up: {args.processes} processes x {args.calls} concurrent calls, "
          f"one Cloud4Wi credential, sandbox latency {args.latency * 1000:.0f} ms")
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(row["failed_calls"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
