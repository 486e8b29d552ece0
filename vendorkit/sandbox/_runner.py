"""Starting emulators: in this event loop (``serve``, ``serve_all``) or a thread of their own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType

import attrs
from aiohttp import web

from ._state import (
    REFRESH_LIFETIME,
    SHUTDOWN_TIMEOUT,
    VENDORS,
    SandboxState,
    T,
    TokenStyle,
)


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


def vendor_spec(name: str) -> Vendor:
    """The ``VENDOR`` declaration of ``vendorkit.sandbox.<name>``."""
    if name not in VENDORS:
        raise ValueError(f"unknown vendor {name!r}; expected one of {', '.join(VENDORS)}")
    spec = importlib.import_module(f"{__package__}.{name}").VENDOR  # the core imports no vendor
    if not isinstance(spec, Vendor):
        raise TypeError(f"{name}.VENDOR is not a Vendor")
    return spec


@attrs.frozen
class RunningSandbox:
    """A started emulator: where it listens and what a client needs to talk to it."""

    vendor: str
    base_url: str
    state: SandboxState
    credentials: dict[str, str] = attrs.field(repr=False)
    client_kwargs: dict[str, str] = attrs.field(repr=False)


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
) -> AsyncIterator[RunningSandbox]:
    """Run one vendor's emulator on ``host:port`` (0: a free port); ``credentials`` override."""
    spec = vendor_spec(vendor)
    creds = {**spec.credentials, **(credentials or {})}
    state = SandboxState(
        vendor=vendor,
        credentials=creds,
        token_lifetime=spec.token_lifetime if token_lifetime is None else token_lifetime,
        refresh_lifetime=REFRESH_LIFETIME if refresh_lifetime is None else refresh_lifetime,
        clock_skew=clock_skew,
        token_style=spec.token_style,
        token_prefix=spec.token_prefix,
    )
    runner = web.AppRunner(spec.make_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        base_url = f"http://{f'[{host}]' if ':' in host else host}:{bound_port}"
        kwargs = spec.client_kwargs(base_url, dict(creds))
        yield RunningSandbox(vendor, base_url, state, dict(creds), kwargs)
    finally:
        await runner.cleanup()


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
) -> AsyncIterator[dict[str, RunningSandbox]]:
    """Run several emulators, each on its own free port (or ``port``, ``port + 1``, ...)."""
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
