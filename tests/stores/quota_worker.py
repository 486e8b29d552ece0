"""One process of a rate-limited fleet: a limiter on a shared store, taking permits on cue.

Run as a script by ``test_fleet_quota.py``::

    python quota_worker.py --store redis --redis-url redis://... --namespace NS --key KEY \\
        [--rate 100 --burst 10] --permits 300 --concurrency 20 [--call]

Without ``--rate`` the limiter is adaptive. With ``--call`` every permit is spent on a real
GET to the Cloud4Wi emulator whose client arguments are in ``VENDORKIT_QUOTA_CLIENT`` (the
token comes through the shared store, one login for the fleet), the answer goes to
``on_response``, and a 429 is tried again until it succeeds. The worker prints
``{"event": "ready"}``, waits for a ``go`` line on stdin, then prints one JSON line: when each
permit was granted (``time.time()``), each call's status, and the limiter's stats.

:class:`QuotaFleet` is the other side: it starts the workers and collects their lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLIENT_VARIABLE = "VENDORKIT_QUOTA_CLIENT"
WORKER = Path(__file__).resolve()
ROUTE = "/v2/customers/organizations/c1"
CALL_DEADLINE = 120.0


def _emit(message: dict[str, object]) -> None:
    print(json.dumps(message), flush=True)


def _store(args: argparse.Namespace) -> Any:
    if args.store == "redis":
        from vendorkit.stores import RedisTokenStore

        return RedisTokenStore(args.redis_url, namespace=args.namespace)
    from vendorkit.stores import FileTokenStore

    return FileTokenStore(args.file)


async def work(args: argparse.Namespace) -> None:
    import aiohttp

    from vendorkit.ratelimit import RateLimit, build_limiter
    from vendorkit.vendors.cloud4wi import Cloud4WiClient

    store = _store(args)
    config = None if args.rate is None else RateLimit(args.rate, burst=args.burst)
    limiter = build_limiter(config, store, args.key)
    assert limiter is not None
    client = http = None
    url = ""
    if args.call:
        client = Cloud4WiClient(**json.loads(os.environ[CLIENT_VARIABLE]), token_store=store)
        token = await client.session.get_token()
        auth = client.session.auth
        http = aiohttp.ClientSession(headers={auth.header_name: auth.header_value(token)})
        url = client.session.base_url + ROUTE
    _emit({"event": "ready", "pid": os.getpid()})
    if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        return
    grants: list[float] = []
    statuses: list[tuple[float, int]] = []
    left = args.permits
    started = time.time()

    async def one() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            while True:
                if limiter.engaged:
                    await limiter.acquire()
                grants.append(time.time())
                if http is None:
                    break
                async with http.get(url) as response:
                    await response.read()
                    limiter.on_response(response.status, response.headers)
                statuses.append((time.time(), response.status))
                if response.status != 429 or time.time() - started > CALL_DEADLINE:
                    break

    try:
        await asyncio.gather(*(one() for _ in range(args.concurrency)))
    finally:
        if http is not None:
            await http.close()
        if client is not None:
            await client.aclose()
        await store.aclose()
    _emit({"event": "done", "pid": os.getpid(), "started": started, "grants": grants,
           "statuses": statuses, "waited": limiter.waited, "throttles": limiter.throttles,
           "rate": limiter.rate})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One process of a rate-limited fleet.")
    parser.add_argument("--store", choices=("redis", "file"), default="redis")
    parser.add_argument("--redis-url")
    parser.add_argument("--namespace", default="vendorkit")
    parser.add_argument("--file")
    parser.add_argument("--key", required=True)
    parser.add_argument("--rate", type=float, help="permits a second (default: adaptive)")
    parser.add_argument("--burst", type=int)
    parser.add_argument("--permits", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--call", action="store_true", help="spend each permit on a GET")
    asyncio.run(work(parser.parse_args(argv)))


class QuotaFleet:
    """Worker processes started together: ``ready()``, then ``go()``, then ``results()``."""

    def __init__(self, count: int, *args: str, stderr_dir: Path,
                 client_kwargs: dict[str, str] | None = None) -> None:
        env = {**os.environ, CLIENT_VARIABLE: json.dumps(client_kwargs or {})}
        self.stderr_paths = [stderr_dir / f"quota-worker-{n}.stderr" for n in range(count)]
        self.processes: list[subprocess.Popen[str]] = []
        self._lines: list[queue.Queue[str]] = []
        for path in self.stderr_paths:
            with path.open("w") as stderr:
                process = subprocess.Popen(
                    [sys.executable, str(WORKER), *args], env=env, text=True,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=_pump, args=(process, lines), daemon=True).start()
            self.processes.append(process)
            self._lines.append(lines)

    def __enter__(self) -> QuotaFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def read(self, event: str, timeout: float = 90.0) -> list[dict[str, Any]]:
        """The next line of every worker, which must be ``event``."""
        deadline = time.monotonic() + timeout
        messages = []
        for process, lines in zip(self.processes, self._lines, strict=True):
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"worker {process.pid} said nothing for {timeout} s; "
                                     f"stderr: {self.stderr()}") from None
            message = json.loads(line) if line else {}
            if message.get("event") != event:
                raise AssertionError(f"worker {process.pid}: {line!r}; stderr: {self.stderr()}")
            messages.append(message)
        return messages

    def go(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()

    def stderr(self) -> list[str]:
        return [path.read_text() for path in self.stderr_paths]


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            lines.put(line)
    lines.put("")


if __name__ == "__main__":
    main()
