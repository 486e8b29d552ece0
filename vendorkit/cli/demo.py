"""``vendorkit demo``: one high-concurrency collection against all five emulated vendors.

Thousands of typed calls per vendor run at once in one event loop, with tokens short
enough to expire mid-run and faults injected while calls are in flight (429 with
Retry-After, 503 bursts, a mass token revocation), so retries, refreshes and re-logins
happen for real. The verdict reads logins, refreshes and logouts from the emulators'
own counters: what the server saw, not what the client believes it did.

``--quota RATE[/BURST]`` puts a per-credential quota on each emulator (its 429s are
counted in the table); ``--variants`` serves each vendor with one of its emulator's
variants, chosen at random from a printed ``--seed`` so that a run can be repeated.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import attrs

from .._constants import DEFAULT_MAX_CONNECTIONS
from ..client import VendorClient
from ..errors import VendorkitError
from ..events import Event
from ..sandbox import RunningSandbox, SandboxState, serve_all, variants_of
from ..vendors import CLIENTS
from .demo_report import Report, VendorResult, print_report
from .output import console, redact as _redact
from .progress_live import LiveProgress

__all__ = ["choose_variants", "run_demo"]

#: Reasons for a login that mean the server refused a token we held (see tokens.py).
REJECTION_REASONS = frozenset({"rejected", "refresh refused"})

#: Calls in flight per client beyond this wait in a fair FIFO queue. It matches the
#: connection pool: past it, aiohttp's pool hands a freed connection to whichever task
#: asks first, and a few calls starve for seconds (p99 20x the median).
QUEUE_AT = DEFAULT_MAX_CONNECTIONS

WOKELO_QUERIES = ("a", "ai", "labs", "tech", "co", "bio", "data", "cloud")

#: The typed call each vendor's workers make; ``i`` varies the arguments.
CALLS: dict[str, Callable[[Any, int], Awaitable[object]]] = {
    "cloud4wi": lambda client, i: client.get_organizations(f"cid-{i % 100}"),
    "wokelo": lambda client, i: client.search_companies(WOKELO_QUERIES[i % len(WOKELO_QUERIES)]),
    "cloudcx": lambda client, i: client.get_user_page(page_index=1 + i % 50, page_size=25),
    # CambyoPro documents no endpoint besides login: the sandbox's own protected route.
    "cambyopro": lambda client, i: client.request("GET", "/api/v1/account"),
    "wogeez": lambda client, i: client.list_companies(page=i % 15, size=20),
}


@attrs.frozen
class FaultStep:
    """A misbehaviour queued on a vendor's emulator once ``at`` of its calls are done."""

    at: float
    label: str
    apply: Callable[[SandboxState], object]


def fault_plan(calls: int) -> list[FaultStep]:
    """429s with Retry-After, two 503 bursts and a mass revocation, spread over the run."""
    limited, burst = max(1, calls // 200), max(1, calls // 100)

    def revoke(state: SandboxState) -> None:
        state.revoke_all_tokens()
        state.faults.fail_next(1, 503, target="auth")  # and the re-login must retry once

    return [
        FaultStep(0.2, f"{limited} x 429 Retry-After: 1",
                  lambda s: s.faults.fail_next(limited, 429, retry_after="1")),
        FaultStep(0.4, f"{burst} x 503", lambda s: s.faults.fail_next(burst, 503)),
        FaultStep(0.6, "every token revoked, calls in flight; 1 x 503 on the next login",
                  revoke),
        FaultStep(0.8, f"{burst} x 503", lambda s: s.faults.fail_next(burst, 503)),
    ]


@attrs.define
class VendorRun:
    """One vendor's part of the demo, counted as it goes."""

    vendor: str
    client: VendorClient
    sandbox: RunningSandbox
    calls: int
    plan: list[FaultStep]
    done: int = 0
    ok: int = 0
    failed: int = 0
    relogins_after_rejection: int = 0
    started: float = 0.0
    finished: float = 0.0
    latencies: list[float] = attrs.Factory(list)
    errors: collections.Counter[str] = attrs.Factory(collections.Counter)
    fired: int = 0
    logout_refused: bool = False

    def on_login(self, event: Event) -> None:
        if event.detail.get("reason") in REJECTION_REASONS:
            self.relogins_after_rejection += 1

    def due_faults(self) -> list[FaultStep]:
        """The steps whose moment has come, each returned once."""
        due = []
        while self.fired < len(self.plan) and self.done >= self.plan[self.fired].at * self.calls:
            due.append(self.plan[self.fired])
            self.fired += 1
        return due


def choose_variants(vendors: list[str], seed: int) -> dict[str, str]:
    """One emulator variant per vendor, the same for the same seed."""
    rng = random.Random(seed)
    return {vendor: rng.choice(list(variants_of(vendor))) for vendor in vendors}


async def run_demo(args: argparse.Namespace) -> int:
    """Run the collection on fresh emulators, print the summary, return the exit status."""
    out = console()
    started = time.perf_counter()
    faults = "no faults" if args.no_faults else "injected faults"
    quota = "" if args.quota is None else f", a quota of {args.quota} per credential"
    out.print(f"vendorkit demo: {len(args.vendors)} vendors x {args.calls:,} calls at "
              f"concurrency {args.concurrency} each (max_concurrency={QUEUE_AT} per client), "
              f"tokens living {args.token_lifetime:g} s, {faults}{quota}", highlight=False)
    variants: dict[str, str] = {}
    if args.variants:
        seed = random.randrange(2**32) if args.seed is None else args.seed
        variants = choose_variants(args.vendors, seed)
        chosen = ", ".join(f"{vendor}={name}" for vendor, name in variants.items())
        out.print(f"variants (seed {seed}; repeat with --variants --seed {seed}): {chosen}",
                  highlight=False, markup=False)
    async with serve_all(args.vendors, token_lifetime=args.token_lifetime, variants=variants,
                         quota=args.quota) as sandboxes:
        runs = [_prepare(vendor, sandboxes[vendor], args) for vendor in args.vendors]
        if not args.no_faults:
            _print_plan(out, runs[0].plan)
        with LiveProgress(out, [(run.vendor, run.calls) for run in runs], started) as live:
            ticker = asyncio.create_task(_tick(live, runs))
            try:
                await asyncio.gather(*(_drive(run, args.concurrency, live) for run in runs))
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
                live.refresh(_snapshots(runs))
        elapsed = time.perf_counter() - started
        report = Report(
            results=[_result(run, args.token_lifetime) for run in runs],
            elapsed=elapsed, token_lifetime=args.token_lifetime, faults=not args.no_faults,
        )
    print_report(out, report)
    return 0 if report.passed else 1


def _prepare(vendor: str, sandbox: RunningSandbox, args: argparse.Namespace) -> VendorRun:
    factory = cast(Callable[..., VendorClient], CLIENTS[vendor])
    client = factory(**sandbox.client_kwargs, max_concurrency=QUEUE_AT)
    run = VendorRun(vendor, client, sandbox, args.calls,
                    [] if args.no_faults else fault_plan(args.calls))
    client.session.add_event_hook("login", run.on_login)
    return run


def _print_plan(out: Any, plan: list[FaultStep]) -> None:
    steps = "; ".join(f"at {step.at:.0%}: {step.label}" for step in plan)
    out.print(f"faults per vendor, by share of its calls done: {steps}", highlight=False)


async def _drive(run: VendorRun, concurrency: int, live: LiveProgress) -> None:
    """``run.calls`` calls through ``concurrency`` workers sharing one client."""
    call = CALLS[run.vendor]
    indices = iter(range(run.calls))

    async def worker() -> None:
        for index in indices:
            began = time.perf_counter()
            try:
                await call(run.client, index)
            except VendorkitError as exc:
                run.failed += 1
                run.errors[_redact(f"{type(exc).__name__}: {exc}")] += 1
            else:
                run.ok += 1
            run.latencies.append(time.perf_counter() - began)
            run.done += 1
            for step in run.due_faults():
                step.apply(run.sandbox.state)
                live.event(run.vendor, step.label)

    run.started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, run.calls)))))
        run.finished = time.perf_counter()
    finally:
        # Logging out is part of the run: aclose() revokes wherever the vendor can. A token
        # that expired meanwhile is refused (counted as rejected): nothing left to revoke.
        rejected = run.sandbox.state.counters.rejected
        await run.client.aclose()
        run.logout_refused = run.sandbox.state.counters.rejected > rejected


def _snapshots(runs: list[VendorRun]) -> dict[str, dict[str, int]]:
    return {run.vendor: {
        "done": run.done, "failed": run.failed, "retries": run.client.stats.retries,
        "logins": run.sandbox.state.counters.logins,
        "refreshes": run.sandbox.state.counters.refreshes,
    } for run in runs}


async def _tick(live: LiveProgress, runs: list[VendorRun]) -> None:
    while True:
        live.refresh(_snapshots(runs))
        await asyncio.sleep(live.interval)


def _result(run: VendorRun, token_lifetime: float) -> VendorResult:
    counters = run.sandbox.state.counters
    revocations = sum(1 for step in run.plan[: run.fired] if "revoked" in step.label)
    return VendorResult(
        vendor=run.vendor, calls=run.calls, ok=run.ok, failed=run.failed,
        retries=run.client.stats.retries, rate_limited=counters.rate_limited,
        logins=counters.logins,
        refreshes=counters.refreshes, relogins_after_rejection=run.relogins_after_rejection,
        logouts=counters.logouts if run.client.session.auth.supports_logout else None,
        logout_refused=run.logout_refused,
        latencies=sorted(run.latencies), seconds=run.finished - run.started,
        revocations=revocations, token_lifetime=token_lifetime,
        errors=run.errors.most_common(3),
    )
