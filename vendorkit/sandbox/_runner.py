"""Starting emulators: in this event loop (``serve``, ``serve_all``) or a thread of their own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType

import attrs
from aiohttp import web

from ._quota import Quota
from ._state import (
    REFRESH_LIFETIME,
    SHUTDOWN_TIMEOUT,
    VENDORS,
    SandboxState,
    T,
)
from ._variants import TokenStyle, Variant, merge_settings, variant_names

#: Variants chosen per vendor: one name or several.
Selection = Mapping[str, str | Iterable[str]]

#: Event-loop iterations a late accept needs to reach aiohttp (the accept task, then
#: ``connection_made``), with one to spare.
_LATE_ACCEPT_ITERATIONS = 3


def _base_url_kwargs(base_url: str, credentials: dict[str, str]) -> dict[str, str]:
    return {"base_url": base_url, **credentials}


@attrs.frozen
class Vendor:
    """What the runner needs to know to start one vendor's emulator."""

    name: str
    credentials: Mapping[str, str] = attrs.field(repr=False)
    token_lifetime: float
    make_app: Callable[[SandboxState], web.Application]
    client_kwargs: Callable[[str, dict[str, str]], dict[str, str]] = _base_url_kwargs
    token_style: TokenStyle = "opaque"
    token_prefix: str = ""
    #: The vendor's own settings where they differ from the defaults (see ``Settings``).
    settings: Mapping[str, object] = attrs.field(factory=dict)
    #: Every undocumented point of this vendor, answered each plausible way, by name.
    variants: Mapping[str, Variant] = attrs.field(factory=dict)


def vendor_spec(name: str) -> Vendor:
    """The ``VENDOR`` declaration of ``vendorkit.sandbox.<name>``."""
    if name not in VENDORS:
        raise ValueError(f"unknown vendor {name!r}; expected one of {', '.join(VENDORS)}")
    spec = importlib.import_module(f"{__package__}.{name}").VENDOR  # the core imports no vendor
    if not isinstance(spec, Vendor):
        raise TypeError(f"{name}.VENDOR is not a Vendor")
    return spec


def variants_of(vendor: str) -> Mapping[str, Variant]:
    """The variants ``vendor``'s emulator declares, by name."""
    return vendor_spec(vendor).variants


def variant_pairs(vendors: Iterable[str] = VENDORS) -> list[tuple[str, str]]:
    """Every (vendor, variant) the emulators declare, for a test matrix."""
    return [(vendor, name) for vendor in vendors for name in variants_of(vendor)]


def parse_variant(text: str) -> tuple[str, str]:
    """``"VENDOR=NAME"`` as (vendor, name); ValueError naming what is wrong."""
    vendor, sep, name = text.strip().partition("=")
    vendor, name = vendor.strip().lower(), name.strip()
    if not sep or not vendor or not name:
        raise ValueError(f"expected VENDOR=VARIANT, e.g. cloudcx=capped-page, got {text!r}")
    declared = variants_of(vendor)
    if name not in declared:
        known = ", ".join(sorted(declared)) or "none"
        raise ValueError(f"unknown {vendor} variant {name!r}; {vendor} variants: {known}")
    return vendor, name


@attrs.frozen
class RunningSandbox:
    """A started emulator: where it listens and what a client needs to talk to it."""

    vendor: str
    base_url: str
    state: SandboxState
    credentials: dict[str, str] = attrs.field(repr=False)
    client_kwargs: dict[str, str] = attrs.field(repr=False)


def _transports(server: web.Server | None) -> list[asyncio.Transport]:
    """The transports of the connections ``server`` holds now."""
    connections = server.connections if server is not None else []
    return [handler.transport for handler in connections if handler.transport is not None]


@contextlib.asynccontextmanager
async def serve_app(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    backlog: int = 1024,
) -> AsyncIterator[str]:
    """Run any aiohttp ``app`` on ``host:port`` (0: a free port); yields its base URL.

    ``backlog`` is deep enough for a thousand clients connecting at once (aiohttp's 128
    drops SYNs, and each costs a one-second retransmit).

    On the way out every connection is closed at once, so that none is collected unclosed
    (a ResourceWarning in whatever test runs next): aiohttp closes each one gracefully,
    but a TLS connection then waits up to 30 s for the peer's close_notify, and one whose
    accept was under way as the server stopped registers an iteration or two after
    aiohttp's cleanup. What is still open then is aborted.
    """
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    server = runner.server
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=backlog).start()
        scheme = "http" if ssl_context is None else "https"
        bound_port = runner.addresses[0][1]
        yield f"{scheme}://{f'[{host}]' if ':' in host else host}:{bound_port}"
    finally:
        transports = _transports(server)
        await runner.cleanup()
        for _ in range(_LATE_ACCEPT_ITERATIONS):
            await asyncio.sleep(0)
        for transport in (*transports, *_transports(server)):
            transport.abort()


@contextlib.asynccontextmanager
async def serve(
    vendor: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token_lifetime: float | None = None,
    credentials: Mapping[str, str] | None = None,
    refresh_lifetime: float | None = None,
    clock_skew: float = 0.0,
    variants: str | Iterable[str] | None = None,
    quota: Quota | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[RunningSandbox]:
    """Run one vendor's emulator on ``host:port`` (0: a free port); ``credentials`` override.

    ``variants`` names how it answers where the seeds are silent (``variants_of(vendor)``);
    ``quota`` limits each credential's calls to the API routes (429 + Retry-After beyond);
    ``ssl_context`` (a server context with its certificate loaded) serves it over https.
    """
    spec = vendor_spec(vendor)
    names = variant_names(variants)
    settings = merge_settings(vendor, spec.settings, spec.variants, names)
    creds = {**spec.credentials, **(credentials or {})}
    if token_lifetime is None:
        token_lifetime = settings.token_lifetime or spec.token_lifetime
    state = SandboxState(
        vendor=vendor,
        credentials=creds,
        token_lifetime=token_lifetime,
        refresh_lifetime=REFRESH_LIFETIME if refresh_lifetime is None else refresh_lifetime,
        clock_skew=clock_skew,
        token_style=settings.token_style or spec.token_style,
        token_prefix=spec.token_prefix,
        settings=settings,
        variants=names,
    )
    state.quota = quota
    async with serve_app(spec.make_app(state), host=host, port=port,
                         ssl_context=ssl_context) as base_url:
        kwargs = spec.client_kwargs(base_url, dict(creds))
        yield RunningSandbox(vendor, base_url, state, dict(creds), kwargs)


@contextlib.asynccontextmanager
async def serve_all(
    vendors: Iterable[str] = VENDORS,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token_lifetime: float | None = None,
    credentials: Mapping[str, Mapping[str, str]] | None = None,
    refresh_lifetime: float | None = None,
    clock_skew: float = 0.0,
    variants: Selection | None = None,
    quota: Quota | None = None,
) -> AsyncIterator[dict[str, RunningSandbox]]:
    """Run several emulators, each on its own free port (or ``port``, ``port + 1``, ...);
    ``variants`` by vendor, e.g. ``{"cloudcx": "capped-page"}``; ``quota`` for each."""
    vendors = tuple(vendors)
    stray = sorted(set(variants or {}) - set(vendors))
    if stray:
        raise ValueError(f"variants given for {', '.join(stray)}, which is not served")
    async with contextlib.AsyncExitStack() as stack:
        running: dict[str, RunningSandbox] = {}
        for offset, vendor in enumerate(vendors):
            running[vendor] = await stack.enter_async_context(
                serve(
                    vendor,
                    host=host,
                    port=port + offset if port else 0,
                    token_lifetime=token_lifetime,
                    credentials=(credentials or {}).get(vendor),
                    refresh_lifetime=refresh_lifetime,
                    clock_skew=clock_skew,
                    variants=(variants or {}).get(vendor),
                    quota=quota,
                )
            )
        yield running


class SandboxThread:
    """Emulators on a background thread with their own event loop (for the CLI, other processes)."""

    def __init__(
        self,
        vendors: Iterable[str] = VENDORS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float | None = None,
        credentials: Mapping[str, Mapping[str, str]] | None = None,
        refresh_lifetime: float | None = None,
        clock_skew: float = 0.0,
        variants: Selection | None = None,
        quota: Quota | None = None,
    ) -> None:
        self._serve = functools.partial(
            serve_all,
            tuple(vendors),
            host=host,
            port=port,
            token_lifetime=token_lifetime,
            credentials=credentials,
            refresh_lifetime=refresh_lifetime,
            clock_skew=clock_skew,
            variants=variants,
            quota=quota,
        )
        self.sandboxes: dict[str, RunningSandbox] = {}
        self._started: concurrent.futures.Future[dict[str, RunningSandbox]] = (
            concurrent.futures.Future()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="vendorkit-sandbox", daemon=True)

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        self.sandboxes = self._started.result(timeout=30)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the sandbox loop (where the state lives) and return its result."""
        if self._loop is None:
            raise RuntimeError("SandboxThread is not running")

        async def invoke() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with self._serve() as running:
                self._started.set_result(running)
                await self._stop.wait()
        except Exception as exc:
            if self._started.done():
                raise
            self._started.set_exception(exc)  # startup failed (port taken...): __enter__ raises
