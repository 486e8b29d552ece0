"""One process of a fleet: a vendor client on a shared token store, driven phase by phase.

Run as a script by the fleet tests and ``benchmarks/fleet_startup.py``::

    VENDORKIT_FLEET_CLIENT='{"base_url": ..., "client_key": ...}' \\
        python fleet_worker.py --vendor cloud4wi --store redis --redis-url redis://... \\
        --calls 500 --phases 2

The client's arguments (credentials included) come in the environment, never on the
command line. The worker prints ``{"event": "ready"}``, then for each phase waits for a
``go`` line on stdin, makes ``--calls`` concurrent calls and prints one JSON summary line
(ok, failed, elapsed, first_ok_at...). Warnings go to stderr.

:class:`Fleet` is the other side: it starts the workers and drives them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

CLIENT_VARIABLE = "VENDORKIT_FLEET_CLIENT"
DESCRIPTION = "One process of a fleet: a vendor client on a shared token store."
WORKER = Path(__file__).resolve()


# --- the worker -----------------------------------------------------------------------------


def _call_for(vendor: str, client: Any) -> Callable[[], Awaitable[object]]:
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "cloud4wi": lambda: client.get_organizations("c1"),
        "wokelo": lambda: client.search_companies("acme"),
        "cloudcx": lambda: client.get_user_page(page_index=1, page_size=10),
    }
    return calls[vendor]


def _store(args: argparse.Namespace) -> Any:
    if args.store == "redis":
        from vendorkit.stores import RedisTokenStore

        return RedisTokenStore(args.redis_url, namespace=args.namespace, lock_ttl=args.lock_ttl)
    if args.store == "file":
        from vendorkit.stores import FileTokenStore

        return FileTokenStore(args.file)
    return None  # the client's own in-memory store


async def _phase(number: int, calls: int, call: Callable[[], Awaitable[object]],
                 client: Any) -> dict[str, object]:
    started = time.time()
    first_ok: list[float] = []
    errors: collections.Counter[str] = collections.Counter()

    async def one() -> bool:
        try:
            await call()
        except Exception as exc:
            errors[type(exc).__name__] += 1
            return False
        if not first_ok:
            first_ok.append(time.time())
        return True

    results = await asyncio.gather(*(one() for _ in range(calls)))
    token = client.token
    return {
        "event": "phase", "phase": number, "pid": os.getpid(),
        "ok": sum(results), "failed": len(results) - sum(results), "errors": dict(errors),
        "started_at": started, "first_ok_at": first_ok[0] if first_ok else None,
        "elapsed": time.time() - started,
        "logins": client.stats.logins, "refreshes": client.stats.refreshes,
        "expires_at": token.expires_at if token is not None else None,
    }


def _emit(message: Mapping[str, object]) -> None:
    print(json.dumps(message), flush=True)


async def work(args: argparse.Namespace) -> None:
    from vendorkit import RefreshWindows
    from vendorkit.vendors import CLIENTS

    options: dict[str, Any] = json.loads(os.environ[CLIENT_VARIABLE])
    if args.advisory is not None:
        options["refresh_windows"] = RefreshWindows(
            advisory_seconds=args.advisory, mandatory_seconds=args.mandatory or args.advisory / 2)
    store = _store(args)
    client = CLIENTS[args.vendor](**options, token_store=store)
    call = _call_for(args.vendor, client)
    _emit({"event": "ready", "pid": os.getpid()})
    try:
        for number in range(1, args.phases + 1):
            if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
                return
            calls = args.first_calls if number == 1 and args.first_calls else args.calls
            _emit(await _phase(number, calls, call, client))
    finally:
        await client.aclose()
        if store is not None:
            await store.aclose()
    _emit({"event": "done", "pid": os.getpid()})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--vendor", default="cloud4wi")
    parser.add_argument("--store", choices=("memory", "redis", "file"), default="redis")
    parser.add_argument("--redis-url")
    parser.add_argument("--namespace", default="vendorkit")
    parser.add_argument("--file")
    parser.add_argument("--lock-ttl", type=float, default=15.0)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--first-calls", type=int, help="calls in phase 1 (default: --calls)")
    parser.add_argument("--phases", type=int, default=1)
    parser.add_argument("--advisory", type=float, help="advisory refresh window, seconds")
    parser.add_argument("--mandatory", type=float, help="mandatory refresh window, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(work(args))


# --- the fleet ------------------------------------------------------------------------------


class Fleet:
    """Worker processes started together and driven in lockstep: ``go()`` then ``results()``."""

    def __init__(self, count: int, client_kwargs: Mapping[str, str], *args: str,
                 stderr_dir: Path) -> None:
        env = {**os.environ, CLIENT_VARIABLE: json.dumps(dict(client_kwargs))}
        self.stderr_paths = [stderr_dir / f"worker-{n}.stderr" for n in range(count)]
        self.processes: list[subprocess.Popen[str]] = []
        self._lines: list[queue.Queue[str]] = []
        self._pumps: list[threading.Thread] = []
        for path in self.stderr_paths:
            with path.open("w") as stderr:
                process = subprocess.Popen(
                    [sys.executable, str(WORKER), *args], env=env, text=True,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                )
            lines: queue.Queue[str] = queue.Queue()
            pump = threading.Thread(target=_pump, args=(process, lines), daemon=True)
            pump.start()
            self._pumps.append(pump)
            self.processes.append(process)
            self._lines.append(lines)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The next line of every live worker, as JSON."""
        deadline = time.monotonic() + timeout
        messages = []
        for process, lines in zip(self.processes, self._lines, strict=True):
            if process.returncode is not None:
                continue
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"worker {process.pid} said nothing for {timeout} s; "
                                     f"stderr: {self.stderr()}") from None
            if not line:
                raise AssertionError(f"worker {process.pid} exited; stderr: {self.stderr()}")
            messages.append(json.loads(line))
        return messages

    def ready(self) -> None:
        assert {m["event"] for m in self.read()} == {"ready"}

    def go(self) -> None:
        for process in self.processes:
            if process.returncode is None and process.stdin is not None:
                process.stdin.write("go\n")
                process.stdin.flush()

    def run_phase(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        self.go()
        return self.read(timeout)

    def kill(self, pid: int) -> None:
        """SIGKILL one worker; it is left out of later reads."""
        for process in self.processes:
            if process.pid == pid:
                process.kill()
                process.wait()

    def stderr(self) -> list[str]:
        return [path.read_text() for path in self.stderr_paths]

    def close(self, timeout: float = 30.0) -> None:
        """Wait for every worker to exit (closing stdin ends those still waiting)."""
        for process in self.processes:
            if process.stdin is not None and not process.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.close()
        for process, pump in zip(self.processes, self._pumps, strict=True):
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            pump.join(timeout=timeout)  # it reads to the end, then closes stdout


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            lines.put(line)
    lines.put("")  # end of output


if __name__ == "__main__":
    main()
