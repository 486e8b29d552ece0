"""SessionManager: re-auth and replay, lifecycle, configuration, secrets, events and stats."""

from __future__ import annotations

import asyncio
import builtins
import gc
import logging
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import MakeManager, SleepRecorder
from tests.toy import CLIENT_SECRET, PASSWORD, Toy, json_login, oauth2_grant, serve_in_thread
from vendorkit import (
    AuthenticationError,
    ConfigurationError,
    Event,
    MemoryTokenStore,
    PermissionDeniedError,
    RetryPolicy,
    SessionManager,
    TimeoutError,
    VendorkitError,
)

# --- re-auth ------------------------------------------------------------------------------


async def test_401_triggers_one_relogin_and_one_replay(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    await manager.request("GET", "/data")
    toy.revoke_all_tokens()

    response = await manager.request("GET", "/data")

    assert response.json()["generation"] == 2
    assert toy.counters.rejected == 1
    assert toy.counters.logins == 2
    assert toy.counters.requests["GET /data"] == 3  # first call, rejected try, replay
    assert manager.stats.reauths == 1


async def test_second_rejection_raises_authentication_error(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    await manager.login()
    toy.answer_next(2, status=401, body={"error": "invalid_token"})

    with pytest.raises(AuthenticationError) as caught:
        await manager.request("GET", "/data")

    assert caught.value.status == 401
    assert toy.counters.requests["GET /data"] == 2  # one replay, not a loop
    assert toy.counters.logins == 2
    assert manager.stats.reauths == 1


async def test_concurrent_401s_cause_one_relogin(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json", max_connections=0)
    await manager.login()
    calls = [manager.request("GET", "/data", params={"delay": 0.5}) for _ in range(200)]
    in_flight = asyncio.gather(*calls)
    await asyncio.wait_for(toy.arrivals("GET /data", 200), timeout=0.45)
    toy.revoke_all_tokens()  # all 200 arrived; none has been answered yet

    responses = await in_flight

    assert {r.json()["generation"] for r in responses} == {2}
    assert toy.counters.rejected == 200
    assert toy.counters.logins == 2  # one re-login for 200 rejections
    assert manager.stats.logins == 2


async def test_unauthenticated_request_sends_no_token_and_does_not_log_in(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")

    response = await manager.request("POST", "/echo", json={"a": 1}, authenticate=False)

    assert response.json() == {"echo": {"a": 1}}
    assert toy.counters.logins == 0
    assert manager.token is None


# --- lifecycle ----------------------------------------------------------------------------


async def test_timeout_raises_vendorkit_timeout_error(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    manager = make_manager("json", timeout=0.2, retry=RetryPolicy(max_attempts=2, sleep=sleeps))
    await manager.login()
    started = time.monotonic()

    with pytest.raises(TimeoutError) as caught:
        await manager.request("GET", "/data", params={"delay": 0.5})

    assert isinstance(caught.value, builtins.TimeoutError)
    assert caught.value.method == "GET"
    assert "/data" in caught.value.url
    assert 0.4 <= time.monotonic() - started < 1.0
    assert toy.counters.requests["GET /data"] == 2  # a timed-out GET is retried once
    assert len(sleeps.waits) == 1


async def test_aclose_revokes_token(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("oauth2")
    response = await manager.request("GET", "/data")
    assert response.ok

    await manager.aclose()

    assert toy.counters.revocations == 1
    assert manager.token is None
    assert manager.stats.logouts == 1
    assert toy.live_tokens() == 0


async def test_aclose_logs_out_a_json_login(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json")
    await manager.login()

    async with manager:
        pass

    assert toy.counters.logouts == 1
    assert manager.token is None


async def test_aclose_logout_failure_is_logged_not_raised(
    toy: Toy, make_manager: MakeManager, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager("oauth2")
    await manager.login()
    toy.answer_next(1, route="POST /oauth/revoke", status=500, body={"error": "server_error"})

    await manager.aclose()

    assert toy.counters.requests["POST /oauth/revoke"] == 1
    assert manager.token is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "logout on close failed" in warnings[0].getMessage()


async def test_aclose_gives_up_on_a_slow_logout(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("oauth2", logout_timeout=0.2)
    await manager.login()
    toy.answer_next(1, route="POST /oauth/revoke", status=200, body={}, delay=0.4)
    started = time.monotonic()

    await manager.aclose()

    assert time.monotonic() - started < 0.35
    assert toy.counters.requests["POST /oauth/revoke"] == 1


class SharedMemoryTokenStore(MemoryTokenStore):
    """A memory store that says other processes see it, as the Redis store does."""

    shared = True


async def test_aclose_with_shared_store_keeps_token(toy: Toy, make_manager: MakeManager) -> None:
    store = SharedMemoryTokenStore()
    first = make_manager("oauth2", token_store=store)
    token = await first.get_token()

    await first.aclose()

    assert toy.counters.revocations == 0
    assert await store.get(first.tokens.key) == token
    second = make_manager("oauth2", token_store=store)
    response = await second.request("GET", "/data")
    assert response.json()["generation"] == 1
    assert toy.counters.logins == 1

    assert await second.logout() is True  # an explicit logout revokes it for everyone
    assert toy.counters.revocations == 1
    assert await store.get(first.tokens.key) is None


async def test_a_session_passed_in_still_sends_the_default_and_configured_headers(
    toy: Toy, make_manager: MakeManager
) -> None:
    async with aiohttp.ClientSession() as session:
        manager = make_manager("json", http_session=session, headers={"X-Tenant": "acme"})

        sent = (await manager.request("GET", "/data")).json()["headers"]

    assert sent["Accept"] == "application/json"
    assert sent["User-Agent"].startswith("vendorkit/")
    assert sent["X-Tenant"] == "acme"


async def test_external_session_is_not_closed(toy: Toy, make_manager: MakeManager) -> None:
    async with aiohttp.ClientSession() as session:
        manager = make_manager("json", http_session=session)
        await manager.request("GET", "/data")

        await manager.aclose()

        assert not session.closed
        async with session.post(toy.base_url + "/echo", json={"still": "open"}) as response:
            assert response.status == 200
        assert toy.counters.logouts == 1


async def test_manager_reopens_after_aclose(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json")
    await manager.request("GET", "/data")
    await manager.aclose()

    response = await manager.request("GET", "/data")

    assert response.json()["generation"] == 2
    assert toy.counters.logins == 2


def test_client_reused_across_two_asyncio_runs() -> None:
    with serve_in_thread() as toy:
        manager = SessionManager(toy.base_url, json_login(toy))

        async def call() -> tuple[int, aiohttp.ClientSession]:
            response = await manager.request("GET", "/data")
            return response.json()["generation"], manager.transport.http_session()

        first, first_session = asyncio.run(call())
        assert first_session.closed  # closed as its loop shut down, without aclose()
        second, second_session = asyncio.run(call())
        assert second_session is not first_session
        assert second_session.closed

        assert (first, second) == (1, 1)
        assert toy.counters.logins == 1  # the second run reused the token
        assert toy.counters.requests["GET /data"] == 2
        gc.collect()  # an unclosed session would warn here, and -W error fails the test


def test_client_usable_again_after_aclose_in_another_asyncio_run() -> None:
    with serve_in_thread() as toy:
        manager = SessionManager(toy.base_url, json_login(toy))

        async def call_and_close() -> int:
            response = await manager.request("GET", "/data")
            await manager.aclose()
            return int(response.json()["generation"])

        assert asyncio.run(call_and_close()) == 1
        assert asyncio.run(call_and_close()) == 2  # aclose() revoked the first token

        assert toy.counters.logins == 2
        assert toy.counters.logouts == 2
        gc.collect()


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"base_url": "127.0.0.1:8080"}, "base_url"),
        ({"base_url": ""}, "base_url"),
        ({"base_url": "ftp://127.0.0.1"}, "base_url"),
        ({"base_url": "http://192.0.2.10/api"}, "allow_insecure_http"),
        ({"timeout": -1}, "timeout"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"logout_timeout": -5}, "logout_timeout"),
        ({"max_connections": -1}, "max_connections"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"event_hooks": {"logn": []}}, "logn"),
    ],
)
def test_bad_configuration_raises_configuration_error_naming_the_argument(
    options: dict[str, Any], named: str
) -> None:
    options = {"base_url": "http://127.0.0.1:1", **options}
    base_url = options.pop("base_url")
    auth = json_login(Toy())

    with pytest.raises(ConfigurationError, match=named):
        SessionManager(base_url, auth, **options)


def test_plain_http_to_a_remote_host_needs_allow_insecure_http() -> None:
    auth = json_login(Toy())
    manager = SessionManager("http://192.0.2.10/api/", auth, allow_insecure_http=True)

    assert manager.base_url == "http://192.0.2.10/api"  # built, never used: no I/O here
    assert SessionManager("http://localhost:1", auth).base_url == "http://localhost:1"


@pytest.mark.parametrize(
    ("options", "named"),
    [({"max_attempts": 0}, "max_attempts"), ({"max_time": -1}, "max_time"),
     ({"base_delay": -0.1}, "base_delay")],
)
def test_bad_retry_policy_raises_configuration_error_naming_the_argument(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        RetryPolicy(**options)


async def test_absolute_url_to_another_host_is_refused(make_manager: MakeManager) -> None:
    manager = make_manager("json")

    with pytest.raises(ConfigurationError, match="another host"):
        await manager.request("GET", "http://127.0.0.2:1/steal")

    assert manager.token is None


# --- secrets ------------------------------------------------------------------------------


async def test_secrets_absent_from_logs_reprs_and_errors(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="vendorkit")
    toy.token_lifetime = 2.0  # windows: advisory from 1.0 s, mandatory from 1.5 s
    toy.echo_credentials = True  # a careless server quoting what it got in its errors
    manager = make_manager("oauth2", retry=RetryPolicy(sleep=sleeps))
    errors: list[BaseException] = []
    reprs: list[str] = [repr(manager), repr(manager.auth)]

    await manager.request("GET", "/data")  # login
    reprs.append(repr(manager.token))
    toy.answer_next(1, status=503)
    await manager.request("GET", "/data")  # a retry
    await asyncio.sleep(1.6)
    await manager.request("GET", "/data")  # a refresh
    reprs.append(repr(manager.token))
    toy.revoke_all_tokens()
    await manager.request("GET", "/data")  # a re-auth
    toy.answer_next(1, status=400, body='{"message": "token {token} is not allowed here"}')
    with pytest.raises(VendorkitError) as rejected:
        await manager.request("GET", "/data")  # an error quoting the token
    errors.append(rejected.value)
    toy.forget_refresh_tokens()
    await asyncio.sleep(1.6)
    await manager.request("GET", "/data")  # a refused refresh, quoting the refresh token
    toy.fail_refreshes(1, status=500)
    await asyncio.sleep(1.2)
    await manager.request("GET", "/data")  # a failed background refresh, quoting it again
    await asyncio.sleep(0.1)
    assert await manager.logout()

    wrong = "wrong-password-Vb6Yt3Qa"
    intruder = make_manager("oauth2", auth=oauth2_grant(toy, password=wrong))
    reprs += [repr(intruder), repr(intruder.auth)]
    with pytest.raises(AuthenticationError) as refused:
        await intruder.request("GET", "/data")  # a failed login, quoting the password
    errors.append(refused.value)
    toy.answer_next(1, route="POST /oauth/revoke", status=500, body='{"error": "{token}"}')
    manager_again = make_manager("oauth2")
    await manager_again.login()
    await manager_again.aclose()  # a failed logout

    secrets = [PASSWORD, CLIENT_SECRET, wrong, *toy.issued]
    texts = reprs + [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [getattr(e, "body_excerpt", "") for e in errors]
    for record in caplog.records:
        texts += [record.getMessage(), str(record.args), record.exc_text or ""]
    leaks = [(secret, text) for secret in secrets for text in texts if secret in text]

    assert leaks == []
    logged = caplog.text
    for phase in ("logged in", "refreshed", "rejected the token", "retrying",
                  "refresh token refused", "refresh failed", "logout on close failed"):
        assert phase in logged, phase
    assert toy.counters.refreshes == 1
    assert toy.counters.failed_refreshes == 2
    assert toy.counters.failed_logins == 1
    assert len(toy.issued) == 10  # login, refresh, re-auth, login after refusal, second manager


# --- events and stats ---------------------------------------------------------------------


async def test_event_hooks_and_stats_count_logins_refreshes_retries_reauths_logouts(
    toy: Toy, make_manager: MakeManager, sleeps: SleepRecorder
) -> None:
    toy.token_lifetime = 1.0
    seen: list[Event] = []
    manager = make_manager(
        "oauth2", retry=RetryPolicy(sleep=sleeps), event_hooks={"login": [seen.append]}
    )
    for kind in ("refresh", "reauth", "logout", "retry", "error"):
        manager.add_event_hook(kind, seen.append)  # type: ignore[arg-type]

    await manager.request("GET", "/data")  # login
    toy.answer_next(1, status=503)
    await manager.request("GET", "/data")  # retry
    await asyncio.sleep(0.8)
    await manager.request("GET", "/data")  # refresh
    toy.revoke_all_tokens()
    await manager.request("GET", "/data")  # reauth, login
    toy.answer_next(1, status=404)
    with pytest.raises(VendorkitError):
        await manager.request("GET", "/data")  # error
    await manager.logout()  # logout

    kinds = [event.kind for event in seen]
    assert kinds == ["login", "retry", "refresh", "reauth", "login", "error", "logout"]
    assert {event.vendor for event in seen} == {"toy"}
    assert manager.stats.as_dict() == {
        "requests": sum(toy.counters.requests.values()),
        "errors": 1, "retries": 1, "logins": 2, "refreshes": 1, "reauths": 1, "logouts": 1,
        "rate_limited": 0, "waited": 0.0,
    }
    assert (toy.counters.logins, toy.counters.refreshes, toy.counters.revocations) == (2, 1, 1)
    assert toy.counters.rejected == 1


async def test_failing_event_hook_is_logged_and_does_not_break_the_call(
    toy: Toy, make_manager: MakeManager, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("hook bug")

    manager = make_manager("json", event_hooks={"login": [broken]})

    response = await manager.request("GET", "/data")

    assert response.ok
    assert manager.stats.logins == 1
    assert "event hook" in caplog.text


# --- a rejection a new token does not cure is final -------------------------------------


def _forbidding(toy: Toy) -> Any:
    """The toy's JSON login, declared as Cloud4Wi's: 403 is also an expired-token signal."""
    import attrs

    return attrs.evolve(json_login(toy), rejection_statuses=frozenset({401, 403}))


async def test_sequential_calls_refused_403_with_a_valid_token_cost_at_most_two_logins(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager(auth=_forbidding(toy))
    # A resource this key may not read: 403 whatever the token. Call 1 sends twice (the
    # first token, then the new one its login brought); calls 2..30 once each.
    toy.answer_next(31, status=403, body={"message": "Forbidden for this customer"})

    for _ in range(30):
        with pytest.raises(PermissionDeniedError):
            await manager.request("GET", "/data")

    assert toy.counters.logins == 2  # was 31: one login per refused call
    assert toy.counters.requests["GET /data"] == 31
    after = await manager.request("GET", "/data")  # the token was good all along
    assert after.json()["generation"] == 2


async def test_refused_calls_between_accepted_ones_cost_at_most_two_logins(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager(auth=_forbidding(toy))
    # A collector's mix: a customer this key may not read among readable ones. The token
    # the server accepts in between does not make the next 403 worth a login again.
    for index in range(15):
        # The first refused call sends twice: its token, then the one its login brought.
        refusals = 2 if index == 0 else 1
        toy.answer_next(refusals, status=403, body={"message": "Forbidden for this customer"})
        with pytest.raises(PermissionDeniedError):
            await manager.request("GET", "/data")
        assert (await manager.request("GET", "/data")).ok

    assert toy.counters.logins == 2  # the first token, and the one that proved the 403 lasts
    assert toy.counters.requests["GET /data"] == 31  # 15 refused + 1 replay + 15 accepted


async def test_a_lasting_refusal_is_remembered_for_its_target_only(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager(auth=_forbidding(toy))
    forbidden, readable = {"customer": "c-forbidden"}, {"customer": "c-readable"}
    toy.answer_next(2, status=403, body={"message": "Forbidden for this customer"})
    with pytest.raises(PermissionDeniedError):
        await manager.request("GET", "/data", params=forbidden)
    assert toy.counters.logins == 2
    assert (await manager.request("GET", "/data", params=readable)).ok  # the token is good

    # Another customer's 403 may be the expired-token signal: it still earns a login.
    toy.answer_next(1, status=403, body={"message": "Token expired"})
    response = await manager.request("GET", "/data", params=readable)

    assert response.json()["generation"] == 3
    assert toy.counters.logins == 3
    toy.answer_next(1, status=403, body={"message": "Forbidden for this customer"})
    with pytest.raises(PermissionDeniedError):  # the forbidden one: final at once
        await manager.request("GET", "/data", params=forbidden)
    assert toy.counters.logins == 3


async def test_concurrent_calls_refused_403_with_a_valid_token_cost_at_most_two_logins(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager(auth=_forbidding(toy))
    await manager.request("GET", "/data")
    toy.answer_next(60, status=403, body={"message": "Forbidden for this customer"})

    outcomes = await asyncio.gather(
        *(manager.request("GET", "/data") for _ in range(30)), return_exceptions=True
    )

    assert all(isinstance(o, PermissionDeniedError) for o in outcomes)
    assert toy.counters.logins <= 2


async def test_an_expired_token_answered_403_still_reauthenticates_once(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager(auth=_forbidding(toy))
    await manager.request("GET", "/data")
    toy.answer_next(1, status=403, body={"message": "Token expired"})
    toy.revoke_all_tokens()

    response = await manager.request("GET", "/data")

    assert response.json()["generation"] == 2
    assert toy.counters.logins == 2
