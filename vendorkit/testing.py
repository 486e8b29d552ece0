"""pytest fixtures for testing your own code against the vendor sandboxes.

Installed with vendorkit as a pytest plugin (the ``pytest11`` entry point), so the
fixtures are there without any import. Every sandbox listens on 127.0.0.1 only.

``vendorkit_sandbox``
    A factory: ``async with vendorkit_sandbox("cloudcx", token_lifetime=2) as (client,
    sandbox):`` starts that vendor's emulator, hands back a client configured for it and
    the running sandbox (``sandbox.state`` has counters and fault injection), and stops
    both afterwards. Keyword arguments other than the sandbox's own (``token_lifetime``,
    ``credentials``, ``refresh_lifetime``, ``clock_skew``, ``variants``, ``quota``) go to
    the client's constructor. ``variants="capped-page"`` (or a list of names) selects how
    the emulator answers where the vendor's docs are silent:
    ``vendorkit.sandbox.variants_of(vendor)`` lists them. Works in any async test.

``cloud4wi_sandbox_client``, ``wokelo_sandbox_client``, ``cloudcx_sandbox_client``,
``cambyopro_sandbox_client``, ``wogeez_sandbox_client``
    Async fixtures: a ``SandboxClient(client, sandbox)`` for that vendor, default
    settings; ``@pytest.mark.vendorkit_variant("NAME", ...)`` on the test selects variants.
    They need pytest-asyncio; with ``asyncio_mode = "strict"`` mark the test
    ``@pytest.mark.asyncio`` as usual.

``vendorkit_sandbox_thread``
    The synchronous factory, for plain ``def`` tests and projects without pytest-asyncio:
    ``client, sandbox = vendorkit_sandbox_thread("wokelo")`` runs the emulator on a
    background thread; drive the client with ``asyncio.run(...)`` inside the test.
    Fault injection is thread-safe; change other sandbox state through its
    ``/_sandbox/...`` control routes.

``vendorkit_fast_retries``
    Makes every retry wait zero seconds for the test (``vendorkit.retry.set_testing``).

Beyond the vendorkit package itself, this module imports only pytest: it is loaded by
every pytest run where vendorkit is installed, so the sandbox and the clients load when a
fixture is first used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar, cast, overload

import pytest

if TYPE_CHECKING:
    from vendorkit.client import VendorClient
    from vendorkit.sandbox import RunningSandbox
    from vendorkit.vendors import (
        CambyoProClient,
        Cloud4WiClient,
        CloudCXClient,
        WogeezClient,
        WokeloClient,
    )

__all__ = [
    "SandboxClient",
    "SandboxFactory",
    "SandboxThreadFactory",
    "cambyopro_sandbox_client",
    "cloud4wi_sandbox_client",
    "cloudcx_sandbox_client",
    "sandbox_client",
    "vendorkit_fast_retries",
    "vendorkit_sandbox",
    "vendorkit_sandbox_thread",
    "wogeez_sandbox_client",
    "wokelo_sandbox_client",
]

ClientT = TypeVar("ClientT", bound="VendorClient")
FixtureT = TypeVar("FixtureT", bound=Callable[..., Any])

_SANDBOX_OPTIONS = (
    "token_lifetime", "credentials", "refresh_lifetime", "clock_skew", "variants", "quota",
)
VARIANT_MARKER = "vendorkit_variant"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that selects the per-vendor fixtures' variants."""
    config.addinivalue_line(
        "markers", f"{VARIANT_MARKER}(*names): emulator variants for the *_sandbox_client fixtures"
    )


class SandboxClient(NamedTuple, Generic[ClientT]):
    """A client configured for a running sandbox, and the sandbox: ``client, sandbox = ...``."""

    client: ClientT
    sandbox: RunningSandbox


def _split(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sandbox options, client options)."""
    sandbox = {k: v for k, v in options.items() if k in _SANDBOX_OPTIONS}
    client = {k: v for k, v in options.items() if k not in _SANDBOX_OPTIONS}
    return sandbox, client


def _client_for(sandbox: RunningSandbox, options: Mapping[str, Any]) -> VendorClient:
    from vendorkit.vendors import CLIENTS

    client: VendorClient = CLIENTS[sandbox.vendor](**{**sandbox.client_kwargs, **options})
    return client


@contextlib.asynccontextmanager
async def sandbox_client(vendor: str, **options: Any) -> AsyncIterator[SandboxClient[Any]]:
    """Serve ``vendor``'s sandbox and yield a client for it; both are closed on exit."""
    from vendorkit.sandbox import serve

    sandbox_options, client_options = _split(options)
    async with (
        serve(vendor, host="127.0.0.1", **sandbox_options) as sandbox,
        _client_for(sandbox, client_options) as client,
    ):
        yield SandboxClient(client, sandbox)


class SandboxFactory:
    """What the ``vendorkit_sandbox`` fixture is: ``async with factory("wokelo") as (c, sb)``."""

    @overload
    def __call__(
        self, vendor: Literal["cloud4wi"], **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SandboxClient[Cloud4WiClient]]: ...
    @overload
    def __call__(
        self, vendor: Literal["wokelo"], **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SandboxClient[WokeloClient]]: ...
    @overload
    def __call__(
        self, vendor: Literal["cloudcx"], **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SandboxClient[CloudCXClient]]: ...
    @overload
    def __call__(
        self, vendor: Literal["cambyopro"], **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SandboxClient[CambyoProClient]]: ...
    @overload
    def __call__(
        self, vendor: Literal["wogeez"], **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SandboxClient[WogeezClient]]: ...
    @overload
    def __call__(
        self, vendor: str, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SandboxClient[Any]]: ...
    def __call__(
        self, vendor: str, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SandboxClient[Any]]:
        return sandbox_client(vendor, **options)


class SandboxThreadFactory:
    """What ``vendorkit_sandbox_thread`` is: starts sandboxes on threads, stops them later."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._clients: list[VendorClient] = []

    def __call__(self, vendor: str, **options: Any) -> SandboxClient[Any]:
        from vendorkit.sandbox import SandboxThread

        sandbox_options, client_options = _split(options)
        credentials = sandbox_options.pop("credentials", None)
        variants = sandbox_options.pop("variants", None)
        thread = self._stack.enter_context(SandboxThread(
            (vendor,), host="127.0.0.1",
            credentials=None if credentials is None else {vendor: credentials},
            variants=None if variants is None else {vendor: variants},
            **sandbox_options,
        ))
        client = _client_for(thread.sandboxes[vendor], client_options)
        self._clients.append(client)
        return SandboxClient(client, thread.sandboxes[vendor])

    def close(self) -> None:
        """Close every client (on a fresh event loop), then stop the sandboxes."""
        with self._stack:
            for client in reversed(self._clients):
                asyncio.run(client.aclose())


@pytest.fixture
def vendorkit_sandbox() -> SandboxFactory:
    """``async with vendorkit_sandbox("cloud4wi", token_lifetime=2) as (client, sandbox):``"""
    return SandboxFactory()


@pytest.fixture
def vendorkit_sandbox_thread() -> Iterator[SandboxThreadFactory]:
    """``client, sandbox = vendorkit_sandbox_thread("wokelo")`` for synchronous tests."""
    factory = SandboxThreadFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def vendorkit_fast_retries() -> Iterator[None]:
    """Every retry waits zero seconds during the test."""
    from vendorkit import retry

    with retry.set_testing(True):  # restores the previous mode, in case it was on for good
        yield


def _async_fixture(function: FixtureT) -> FixtureT:
    """An async fixture under pytest-asyncio in any mode, or a clear failure without it."""
    try:
        import pytest_asyncio
    except ImportError:
        def unavailable() -> None:
            pytest.fail(
                f"{function.__name__} needs pytest-asyncio; without it use the "
                "vendorkit_sandbox_thread fixture",
                pytrace=False,
            )

        unavailable.__doc__ = function.__doc__
        return cast(FixtureT, pytest.fixture(name=function.__name__)(unavailable))
    return cast(FixtureT, pytest_asyncio.fixture(function))


async def _serve_one(
    vendor: str, request: pytest.FixtureRequest
) -> AsyncIterator[SandboxClient[Any]]:
    """The vendor's sandbox with the variants the test's ``vendorkit_variant`` marker names."""
    marker = request.node.get_closest_marker(VARIANT_MARKER)
    variants = tuple(marker.args) if marker is not None else ()
    async with sandbox_client(vendor, variants=variants) as pair:
        yield pair


@_async_fixture
async def cloud4wi_sandbox_client(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SandboxClient[Cloud4WiClient]]:
    """A ``Cloud4WiClient`` and the Cloud4Wi sandbox it talks to."""
    async for pair in _serve_one("cloud4wi", request):
        yield pair


@_async_fixture
async def wokelo_sandbox_client(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SandboxClient[WokeloClient]]:
    """A ``WokeloClient`` and the Wokelo sandbox it talks to."""
    async for pair in _serve_one("wokelo", request):
        yield pair


@_async_fixture
async def cloudcx_sandbox_client(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SandboxClient[CloudCXClient]]:
    """A ``CloudCXClient`` (OAuth2 mode) and the CloudCX sandbox it talks to."""
    async for pair in _serve_one("cloudcx", request):
        yield pair


@_async_fixture
async def cambyopro_sandbox_client(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SandboxClient[CambyoProClient]]:
    """A ``CambyoProClient`` and the CambyoPro sandbox it talks to."""
    async for pair in _serve_one("cambyopro", request):
        yield pair


@_async_fixture
async def wogeez_sandbox_client(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SandboxClient[WogeezClient]]:
    """A ``WogeezClient`` and the Wogeez (Keycloak) sandbox it talks to."""
    async for pair in _serve_one("wogeez", request):
        yield pair
