"""Helpers for the reliability suite: sandboxes, clients, and how to probe each vendor.

Every test drives real HTTP against ``vendorkit.sandbox`` emulators on 127.0.0.1 and
asserts on both sides: what the caller saw and what the server counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import attrs
import pytest

from vendorkit import RetryPolicy, VendorClient
from vendorkit.sandbox import RunningSandbox, SandboxState, serve
from vendorkit.vendors import CLIENTS, CloudCXClient

#: Retries without real waits, for tests where the wait itself does not matter.
FAST_RETRY = RetryPolicy(base_delay=0.001, max_delay=0.01)

#: Credential fields that are secrets (identities such as client ids are not).
SECRET_FIELDS = frozenset({"client_secret", "password", "api_key"})


@attrs.frozen
class Probe:
    """How a test exercises one vendor: a typed call, the route it hits, the login route."""

    vendor: str
    call: Callable[[Any], Awaitable[object]]
    route: str
    login_route: str
    #: The vendor hands out refresh tokens (and rotates them).
    refreshes: bool
    #: Logging in starts with OpenID Connect discovery (one more "auth" request first).
    discovers: bool = False
    #: The emulator variants the probe's assumptions need (CloudCX: refresh tokens).
    variants: tuple[str, ...] = ()


async def _cambyopro_account(client: Any) -> object:
    # CambyoPro documents no endpoint but login: the sandbox-only account route, read as JSON.
    return (await client.request("GET", "/api/v1/account")).json()


PROBES: dict[str, Probe] = {
    "cloud4wi": Probe(
        "cloud4wi",
        lambda c: c.get_organizations("cid-1"),
        "GET /v2/customers/organizations/{cid}",
        "POST /v1/sts/login/services",
        refreshes=False,
    ),
    "wokelo": Probe(
        "wokelo",
        lambda c: c.search_companies("a"),
        "GET /api/enterprise/company/search",
        "POST /auth/token/",
        refreshes=True,
    ),
    "cloudcx": Probe(
        "cloudcx",
        lambda c: c.get_user_page(page_size=5),
        "GET /openapi/v2/user/page",
        "POST /oauth/token",
        refreshes=True,
        variants=("refresh-token",),  # the seed's token answer has no refresh token
    ),
    "cambyopro": Probe(
        "cambyopro",
        _cambyopro_account,
        "GET /api/v1/account",
        "POST /api/no-auth/authentication/v1/login",
        refreshes=False,
    ),
    "wogeez": Probe(
        "wogeez",
        lambda c: c.list_companies(size=5),
        "GET /companies",
        "POST /realms/wogeez/protocol/openid-connect/token",
        refreshes=True,
        discovers=True,
    ),
}
VENDORS = tuple(PROBES)
REFRESHING = tuple(name for name, probe in PROBES.items() if probe.refreshes)


def client_class(vendor: str) -> Callable[..., VendorClient]:
    """``vendor``'s client class, typed for keyword arguments of any vendor."""
    return cast(Callable[..., VendorClient], CLIENTS[vendor])


def issued_secrets(sandboxes: Iterable[RunningSandbox]) -> set[str]:
    """Every secret credential and every token the sandboxes handed out or accept."""
    found: set[str] = set()
    for sandbox in sandboxes:
        found |= {v for k, v in sandbox.credentials.items() if k in SECRET_FIELDS}
        found |= issued_tokens(sandbox.state)
    return found


def issued_tokens(state: SandboxState) -> set[str]:
    """Every access and refresh token the emulator issued (its registry is keyed by value)."""
    return set(state._tokens)  # sandbox internals: there is no public list of issued tokens


def issued_tokens_in_order(state: SandboxState) -> list[str]:
    """The emulator's tokens, oldest first (its registry keeps the order they were issued)."""
    return list(state._tokens)


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets that appear in ``text``, shortened so a failure does not print them."""
    return [f"{s[:4]}...({len(s)} chars)" for s in secrets if s and s in text]


async def until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (polling), or fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


async def sleep_until(moment: float) -> None:
    """Sleep until the UNIX time ``moment``."""
    await asyncio.sleep(max(0.0, moment - time.time()))


class Lab:
    """Sandboxes and clients for one test; clients close (and log out) before servers stop."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self._stack = stack

    async def sandbox(self, vendor: str, **options: Any) -> RunningSandbox:
        """Start ``vendor``'s emulator (``token_lifetime=``, ``refresh_lifetime=``...)."""
        options.setdefault("variants", PROBES[vendor].variants)
        return await self._stack.enter_async_context(serve(vendor, **options))

    def client(self, sandbox: RunningSandbox, **options: Any) -> Any:
        """The vendor's client for ``sandbox``, fast retries unless ``retry=`` says otherwise.

        Typed ``Any`` because each vendor client has its own typed methods.
        """
        options.setdefault("retry", FAST_RETRY)
        client: VendorClient = client_class(sandbox.vendor)(**sandbox.client_kwargs, **options)
        self._stack.push_async_callback(client.aclose)
        return client

    def api_key_client(self, sandbox: RunningSandbox, **options: Any) -> Any:
        """A CloudCX client in API-key mode (no login at all) for ``sandbox``."""
        options.setdefault("retry", FAST_RETRY)
        client = CloudCXClient(sandbox.base_url, api_key=sandbox.credentials["api_key"], **options)
        self._stack.push_async_callback(client.aclose)
        return client

    async def started(self, vendor: str, **options: Any) -> tuple[RunningSandbox, Any, Probe]:
        """A sandbox, its client (session options in ``options``) and the vendor's probe."""
        sandbox_options = {
            k: options.pop(k) for k in ("token_lifetime", "refresh_lifetime") if k in options
        }
        sandbox = await self.sandbox(vendor, **sandbox_options)
        return sandbox, self.client(sandbox, **options), PROBES[vendor]
