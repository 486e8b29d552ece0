"""Tokens under pressure: revocation, failing refreshes, rotation races, skew, cancellation.

Token lifetimes here are fractional (0.5, 1.5, 1.8 s) on purpose: the sandbox, like real
servers, rounds an integral lifetime's expiry down to whole seconds, so a "2 s" token may
die up to a second before the client expects, which would blur what each test measures.
Tokens the server rejects early have their own tests (clock skew).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import vendorkit
from vendorkit import MemoryTokenStore, RetryPolicy
from vendorkit.sandbox import SandboxThread

from .support import (
    FAST_RETRY,
    PROBES,
    REFRESHING,
    VENDORS,
    Lab,
    client_class,
    issued_tokens,
    issued_tokens_in_order,
    sleep_until,
    until,
)

# --- revocation under load ------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
async def test_token_revoked_with_500_calls_in_flight_costs_one_login_and_no_call(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor)  # 100 call slots, 101 connections
    slots = 100  # one more connection stays free for logins and logouts
    await probe.call(client)
    counters = sandbox.state.counters
    sandbox.state.faults.latency = 0.5  # the server holds each request before checking it

    calls = [asyncio.ensure_future(probe.call(client)) for _ in range(500)]
    # 100 calls are held by the server with the token; 400 wait for a slot, token-less.
    await until(lambda: counters.requests[probe.route] >= 1 + slots)
    sandbox.state.revoke_all_tokens()
    sandbox.state.faults.latency = 0.0
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert counters.logins == 2  # exactly one re-login for all 500
    assert counters.rejected == slots  # the held calls; none that queued took the dead token
    assert counters.requests[probe.route] == 1 + 500 + slots  # each rejected call replayed once
    assert client.stats.reauths == slots
    assert client.stats.logins == 2


# --- refresh failing while the token is still valid -----------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
async def test_failing_login_endpoint_keeps_calls_on_the_old_token_until_it_expires(
    lab: Lab, vendor: str
) -> None:
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01)
    sandbox, client, probe = await lab.started(vendor, token_lifetime=1.8, retry=retry)
    await probe.call(client)
    old = client.token
    assert old is not None and old.expires_at is not None
    faults, counters = sandbox.state.faults, sandbox.state.counters
    faults.fail_next(10_000, 503, target="auth")  # refreshes and logins fail from now on

    calls = 0
    while time.time() < old.expires_at - 0.3:  # through both refresh windows
        results = await asyncio.gather(*(probe.call(client) for _ in range(10)))
        assert all(results)
        calls += len(results)
        await asyncio.sleep(0.02)

    assert client.token is old
    assert counters.rejected == 0  # every call went out with a token the server accepted
    attempts = counters.faults
    assert attempts >= 2  # renewal was tried, in the advisory and the mandatory window...
    assert attempts <= 24 < calls  # ...after pauses, not by every call

    await sleep_until(old.expires_at + 0.05)
    with pytest.raises(vendorkit.ServerError) as caught:
        await probe.call(client)  # expired, and nothing can renew it: the caller is told
    assert caught.value.status == 503

    faults.clear()
    assert await probe.call(client)
    assert client.token is not None and client.token.access_token != old.access_token
    assert counters.logins + counters.refreshes == 2


# --- refresh tokens the server refuses ------------------------------------------------------

INVALID_GRANT = json.dumps({"error": "invalid_grant", "error_description": "Token is not active"})


@pytest.mark.parametrize("vendor", REFRESHING)
async def test_refresh_refused_as_invalid_grant_falls_back_to_a_login(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor, token_lifetime=1.5)
    await probe.call(client)
    old = client.token
    assert old is not None and old.expires_at is not None and old.refresh_token
    sandbox.state.faults.fail_next(1, 400, target="auth", body=INVALID_GRANT)

    await sleep_until(old.expires_at - 0.2)  # mandatory window: the call waits for renewal
    assert await probe.call(client)

    counters = sandbox.state.counters
    assert (counters.faults, counters.refreshes, counters.logins) == (1, 0, 2)
    assert client.token is not None and client.token.access_token != old.access_token
    assert (client.stats.logins, client.stats.refreshes, client.stats.errors) == (2, 0, 0)


@pytest.mark.parametrize("vendor", REFRESHING)
async def test_refresh_token_expired_at_the_server_falls_back_to_a_login(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor, token_lifetime=1.5, refresh_lifetime=0.5)
    await probe.call(client)
    old = client.token
    assert old is not None and old.expires_at is not None

    await sleep_until(old.expires_at - 0.2)
    assert await probe.call(client)

    counters = sandbox.state.counters
    assert (counters.refreshes, counters.logins) == (0, 2)
    # Keycloak says when its refresh token expires, so only the others are tried and refused.
    assert counters.failed_logins == (0 if old.refresh_expires_at is not None else 1)
    assert client.stats.errors == 0


# --- rotating refresh tokens ----------------------------------------------------------------


@pytest.mark.parametrize("vendor", REFRESHING)
async def test_concurrent_calls_across_many_lifetimes_never_replay_a_refresh_token(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor, token_lifetime=0.5)
    await probe.call(client)
    deadline = time.monotonic() + 1.5
    outcomes: list[object] = []

    async def caller() -> None:
        while time.monotonic() < deadline:
            try:
                outcomes.append(await probe.call(client))
            except vendorkit.VendorkitError as exc:
                outcomes.append(exc)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(caller() for _ in range(50)))

    counters = sandbox.state.counters
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert counters.failed_logins == 0  # a replayed (rotated) refresh token would count here
    assert counters.logins == 1
    assert counters.refreshes >= 3  # 0.5 s tokens, renewed at half-life, across 1.5 s


@pytest.mark.parametrize("vendor", REFRESHING)
async def test_two_clients_racing_to_rotate_one_refresh_token_never_fail_a_call(
    lab: Lab, vendor: str
) -> None:
    sandbox = await lab.sandbox(vendor, token_lifetime=1.5)
    store = MemoryTokenStore()  # shared, as by two processes; its lock does not serialise
    first, second = (lab.client(sandbox, token_store=store) for _ in range(2))
    probe = PROBES[vendor]
    await probe.call(first)
    await probe.call(second)  # adopts the stored token: both now hold one refresh token
    shared = first.token
    assert shared is not None and shared.expires_at is not None and second.token == shared

    await sleep_until(shared.expires_at - 0.2)
    # Both renew at once with the same refresh token: the server rotates it for one and, as
    # with Keycloak's replay detection, ends the whole session for the other.
    results = await asyncio.gather(
        *(probe.call(client) for client in (first, second) for _ in range(20)),
        return_exceptions=True,
    )
    results += await asyncio.gather(
        *(probe.call(client) for client in (first, second) for _ in range(20)),
        return_exceptions=True,
    )

    counters = sandbox.state.counters
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert counters.refreshes == 1
    assert counters.failed_logins == 1  # the replay, refused as invalid_grant
    assert 2 <= counters.logins <= 3  # the refused one logged in; the other at most once more


# --- clock skew -----------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
async def test_server_clock_ahead_rejects_a_token_the_client_trusts_and_one_reauth_fixes_it(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor, token_lifetime=60.5)
    rejections: list[object] = []
    client.session.add_event_hook("reauth", lambda event: rejections.append(event.detail["status"]))
    sandbox.state.clock_skew = 59.5  # tokens die 1 s after issue by the server's clock
    await probe.call(client)
    await asyncio.sleep(1.1)

    assert await probe.call(client)  # rejected, re-auth, replay

    counters = sandbox.state.counters
    assert (counters.rejected, counters.logins) == (1, 2)
    assert rejections == [403 if vendor == "cloud4wi" else 401]  # Cloud4Wi's "expired" is 403
    assert await probe.call(client)
    assert counters.logins == 2


@pytest.mark.parametrize("vendor", VENDORS)
async def test_server_rejecting_every_fresh_token_gets_one_reauth_per_call_not_a_loop(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor, token_lifetime=60.5)
    sandbox.state.clock_skew = 120.0  # every token is born expired at the server

    with pytest.raises(vendorkit.APIError) as caught:
        await probe.call(client)

    assert caught.value.status in (401, 403)
    counters = sandbox.state.counters
    assert (counters.logins, counters.rejected) == (2, 2)  # one login, one re-login, no third
    assert counters.requests[probe.route] == 2
    assert client.stats.reauths == 1


# --- cancellation ---------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
async def test_cancelling_some_waiters_during_a_login_leaves_the_others_and_the_login_alone(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor)
    sandbox.state.faults.slow_next(1, 0.3, target="auth")
    waiters = [asyncio.ensure_future(probe.call(client)) for _ in range(10)]
    await asyncio.sleep(0.1)

    for waiter in waiters[::2]:
        waiter.cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)

    assert all(isinstance(r, asyncio.CancelledError) for r in results[::2])
    assert all(r and not isinstance(r, BaseException) for r in results[1::2])
    assert sandbox.state.counters.logins == 1
    assert sandbox.state.counters.requests[probe.route] == 5


@pytest.mark.parametrize("vendor", VENDORS)
async def test_cancelling_every_waiter_during_a_login_still_lets_the_login_land(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor)
    sandbox.state.faults.slow_next(1, 0.3, target="auth")
    waiters = [asyncio.ensure_future(probe.call(client)) for _ in range(5)]
    await asyncio.sleep(0.1)

    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    await until(lambda: client.token is not None)

    assert await probe.call(client)
    assert sandbox.state.counters.logins == 1  # the shielded login finished and was kept
    assert sandbox.state.counters.requests[probe.route] == 1


# --- one client, two event loops ------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_one_client_serves_two_asyncio_runs_with_one_login(vendor: str) -> None:
    probe = PROBES[vendor]
    with SandboxThread([vendor]) as thread:
        sandbox = thread.sandboxes[vendor]
        client = client_class(vendor)(**sandbox.client_kwargs, retry=FAST_RETRY)

        async def call() -> object:
            return await probe.call(client)

        first = asyncio.run(call())
        second = asyncio.run(call())
        asyncio.run(client.aclose())

        assert first and second
        counters = thread.call(lambda: sandbox.state.counters.snapshot())
        assert counters["logins"] == 1  # the token outlived the first loop
        assert counters["requests"][probe.route] == 2  # type: ignore[index]


# --- closing mid-renewal --------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["cloud4wi", "wogeez"])  # the vendors with a logout
async def test_closing_while_a_renewal_is_in_flight_revokes_the_renewed_token(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor, token_lifetime=1.5)
    await probe.call(client)
    token = client.token
    assert token is not None and token.expires_at is not None

    await sleep_until(token.expires_at - 0.7)  # advisory window: renewal in the background
    assert await probe.call(client)
    await client.aclose()  # at once: the renewal and the logout cross on the wire

    state = sandbox.state
    assert state.counters.logins + state.counters.refreshes == 2  # the renewal did happen
    newest = issued_tokens_in_order(state)[-1]
    assert isinstance(state.verify(newest), str), "the renewed token outlived aclose()"
    # A token replaced by a login (not a refresh) stays valid until its own, near, expiry.
    live = [t for t in issued_tokens(state) if not isinstance(state.verify(t), str)]
    assert len(live) <= (0 if PROBES[vendor].refreshes else 1)
