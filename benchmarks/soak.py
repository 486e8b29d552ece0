"""Soak: many calls, short tokens, injected 503s; nothing may fail, leak or storm.

    python benchmarks/soak.py --calls 100000 --concurrency 500 --token-lifetime 2 \\
        --error-rate 0.01 [--vendor wogeez] [--max-concurrency N] [--out benchmarks/results]

The vendor's emulator runs in a process of its own, so the file descriptors and RSS
sampled here (every ``--sample-interval`` seconds) are the client's alone. The emulator
turns ``--error-rate`` of every request it receives, logins and refreshes included, into
a 503. Writes ``soak.json`` (every sample) and ``soak.md`` to ``--out`` (``--name`` changes
the stem); exit status 1 when any call failed.

Expected renewals: a token is renewed when its advisory refresh window opens, which for a
short token is at half its lifetime, so logins + refreshes ~ duration / (lifetime / 2).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import datetime
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import vendorkit
from vendorkit import VendorClient
from vendorkit.sandbox import VENDORS, SandboxState, serve
from vendorkit.vendors import CLIENTS

DEFAULT_OUT = Path(__file__).resolve().parent / "results"

#: The typed call each vendor's workers make; ``i`` varies the arguments.
CALLS: dict[str, Callable[[Any, int], Awaitable[object]]] = {
    "cloud4wi": lambda client, i: client.get_organizations(f"cid-{i % 100}"),
    "wokelo": lambda client, i: client.search_companies("ai"),
    "cloudcx": lambda client, i: client.get_user_page(page_index=1 + i % 50, page_size=10),
    "cambyopro": lambda client, i: client.request("GET", "/api/v1/account"),
    "wogeez": lambda client, i: client.list_companies(page=i % 15, size=10),
}


# --- the emulator's process -----------------------------------------------------------------


def serve_in_process(
    vendor: str, token_lifetime: float, error_rate: float, pipe: Connection
) -> None:
    """Child process: run the emulator until told to stop; send back its counters."""
    asyncio.run(_serve(vendor, token_lifetime, error_rate, pipe))


async def _serve(vendor: str, token_lifetime: float, error_rate: float, pipe: Connection) -> None:
    async with serve(vendor, token_lifetime=token_lifetime) as sandbox:
        injector = asyncio.create_task(_inject(sandbox.state, error_rate))
        pipe.send({"client_kwargs": sandbox.client_kwargs})
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
        injector.cancel()
        pipe.send({"counters": sandbox.state.counters.snapshot()})


async def _inject(state: SandboxState, error_rate: float) -> None:
    """Keep the 503s queued at ``error_rate`` of the requests seen, spread through the run."""
    queued = 0
    while True:
        due = int(sum(state.counters.requests.values()) * error_rate)
        if due > queued:
            state.faults.fail_next(due - queued, 503, target="all")
            queued = due
        await asyncio.sleep(0.005)


# --- the client's side ----------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def soak(args: argparse.Namespace, client_kwargs: dict[str, str]) -> dict[str, Any]:
    """Run the calls; return what happened, with the samples."""
    call = CALLS[args.vendor]
    latencies = array.array("d", bytes(8 * args.calls))  # preallocated: no growth to measure
    failures: collections.Counter[str] = collections.Counter()
    done = 0
    issued = 0
    samples: list[dict[str, float]] = []
    options = {} if args.max_concurrency is None else {"max_concurrency": args.max_concurrency}
    client = cast(Callable[..., VendorClient], CLIENTS[args.vendor])(**client_kwargs, **options)
    started = time.perf_counter()

    def sample() -> None:
        samples.append({"t": round(time.perf_counter() - started, 2), "calls": done,
                        "fds": open_fds(), "rss_mb": round(rss_mb(), 2)})

    async def sampler() -> None:
        while True:
            await asyncio.sleep(args.sample_interval)
            sample()

    async def worker() -> None:
        nonlocal done, issued
        while issued < args.calls:
            index = issued
            issued += 1
            t0 = time.perf_counter()
            try:
                await call(client, index)
            except vendorkit.VendorkitError as exc:
                failures[type(exc).__name__] += 1
            latencies[index] = time.perf_counter() - t0
            done += 1

    sampling = asyncio.create_task(sampler())
    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        duration = time.perf_counter() - started
        sample()
    finally:
        sampling.cancel()
        stats = client.stats.as_dict()
        await client.aclose()
    ordered = sorted(latencies)
    return {
        "calls": done,
        "failures": sum(failures.values()),
        "failures_by_error": dict(failures),
        "duration_s": round(duration, 2),
        "calls_per_s": round(done / duration),
        "latency_ms": {
            "p50": round(ordered[len(ordered) // 2] * 1000, 1),
            "p99": round(ordered[int(len(ordered) * 0.99)] * 1000, 1),
            "max": round(ordered[-1] * 1000, 1),
            "mean": round(statistics.fmean(ordered) * 1000, 1),
        },
        "client": stats,
        "samples": samples,
    }


def summarize(result: dict[str, Any], server: dict[str, Any], args: argparse.Namespace) -> None:
    """Add the server's view, the renewal budget and the first/last resource figures."""
    counters = server["counters"]
    samples = result["samples"]
    first, last = samples[0], samples[-1]
    renewals = counters["logins"] + counters["refreshes"]
    result["server"] = {key: counters[key] for key in (
        "logins", "refreshes", "logouts", "rejected", "failed_logins", "faults")}
    result["server"]["requests"] = sum(counters["requests"].values())
    result["server"]["injected_503_share"] = round(
        counters["faults"] / max(1, result["server"]["requests"]), 4)
    result["renewals"] = {
        "logins_plus_refreshes": renewals,
        "duration_over_lifetime": round(result["duration_s"] / args.token_lifetime, 1),
        "expected_at_half_life": round(result["duration_s"] / (args.token_lifetime / 2), 1),
    }
    result["resources"] = {
        "fds": {"first": first["fds"], "last": last["fds"],
                "max": max(s["fds"] for s in samples), "growth": last["fds"] - first["fds"]},
        "rss_mb": {"first": first["rss_mb"], "last": last["rss_mb"],
                   "max": max(s["rss_mb"] for s in samples),
                   "growth": round(last["rss_mb"] - first["rss_mb"], 2)},
        "first_sample_at_s": first["t"],
        "last_sample_at_s": last["t"],
    }


def render_markdown(report: dict[str, Any]) -> str:
    r, setup = report["result"], report["setup"]
    res, renew, server = r["resources"], r["renewals"], r["server"]
    lines = [
        "# vendorkit soak",
        "",
        f"{setup['calls']:,} `{setup['vendor']}` calls at concurrency {setup['concurrency']}, "
        f"{setup['token_lifetime']:g} s tokens, {setup['error_rate']:.0%} injected 503s "
        f"(emulator in its own process). {report['when']}, Python {report['python']}, "
        f"{report['cpus']} CPUs.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| calls | {r['calls']:,} |",
        f"| failed calls | {r['failures']} {r['failures_by_error'] or ''} |",
        f"| duration | {r['duration_s']:.1f} s ({r['calls_per_s']:,} calls/s) |",
        f"| latency p50 / p99 / max | {r['latency_ms']['p50']} / {r['latency_ms']['p99']} / "
        f"{r['latency_ms']['max']} ms |",
        f"| retries (client) | {r['client']['retries']:,} |",
        f"| injected 503s (server) | {server['faults']:,} of {server['requests']:,} requests "
        f"({server['injected_503_share']:.2%}) |",
        f"| logins / refreshes (server) | {server['logins']} / {server['refreshes']} |",
        f"| logins + refreshes | {renew['logins_plus_refreshes']} (duration / lifetime = "
        f"{renew['duration_over_lifetime']}; renewing at half-life: "
        f"{renew['expected_at_half_life']}) |",
        f"| tokens rejected, re-auths (client) | {server['rejected']}, "
        f"{r['client']['reauths']} |",
        f"| open fds first / last / max | {res['fds']['first']} / {res['fds']['last']} / "
        f"{res['fds']['max']} |",
        f"| RSS first / last / max | {res['rss_mb']['first']} / {res['rss_mb']['last']} / "
        f"{res['rss_mb']['max']} MB |",
        "",
        f"Samples every {setup['sample_interval']:g} s; first at {res['first_sample_at_s']} s, "
        f"last at {res['last_sample_at_s']} s (the end of the run).",
        "",
        "| t (s) | calls done | fds | RSS (MB) |",
        "|---:|---:|---:|---:|",
        *(f"| {s['t']} | {s['calls']:,} | {s['fds']} | {s['rss_mb']} |" for s in r["samples"]),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python benchmarks/soak.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--token-lifetime", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--error-rate", type=float, default=0.01,
                        help="share of requests the emulator answers 503 (default 0.01)")
    parser.add_argument("--vendor", choices=VENDORS, default="wogeez",
                        help="default wogeez: OpenID discovery and rotating refresh tokens")
    parser.add_argument("--max-concurrency", type=int, default=None,
                        help="the client's max_concurrency (default: the library's)")
    parser.add_argument("--sample-interval", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where NAME.json and NAME.md go")
    parser.add_argument("--name", default="soak", help="file name stem (default: soak)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    emulator = context.Process(
        target=serve_in_process,
        args=(args.vendor, args.token_lifetime, args.error_rate, theirs),
        name=f"soak-{args.vendor}-emulator",
    )
    emulator.start()
    try:
        client_kwargs = ours.recv()["client_kwargs"]
        result = asyncio.run(soak(args, client_kwargs))
        ours.send("stop")
        server = ours.recv()
    finally:
        emulator.join(timeout=30)
        if emulator.is_alive():
            emulator.kill()
    summarize(result, server, args)
    report = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "setup": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "result": result,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    (args.out / f"{args.name}.md").write_text(markdown)
    print(markdown.split("\n\nSamples")[0])
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
