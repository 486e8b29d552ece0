"""``vendorkit sandbox``: serve the vendor emulators until Ctrl-C, for manual use and tests.

It prints each vendor's base URL, its test credentials (they open nothing but the
emulator) and the ``VENDORKIT_*`` variables that point ``vendorkit call`` and every
client's ``from_env()`` at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from ..sandbox import RunningSandbox, serve_all
from ..vendors import CLIENTS
from .output import console

__all__ = ["environment", "run_sandbox"]


def environment(running: RunningSandbox) -> dict[str, str]:
    """The ``VENDORKIT_<VENDOR>_<FIELD>`` variables that configure a client for ``running``."""
    env_name = CLIENTS[running.vendor].env_name
    return {f"VENDORKIT_{env_name}_{name.upper()}": value
            for name, value in running.client_kwargs.items()}


async def run_sandbox(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (SIGINT) or SIGTERM, then shut the emulators down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with serve_all(args.vendors, host=args.host, port=args.port,
                             token_lifetime=args.token_lifetime) as running:
            if args.json:
                print(json.dumps({vendor: {
                    "base_url": sandbox.base_url,
                    "credentials": sandbox.credentials,
                    "environment": environment(sandbox),
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
