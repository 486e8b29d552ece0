"""TokenManager: single-flight login, the two refresh windows, refresh failures, stale 401s."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import MakeManager
from tests.toy import Toy
from vendorkit import AuthenticationError, RefreshWindows, ServerError, Token

# --- single flight ------------------------------------------------------------------------


async def test_thousand_concurrent_first_calls_share_one_login(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.login_delay = 0.05  # the login is still running when the last call asks for a token
    manager = make_manager("json")

    responses = await asyncio.gather(*(manager.request("GET", "/data") for _ in range(1000)))

    print(f"server counted {toy.counters.logins} login(s) for 1000 concurrent first calls")
    assert [r.status for r in responses] == [200] * 1000
    assert {r.json()["generation"] for r in responses} == {1}
    assert toy.counters.logins == 1
    assert toy.counters.requests["POST /login"] == 1
    assert toy.counters.requests["GET /data"] == 1000
    assert manager.stats.logins == 1


async def test_failed_login_reaches_every_waiter_and_is_not_cached(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.login_delay = 0.05
    toy.fail_logins(1)
    manager = make_manager("json")

    results = await asyncio.gather(
        *(manager.request("GET", "/data") for _ in range(50)), return_exceptions=True
    )

    assert all(isinstance(r, AuthenticationError) for r in results), results
    assert toy.counters.failed_logins == 1  # one refused login shared by all 50 waiters
    assert toy.counters.logins == 0
    assert manager.token is None

    response = await manager.request("GET", "/data")

    assert response.status == 200
    assert toy.counters.logins == 1
    assert toy.counters.failed_logins == 1


async def test_cancelled_waiter_does_not_cancel_the_shared_login(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.login_delay = 0.3
    manager = make_manager("json")
    first = asyncio.create_task(manager.request("GET", "/data"))
    await asyncio.sleep(0.1)  # the login is in flight
    assert toy.counters.logins == 1

    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    started = time.monotonic()
    response = await manager.request("GET", "/data")

    assert response.json()["generation"] == 1
    assert toy.counters.logins == 1  # the second caller joined the login the first started
    assert time.monotonic() - started < 0.3


async def test_explicit_login_replaces_the_token(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json")
    first = await manager.login()
    second = await manager.login()

    assert first.access_token != second.access_token
    assert manager.token == second
    assert toy.counters.logins == 2
    assert (await manager.request("GET", "/data")).json()["generation"] == 2


# --- refresh windows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait", "expired"), [(0.8, False), (1.05, True)], ids=["mandatory-window", "expired"]
)
async def test_expired_token_is_refreshed_once_under_concurrency(
    toy: Toy, make_manager: MakeManager, wait: float, expired: bool
) -> None:
    toy.token_lifetime = 1.0  # mandatory window: the last 0.25 s
    toy.refresh_delay = 0.1
    manager = make_manager("oauth2")
    await manager.request("GET", "/data")
    await asyncio.sleep(wait)  # every call must now wait for the new token
    assert manager.token is not None and manager.token.is_expired() is expired

    responses = await asyncio.gather(*(manager.request("GET", "/data") for _ in range(200)))

    assert {r.json()["generation"] for r in responses} == {2}
    assert toy.counters.refreshes == 1
    assert toy.counters.requests["POST /oauth/token"] == 2  # one login, one refresh
    assert toy.counters.logins == 1
    assert toy.counters.rejected == 0
    assert manager.stats.refreshes == 1


async def test_advisory_window_refreshes_in_background_without_blocking_calls(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.token_lifetime = 2.0
    toy.refresh_delay = 0.5  # a slow refresh: any call that waited for it would show
    # Advisory window opens 0.4 s after issue, the mandatory one only at 1.8 s.
    windows = RefreshWindows(advisory_fraction=0.8, mandatory_fraction=0.1)
    manager = make_manager("oauth2", refresh_windows=windows)
    await manager.request("GET", "/data")
    await asyncio.sleep(0.45)

    latencies, generations = [], []
    for _ in range(15):
        started = time.monotonic()
        response = await manager.request("GET", "/data")
        latencies.append(time.monotonic() - started)
        generations.append(response.json()["generation"])
        await asyncio.sleep(0.01)

    assert toy.counters.refreshes == 1  # started by the first call, in the background
    assert generations == [1] * 15  # the old token, still valid, kept being used
    assert max(latencies) < 0.25, latencies  # nobody waited for the 0.5 s refresh
    await asyncio.sleep(0.5)
    assert (await manager.request("GET", "/data")).json()["generation"] == 2
    assert toy.counters.refreshes == 1
    assert toy.counters.logins == 1


async def test_short_lived_token_refreshes_once_near_its_end_not_in_a_loop(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.token_lifetime = 3.0
    manager = make_manager("oauth2")  # default windows, scaled to a 3 s lifetime
    deadline = time.monotonic() + 2.5
    calls = 0
    while time.monotonic() < deadline:
        assert (await manager.request("GET", "/data")).status == 200
        calls += 1
        await asyncio.sleep(0.05)

    assert calls > 30
    assert toy.counters.logins == 1
    assert toy.counters.refreshes == 1
    assert manager.stats.refreshes == 1


async def test_invalid_grant_on_refresh_falls_back_to_login(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.token_lifetime = 1.0
    manager = make_manager("oauth2")
    await manager.request("GET", "/data")
    toy.forget_refresh_tokens()
    await asyncio.sleep(1.05)

    response = await manager.request("GET", "/data")

    assert response.json()["generation"] == 2
    assert toy.counters.failed_refreshes == 1  # tried the refresh token once ...
    assert toy.counters.refreshes == 0
    assert toy.counters.logins == 2  # ... then logged in with the credentials
    assert manager.stats.logins == 2


async def test_refresh_failure_keeps_using_valid_token_until_expiry(
    toy: Toy, make_manager: MakeManager, caplog: pytest.LogCaptureFixture
) -> None:
    toy.token_lifetime = 2.0  # advisory window from 1.0 s, mandatory from 1.5 s
    manager = make_manager("oauth2")
    await manager.request("GET", "/data")
    issued = time.monotonic()
    toy.fail_refreshes(100, status=500)

    await asyncio.sleep(1.05)  # advisory window
    advisory = [await manager.request("GET", "/data") for _ in range(10)]
    assert [r.json()["generation"] for r in advisory] == [1] * 10
    assert toy.counters.failed_refreshes == 1  # paused after a failure, not once per call
    assert "refresh failed" in caplog.text

    await asyncio.sleep(max(0.0, 1.6 - (time.monotonic() - issued)))  # mandatory window
    mandatory = await manager.request("GET", "/data")
    assert mandatory.json()["generation"] == 1  # the refresh failed again; still valid
    assert toy.counters.failed_refreshes == 2

    await asyncio.sleep(max(0.0, 2.05 - (time.monotonic() - issued)))  # expired
    with pytest.raises(ServerError):
        await manager.request("GET", "/data")
    assert toy.counters.requests["GET /data"] == 12  # the expired token was never sent

    toy.fail_refreshes(0)
    assert (await manager.request("GET", "/data")).json()["generation"] == 2
    assert toy.counters.refreshes == 1
    assert toy.counters.logins == 1


async def test_stored_token_is_used_without_a_login(toy: Toy, make_manager: MakeManager) -> None:
    first = make_manager("json")
    token = await first.get_token()
    second = make_manager("json", token_store=first.store)

    assert await second.get_token() == token
    assert toy.counters.logins == 1


# --- stale rejections ---------------------------------------------------------------------


async def test_stale_401_does_not_discard_newer_token(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    await manager.login()
    slow = asyncio.create_task(manager.request("GET", "/data", params={"delay": 0.3}))
    await asyncio.sleep(0.1)
    toy.revoke_all_tokens()
    newer: Token = await manager.login()  # replaced while the slow call is in flight

    response = await slow  # its 401 names the old token: the newer one must survive

    assert response.json()["generation"] == 2
    assert manager.token == newer
    assert toy.counters.rejected == 1
    assert toy.counters.logins == 2  # no third login for the stale rejection
    assert (await manager.request("GET", "/data")).json()["generation"] == 2


async def test_a_replay_refused_because_a_renewal_replaced_its_token_is_renewed_again(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    await manager.login()
    toy.revoke_all_tokens()
    call = asyncio.create_task(manager.request("GET", "/data", params={"delay": 0.3}))
    await toy.arrivals("GET /data", 2)  # refused, renewed; the replay is held by the server
    toy.revoke_all_tokens()
    renewed = await manager.login()  # meanwhile another renewal replaces the replay's token

    response = await call  # the replay's 401 names a token no longer held

    assert response.status == 200
    assert response.json()["generation"] == 3  # sent with the token of the third login
    assert manager.token == renewed
    assert toy.counters.requests["GET /data"] == 3  # one more replay, not a lost call
    assert toy.counters.logins == 3


async def test_a_cure_token_killed_by_a_refresh_in_flight_is_renewed_not_final(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.token_lifetime = 2.0  # advisory window from 1.0 s (half), mandatory from 1.5 s
    toy.refresh_revokes_access = True  # as Wokelo's server (DOT) does, before it answers
    toy.refresh_delay = 0.3
    manager = make_manager("oauth2")
    first = await manager.get_token()
    toy.revoke_all_tokens()
    cure = await manager.tokens.reject(manager._login_transport, first, status=401)
    await asyncio.sleep(1.1)  # the cure, never accepted yet, enters its advisory window
    assert await manager.tokens.get(manager._login_transport) is cure  # a refresh starts
    await asyncio.sleep(0.1)  # the server has revoked the cure; its answer is on the way

    response = await manager.request("GET", "/data")  # sent with the cure: 401

    assert response.status == 200  # renewed and replayed, not a final rejection
    assert toy.counters.refreshes == 1 and toy.counters.rejected >= 1
    assert manager.token is not None and manager.token != cure


# --- any refusal of a refresh token falls back to one login ---------------------------------

REFRESH_REFUSALS = [
    pytest.param(401, {"detail": "Token is invalid or expired", "code": "token_not_valid"},
                 id="django-rest-401-detail"),
    pytest.param(400, "invalid_request", id="oauth2-400-invalid_request"),
    pytest.param(400, "invalid_grant", id="oauth2-400-invalid_grant"),
    pytest.param(401, "invalid_token", id="oauth2-401-invalid_token"),
]


@pytest.mark.parametrize(("status", "refusal"), REFRESH_REFUSALS)
async def test_any_refusal_of_the_refresh_token_falls_back_to_one_login(
    toy: Toy, make_manager: MakeManager, status: int, refusal: str | dict[str, str]
) -> None:
    toy.token_lifetime = 1.0
    manager = make_manager("oauth2")
    await manager.request("GET", "/data")
    toy.fail_refreshes(1, status=status, error=refusal)
    await asyncio.sleep(1.05)  # expired: the next call must renew before it is sent

    responses = await asyncio.gather(*(manager.request("GET", "/data") for _ in range(20)))

    assert {r.json()["generation"] for r in responses} == {2}
    assert toy.counters.failed_refreshes == 1  # the refresh token was tried once ...
    assert toy.counters.logins == 2  # ... then one full login, not a wedged client
    assert manager.stats.logins == 2


async def test_refused_refresh_and_failed_login_reach_every_waiter_then_later_calls_recover(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.token_lifetime = 1.0
    manager = make_manager("oauth2")
    await manager.request("GET", "/data")
    toy.fail_refreshes(1, status=401, error={"detail": "Token is invalid or expired",
                                             "code": "token_not_valid"})
    toy.fail_logins(1)
    await asyncio.sleep(1.05)

    outcomes = await asyncio.gather(
        *(manager.request("GET", "/data") for _ in range(20)), return_exceptions=True
    )

    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    assert toy.counters.failed_refreshes == 1 and toy.counters.failed_logins == 1  # no storm
    response = await manager.request("GET", "/data")  # a later call tries again, and heals
    assert response.json()["generation"] == 2
    assert toy.counters.logins + toy.counters.refreshes == 2  # one renewal, by either


async def test_a_rejection_that_joins_a_refresh_does_not_make_its_token_a_final_cure(
    toy: Toy, make_manager: MakeManager
) -> None:
    toy.token_lifetime = 2.0  # advisory window from 1.0 s (half), mandatory from 1.5 s
    toy.refresh_answer_delay = 0.3  # the refreshed token is issued, then answered 0.3 s later
    manager = make_manager("oauth2")
    await manager.get_token()
    await asyncio.sleep(1.1)
    await manager.tokens.get(manager._login_transport)  # a refresh starts in the background
    await asyncio.sleep(0.1)
    toy.revoke_all_tokens()  # a mass revocation: the held token and the refresh's new one

    # Refused, the call joins the refresh (not a login of its own); the refreshed token is
    # refused in turn: that is no proof that fresh tokens are refused, so it logs in.
    response = await manager.request("GET", "/data")

    assert response.status == 200
    assert toy.counters.refreshes == 1
    assert toy.counters.logins == 2
