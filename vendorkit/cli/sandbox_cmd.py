"""``vendorkit sandbox``: serve the vendor emulators until Ctrl-C, for manual use and tests.

It prints each vendor's base URL, its test credentials (they open nothing but the
emulator) and the ``VENDORKIT_*`` variables that point ``vendorkit call`` and every
client's ``from_env()`` at it. ``--variant VENDOR=NAME`` (repeatable) selects how an
emulator answers where the docs are silent; ``--quota RATE[/BURST]`` limits each credential.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Iterable

from ..sandbox import RunningSandbox, serve_all
from ..vendors import CLIENTS
from .output import console, error

__all__ = ["environment", "run_sandbox", "selection"]

EXIT_USAGE = 2


def selection(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``--variant`` pairs grouped by vendor, in the order given."""
    chosen: dict[str, list[str]] = {}
    for vendor, name in pairs:
        chosen.setdefault(vendor, []).append(name)
    return chosen


def environment(running: RunningSandbox) -> dict[str, str]:
    """The ``VENDORKIT_<VENDOR>_<FIELD>`` variables that configure a client for ``running``."""
    env_name = CLIENTS[running.vendor].env_name
    return {f"VENDORKIT_{env_name}_{name.upper()}": value
            for name, value in running.client_kwargs.items()}


async def run_sandbox(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (SIGINT) or SIGTERM, then shut the emulators down cleanly."""
    variants = selection(args.variant)
    stray = [vendor for vendor in variants if vendor not in args.vendors]
    if stray:
        error(f"--variant for {', '.join(stray)}, which --vendors leaves out")
        return EXIT_USAGE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with serve_all(args.vendors, host=args.host, port=args.port,
                             token_lifetime=args.token_lifetime, variants=variants,
                             quota=args.quota) as running:
            if args.json:
                print(json.dumps({vendor: {
                    "base_url": sandbox.base_url,
                    "credentials": sandbox.credentials,
                    "environment": environment(sandbox),
                    "variants": list(sandbox.state.variants),
                    "quota": None if args.quota is None else str(args.quota),
                } for vendor, sandbox in running.items()}), flush=True)
            else:
                _describe(running)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
    print("vendorkit sandbox: stopped", file=sys.stderr, flush=True)
    return 0


def _describe(running: dict[str, RunningSandbox]) -> None:
    out = console()
    out.print(f"vendorkit sandbox: {len(running)} vendor emulators (test credentials only; "
              "Ctrl-C to stop)")
    for vendor, sandbox in running.items():
        out.print()
        out.print(f"[bold]{vendor}[/bold]  {sandbox.base_url}", highlight=False)
        if sandbox.state.variants:
            out.print(f"  {'variants':<14} {', '.join(sandbox.state.variants)}",
                      highlight=False, markup=False)
        if sandbox.state.quota is not None:
            out.print(f"  {'quota':<14} {sandbox.state.quota} per credential",
                      highlight=False, markup=False)
        for name, value in sandbox.credentials.items():
            out.print(f"  {name:<14} {value}", highlight=False, markup=False)
    out.print()
    out.print("Environment for `vendorkit call` and the clients' from_env():", highlight=False)
    for sandbox in running.values():
        for variable, value in environment(sandbox).items():
            out.print(f"export {variable}={value}", highlight=False, markup=False)
    out.print()
    out.print("Ready. Ctrl-C to stop.", highlight=False)
    out.file.flush()
