"""The contenders: the same authenticated, JSON-decoded GET of Cloud4Wi organizations, by
eleven clients, and the driver that times N of them at a given concurrency.

The runner starts one fresh process per measurement, so CPU time and peak RSS are the
contender's own; this module therefore imports no HTTP library until a contender is set
up. Every contender gets the same pool (100 connections, all kept alive: aiohttp's and
vendorkit's default) and the same 30 s timeout. Run one by hand::

    BENCH_CLIENT_KEY=... BENCH_CLIENT_SECRET=... \
        python -m benchmarks.contenders aiohttp --base-url http://127.0.0.1:8080 --n 1000

It prints one JSON line of figures. The credentials come from the environment (the
runner passes the sandbox's), never from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import resource
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CONTENDERS", "Contender", "Target", "drive", "measure"]

Call = Callable[[], Awaitable[object]]
Close = Callable[[], Awaitable[None]]
Loop = Literal["asyncio", "uvloop"]

POOL_SIZE = 100
TIMEOUT = 30.0
LOGIN_PATH = "/v1/sts/login/services"


@dataclass(frozen=True)
class Target:
    """What every contender fetches, and with which credentials."""

    base_url: str
    cid: str
    client_key: str
    client_secret: str

    @property
    def path(self) -> str:
        return f"/v2/customers/organizations/{self.cid}"

    #: The query vendorkit's ``get_organizations`` sends; the others send the same.
    params: ClassVar[dict[str, str]] = {"sortBy": "created_absolute", "sortReverse": "false"}

    @property
    def url(self) -> str:
        """The full URL, query included (the hand-written clients use it as is)."""
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.base_url}{self.path}?{query}"

    @property
    def login_body(self) -> dict[str, str]:
        return {"clientKey": self.client_key, "clientSecret": self.client_secret}


class CallFailed(RuntimeError):
    """A contender got an answer other than 200: the run is void."""


def _jwt_expiry(token: str) -> float:
    """The ``exp`` of a JWT (no signature check), for authlib's token dict."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])


# --- the contenders ----------------------------------------------------------------------


async def _aiohttp_logged_in(target: Target) -> tuple[aiohttp.ClientSession, dict[str, str]]:
    """An aiohttp session and the Bearer header of a login made by hand."""
    import aiohttp

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
    async with session.post(target.base_url + LOGIN_PATH, json=target.login_body) as resp:
        if resp.status != 200:
            raise CallFailed(f"login answered HTTP {resp.status}")
        token = (await resp.json())["token"]
    return session, {"Authorization": f"Bearer {token}"}


async def _aiohttp(target: Target, cold: bool) -> tuple[Call, Close]:
    """Raw aiohttp, a hand-set Bearer header: the floor."""
    session, headers = await _aiohttp_logged_in(target)
    url = target.url

    async def call() -> object:
        async with session.get(url, headers=headers) as resp:
            if resp.status != 200:
                raise CallFailed(f"HTTP {resp.status}")
            return await resp.json()

    return call, session.close


async def _aiohttp_models(target: Target, cold: bool) -> tuple[Call, Close]:
    """Raw aiohttp that returns the typed call's result with no library between: the body
    decoded by orjson (the stdlib without it) and the same frozen attrs ``Organization``s
    built by hand-written code (attrs' own ``__init__``, unknown keys to ``extra``), with
    none of vendorkit's checks. The ceiling of any client returning these models (issue 15)."""
    from vendorkit.vendors.cloud4wi import Organization

    loads: Callable[[bytes], Any]
    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - the bench extra installs it
        from json import loads

    known = frozenset(("id", "name", "cid", "created", "created_absolute", "updated",
                       "status", "tags"))

    def organization(o: dict[str, Any]) -> Organization:
        return Organization(
            id=o.get("id"), name=o.get("name"), cid=o.get("cid"), created=o.get("created"),
            created_absolute=o.get("created_absolute"), updated=o.get("updated"),
            status=o.get("status"), tags=list(o.get("tags") or ()),
            extra={k: v for k, v in o.items() if k not in known},
        )

    session, headers = await _aiohttp_logged_in(target)
    url = target.url

    async def call() -> object:
        async with session.get(url, headers=headers) as resp:
            if resp.status != 200:
                raise CallFailed(f"HTTP {resp.status}")
            return [organization(o) for o in loads(await resp.read())]

    return call, session.close


async def _vendorkit_client(target: Target, cold: bool, **options: Any) -> Any:
    from vendorkit import Cloud4WiClient

    client = Cloud4WiClient(target.client_key, target.client_secret, base_url=target.base_url,
                            **options)
    if not cold:
        await client.login()
    return client


async def _vendorkit(target: Target, cold: bool) -> tuple[Call, Close]:
    """vendorkit's typed call: ``Cloud4WiClient.get_organizations`` -> list[Organization]."""
    client = await _vendorkit_client(target, cold)
    cid = target.cid

    def call() -> Awaitable[object]:
        return client.get_organizations(cid)  # type: ignore[no-any-return]

    return call, client.aclose


async def _vendorkit_untraced(target: Target, cold: bool) -> tuple[Call, Close]:
    """The typed call with ``tracing=False``: no OpenTelemetry check at all (issue 13's
    baseline for "no provider set costs nothing measurable")."""
    client = await _vendorkit_client(target, cold, tracing=False)
    cid = target.cid

    def call() -> Awaitable[object]:
        return client.get_organizations(cid)  # type: ignore[no-any-return]

    return call, client.aclose


async def _vendorkit_otel(target: Target, cold: bool) -> tuple[Call, Close]:
    """The typed call with an OpenTelemetry SDK TracerProvider set, as an application that
    exports traces has: a span per call, batched to an exporter that drops them."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)
    call, close = await _vendorkit(target, cold)

    async def close_all() -> None:
        await close()
        provider.shutdown()

    return call, close_all


async def _vendorkit_request(target: Target, cold: bool) -> tuple[Call, Close]:
    """vendorkit's escape hatch: ``client.request("GET", path, params=...)`` then ``.json()``."""
    client = await _vendorkit_client(target, cold)
    path, params = target.path, target.params

    async def call() -> object:
        return (await client.request("GET", path, params=params)).json()

    return call, client.aclose


def _httpx_options() -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    return {"limits": limits, "timeout": TIMEOUT, "trust_env": False}


async def _httpx(target: Target, cold: bool) -> tuple[Call, Close]:
    """httpx.AsyncClient with a hand-set Bearer header."""
    import httpx

    client = httpx.AsyncClient(**_httpx_options())
    answer = await client.post(target.base_url + LOGIN_PATH, json=target.login_body)
    if answer.status_code != 200:
        raise CallFailed(f"login answered HTTP {answer.status_code}")
    headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    url = target.url

    async def call() -> object:
        resp = await client.get(url, headers=headers)
        if resp.status_code != 200:
            raise CallFailed(f"HTTP {resp.status_code}")
        return resp.json()

    return call, client.aclose


async def _authlib(target: Target, cold: bool) -> tuple[Call, Close]:
    """authlib's AsyncOAuth2Client (httpx underneath), holding the token with its expiry.

    Cloud4Wi's login is not an OAuth2 grant, so the token is fetched by hand once and
    given to the client, which then adds it to every call and checks its expiry.
    """
    with warnings.catch_warnings():  # authlib 1.9 asks for httpx2; httpx is what it uses here
        warnings.simplefilter("ignore")
        from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
            AsyncOAuth2Client,
        )

    client = AsyncOAuth2Client(**_httpx_options())
    answer = await client.request(
        "POST", target.base_url + LOGIN_PATH, json=target.login_body, withhold_token=True
    )
    if answer.status_code != 200:
        raise CallFailed(f"login answered HTTP {answer.status_code}")
    token = answer.json()["token"]
    client.token = {"access_token": token, "token_type": "Bearer",
                    "expires_at": _jwt_expiry(token)}
    url = target.url

    async def call() -> object:
        resp = await client.get(url)
        if resp.status_code != 200:
            raise CallFailed(f"HTTP {resp.status_code}")
        return resp.json()

    return call, client.aclose


@dataclass(frozen=True)
class Contender:
    """One way of making the call, on one event loop."""

    name: str
    label: str
    loop: Loop
    setup: Callable[[Target, bool], Awaitable[tuple[Call, Close]]]
    #: The contender whose throughput this one is compared with (same event loop).
    floor: str


CONTENDERS = {c.name: c for c in (
    Contender("aiohttp", "raw aiohttp + hand-set Bearer (floor)", "asyncio", _aiohttp,
              "aiohttp"),
    Contender("vendorkit", "vendorkit get_organizations (typed)", "asyncio", _vendorkit,
              "aiohttp"),
    Contender("aiohttp-models", "raw aiohttp + orjson + hand-built models (typed ceiling)",
              "asyncio", _aiohttp_models, "aiohttp"),
    Contender("vendorkit-request", "vendorkit request() + .json()", "asyncio",
              _vendorkit_request, "aiohttp"),
    Contender("httpx", "httpx.AsyncClient + hand-set Bearer", "asyncio", _httpx, "aiohttp"),
    Contender("authlib", "authlib AsyncOAuth2Client", "asyncio", _authlib, "aiohttp"),
    Contender("vendorkit-untraced", "vendorkit typed, tracing=False", "asyncio",
              _vendorkit_untraced, "aiohttp"),
    Contender("vendorkit-otel", "vendorkit typed, OTel SDK TracerProvider set", "asyncio",
              _vendorkit_otel, "aiohttp"),
    Contender("aiohttp-uvloop", "raw aiohttp under uvloop (floor)", "uvloop", _aiohttp,
              "aiohttp-uvloop"),
    Contender("vendorkit-uvloop", "vendorkit get_organizations under uvloop", "uvloop",
              _vendorkit, "aiohttp-uvloop"),
    Contender("aiohttp-models-uvloop", "hand-built models ceiling under uvloop", "uvloop",
              _aiohttp_models, "aiohttp-uvloop"),
)}


# --- the driver --------------------------------------------------------------------------


async def drive(call: Call, n: int, concurrency: int, *, deadline: float = 0.0) -> int:
    """Make ``n`` calls with at most ``concurrency`` in flight (workers pulling from a
    count); with a ``deadline`` (``time.monotonic()``), no call starts after it.
    Returns the calls made."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            if deadline and time.monotonic() >= deadline:
                return
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return n - remaining


async def measure(
    contender: Contender, target: Target, *, n: int, concurrency: int, warmup: int,
    cold: bool, max_seconds: float = 0.0,
) -> dict[str, Any]:
    """Set up, warm up, then time ``n`` calls (fewer if ``max_seconds`` runs out first):
    wall seconds and process CPU seconds."""
    call, close = await contender.setup(target, cold)
    try:
        if warmup:
            await drive(call, warmup, concurrency)
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        deadline = time.monotonic() + max_seconds if max_seconds > 0 else 0.0
        n = await drive(call, n, concurrency, deadline=deadline)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await close()
    return {
        "contender": contender.name,
        "loop": contender.loop,
        "n": n,
        "concurrency": concurrency,
        "warmup": warmup,
        "cold": cold,
        "seconds": wall,
        "cpu_seconds": cpu,
        "calls_per_second": n / wall,
        "cpu_us_per_call": cpu / n * 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "versions": _versions(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set, interpreter and imports included.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries the forked parent's peak across
    ``exec`` into ``ru_maxrss``, so every child would report at least the runner's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in ("aiohttp", "vendorkit", "httpx", "authlib", "uvloop"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if version:
            versions[name] = str(version)
    vendorkit = sys.modules.get("vendorkit")
    if vendorkit is not None and vendorkit.__file__:  # which build was measured
        versions["vendorkit_path"] = os.path.dirname(vendorkit.__file__)
    return versions


def run_in_loop(loop: Loop, main: Awaitable[Any]) -> Any:
    """Run ``main`` on a fresh asyncio or uvloop event loop."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)  # type: ignore[arg-type]
    with asyncio.Runner() as runner:
        return runner.run(main)  # type: ignore[arg-type]


def target_from(args: argparse.Namespace) -> Target:
    """The target; credentials from the environment (importing the sandbox for its defaults
    would load aiohttp and vendorkit into every contender's process and its peak RSS)."""
    try:
        key, secret = os.environ["BENCH_CLIENT_KEY"], os.environ["BENCH_CLIENT_SECRET"]
    except KeyError as exc:
        raise SystemExit(f"set {exc.args[0]} (benchmarks.run sets it for you)") from None
    return Target(args.base_url, args.cid, key, secret)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time one contender; prints one JSON line.")
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--cid", default="customer-42")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed calls first (default: min(n, max(concurrency, 500)))")
    parser.add_argument("--max-seconds", type=float, default=0.0,
                        help="start no call after this many seconds (0: make all n)")
    parser.add_argument("--cold", action="store_true",
                        help="no login and no warm-up before the timer (token storm)")
    args = parser.parse_args(argv)
    contender = CONTENDERS[args.contender]
    warmup = 0 if args.cold else args.warmup
    if warmup is None:
        warmup = min(args.n, max(args.concurrency, 500))
    figures = run_in_loop(contender.loop, measure(
        contender, target_from(args), n=args.n, concurrency=args.concurrency, warmup=warmup,
        cold=args.cold, max_seconds=args.max_seconds))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
