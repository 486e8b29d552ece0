"""The one benchmark command: every contender side by side against one loopback server.

    python -m benchmarks.run [--n 20000] [--concurrency 1,100,1000] [--runs 3]
                             [--out benchmarks/results]

Starts the server (nginx if installed, else the sandbox; pinned to core 0), runs each
contender at each concurrency in a fresh process pinned to core 1, ``--runs`` rounds
interleaved so drift hits every contender alike, then the token storms. Writes
``results.json`` (every sample) and ``results.md`` (the tables and the targets) to
``--out`` and prints the table. Exit status 1 if any measurement failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.contenders import CONTENDERS
from benchmarks.report import evaluate_targets, render_markdown, summarize
from benchmarks.server import (
    ROOT,
    Server,
    child_env,
    credentials,
    pinned,
    python,
    start as start_server,
)
from benchmarks.storms import EXPIRY_LIFETIME, run_storms

DEFAULT_OUT = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="vendorkit vs raw aiohttp, httpx and authlib on one loopback server.",
    )
    parser.add_argument("--n", type=int, default=20_000, help="timed calls per measurement")
    parser.add_argument("--concurrency", default="1,100,1000",
                        help="comma-separated calls in flight (default 1,100,1000)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where results.json and results.md go")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of: {', '.join(CONTENDERS)}")
    parser.add_argument("--server", choices=["auto", "nginx", "sandbox"], default="auto",
                        help="auto: nginx if installed, else the sandbox under uvloop")
    parser.add_argument("--max-seconds", type=float, default=15.0,
                        help="stop a measurement early after this long (the slow "
                        "contenders would otherwise take minutes); 0: never")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--storm-calls", type=int, default=10_000,
                        help="calls started at once in the cold storm")
    parser.add_argument("--storm-concurrency", type=int, default=1000,
                        help="calls in flight during the expiry storm")
    parser.add_argument("--expiry-lifetime", type=float, default=EXPIRY_LIFETIME,
                        help="seconds the expiry storm's tokens live (each run lasts about "
                        "this long)")
    parser.add_argument("--no-storms", action="store_true", help="skip the token storms")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    args.contenders = [c.strip() for c in str(args.contenders).split(",") if c.strip()]
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(unknown)}")
    if args.n < 1 or args.runs < 1 or not args.concurrency or min(args.concurrency) < 1:
        parser.error("--n, --runs and every --concurrency must be at least 1")
    return args


def cores(disabled: bool) -> tuple[int | None, int | None]:
    """(server core, client core): 0 and 1 when taskset exists and both are ours."""
    if disabled or shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        return None, None
    available = os.sched_getaffinity(0)
    if {0, 1} <= available:
        return 0, 1
    return None, None


def measure_once(
    server: Server, contender: str, *, n: int, concurrency: int, max_seconds: float,
    core: int | None, env: dict[str, str],
) -> dict[str, Any]:
    command = pinned([
        *python(), "-m", "benchmarks.contenders", contender, "--base-url",
        server.base_url, "--n", str(n), "--concurrency", str(concurrency),
        "--max-seconds", str(max_seconds),
    ], core)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=max(600.0, 20 * max_seconds), check=False)
    if done.returncode != 0:
        return {"contender": contender, "concurrency": concurrency,
                "error": done.stderr.strip()[-1500:] or f"exit status {done.returncode}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def environment(
    args: argparse.Namespace, server: Server, client_core: int | None
) -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()},
        "python": platform.python_version(),
        "server": {"kind": server.kind, "description": server.description,
                   "core": server.core},
        "client_core": client_core,
        "n": args.n,
        "concurrency": args.concurrency,
        "runs": args.runs,
        "max_seconds": args.max_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server_core, client_core = cores(args.no_pin)
    key, secret = credentials()
    env = child_env() | {"BENCH_CLIENT_KEY": key, "BENCH_CLIENT_SECRET": secret}
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    load_before = os.getloadavg()[0]

    def report(line: str) -> None:
        print(line, flush=True)

    with start_server(args.server, core=server_core) as server:
        pinning = (f"server on core {server_core}, clients on core {client_core} (taskset)"
                   if client_core is not None else "not pinned")
        report(f"server: {server.description} at {server.base_url}; {pinning}")
        for round_index in range(args.runs):
            # Rotate the order each round so no contender always runs first or last.
            order = args.contenders[round_index % len(args.contenders):] + \
                args.contenders[:round_index % len(args.contenders)]
            for concurrency in args.concurrency:
                for name in order:
                    figures = measure_once(
                        server, name, n=args.n, concurrency=concurrency,
                        max_seconds=args.max_seconds, core=client_core, env=env)
                    figures["round"] = round_index + 1
                    samples.append(figures)
                    if "error" in figures:
                        report(f"round {round_index + 1} c={concurrency:<5} {name:17} "
                               f"FAILED: {figures['error'].splitlines()[-1]}")
                    else:
                        report(f"round {round_index + 1} c={concurrency:<5} {name:17} "
                               f"{figures['calls_per_second']:8.0f} calls/s "
                               f"{figures['cpu_us_per_call']:7.1f} us CPU/call "
                               f"{figures['peak_rss_mb']:6.1f} MB")
        storms: dict[str, Any] | None = None
        if not args.no_storms:
            report("token storms:")
            try:
                storms = run_storms(
                    server, calls=args.storm_calls, runs=args.runs,
                    concurrency=args.storm_concurrency, lifetime=args.expiry_lifetime,
                    server_core=server_core,
                    client_core=client_core, env=env, report=report)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                report(f"token storms FAILED: {exc}")
                storms = {"error": str(exc)}
        meta = environment(args, server, client_core)
    meta["seconds"] = round(time.monotonic() - started, 1)
    # Other processes on the machine make every figure noisier: say how busy it was.
    meta["load_average"] = {"start": load_before, "end": os.getloadavg()[0]}
    summary = summarize(samples)
    targets = evaluate_targets(summary, storms)
    results = {"meta": meta, "summary": summary, "targets": targets, "storms": storms,
               "samples": samples}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render_markdown(results)
    (args.out / "results.md").write_text(markdown)
    print()
    print(markdown)
    failed = [s for s in samples if "error" in s]
    return 1 if failed or (storms is not None and "error" in storms) else 0


if __name__ == "__main__":
    sys.exit(main())
