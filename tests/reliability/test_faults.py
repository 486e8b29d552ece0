"""The fault matrix: each misbehaviour a real API shows, against each vendor it applies to.

Each test asserts what the caller sees (a result, or one typed vendorkit error) and what
the server counted (requests, faults, logins), so a silent extra retry or a lost call
fails the test. The POST cases run against Wokelo, the one vendor with a documented POST
endpoint (enrichment).
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import pytest

import vendorkit
from vendorkit import RetryPolicy

from .support import VENDORS, Lab, issued_secrets, leaks

each_vendor = pytest.mark.parametrize("vendor", VENDORS)


def _assert_no_token_in(error: BaseException, client: Any) -> None:
    token = client.token
    if token is not None:
        assert not leaks(str(error), [token.access_token, token.refresh_token or ""])


# --- 429 Retry-After ------------------------------------------------------------------------


@each_vendor
async def test_429_retry_after_in_seconds_is_waited_then_the_call_succeeds(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor)
    await client.login()
    sandbox.state.faults.fail_next(1, 429, retry_after="1")

    started = time.monotonic()
    assert await probe.call(client)
    elapsed = time.monotonic() - started

    assert 1.0 <= elapsed < 5  # the fast backoff is ~0: only Retry-After explains the wait
    assert sandbox.state.counters.requests[probe.route] == 2
    assert sandbox.state.counters.faults == 1
    assert client.stats.retries == 1


@each_vendor
async def test_429_retry_after_as_http_date_is_waited_then_the_call_succeeds(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor)
    await client.login()
    when = time.time() + 2
    sandbox.state.faults.fail_next(1, 429, retry_after=email.utils.formatdate(when, usegmt=True))

    started = time.monotonic()
    assert await probe.call(client)
    elapsed = time.monotonic() - started

    # An HTTP date has whole seconds: the wait is between 1 and 2 s from now.
    assert 0.9 <= elapsed < 5
    assert sandbox.state.counters.requests[probe.route] == 2
    assert client.stats.retries == 1


@each_vendor
async def test_429_that_never_ends_raises_rate_limit_error_with_retry_after(
    lab: Lab, vendor: str
) -> None:
    retry = RetryPolicy(max_throttle_wait=1.5)  # a 429 is waited out for 1.5 s at most
    sandbox, client, probe = await lab.started(vendor, retry=retry)
    await client.login()
    sandbox.state.faults.fail_next(3, 429, retry_after="1")

    with pytest.raises(vendorkit.RateLimitError) as caught:
        await probe.call(client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0
    assert sandbox.state.counters.requests[probe.route] == 2  # waited 1 s once, not twice
    _assert_no_token_in(caught.value, client)


# --- 5xx bursts -----------------------------------------------------------------------------


@each_vendor
async def test_burst_of_502_503_504_is_retried_until_the_call_succeeds(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor)
    await client.login()
    for status in (502, 503, 504):
        sandbox.state.faults.fail_next(1, status)

    assert await probe.call(client)

    assert sandbox.state.counters.requests[probe.route] == 4
    assert sandbox.state.counters.faults == 3
    assert client.stats.retries == 3
    assert sandbox.state.counters.logins == 1


@each_vendor
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_burst_longer_than_the_retry_budget_raises_server_error(
    lab: Lab, vendor: str, status: int
) -> None:
    retry = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
    sandbox, client, probe = await lab.started(vendor, retry=retry)
    await client.login()
    sandbox.state.faults.fail_next(5, status)

    with pytest.raises(vendorkit.ServerError) as caught:
        await probe.call(client)

    assert caught.value.status == status
    assert sandbox.state.counters.requests[probe.route] == 3  # max_attempts, not one more
    assert sandbox.state.faults.pending() == 2
    _assert_no_token_in(caught.value, client)


# --- dropped connections --------------------------------------------------------------------
#
# A GET whose connection closes before any answer is also resent once by aiohttp itself,
# on a new connection (RFC 9112 section 9.3.1 allows it for idempotent requests), before
# vendorkit's retry policy sees an error: each vendorkit attempt may reach the server twice.


@each_vendor
async def test_connection_dropped_before_the_response_is_retried(lab: Lab, vendor: str) -> None:
    sandbox, client, probe = await lab.started(vendor)
    await client.login()
    sandbox.state.faults.drop_next(1)

    assert await probe.call(client)

    assert sandbox.state.counters.requests[probe.route] == 2  # the dropped one, then the answer
    assert sandbox.state.counters.faults == 1
    assert client.stats.errors == 0


@each_vendor
async def test_connection_dropped_mid_body_is_retried(lab: Lab, vendor: str) -> None:
    sandbox, client, probe = await lab.started(vendor)
    await client.login()
    sandbox.state.faults.drop_next(1, mid_body=True)

    assert await probe.call(client)

    assert sandbox.state.counters.requests[probe.route] == 2
    assert client.stats.retries == 1  # a cut body is vendorkit's to retry, not aiohttp's


@each_vendor
async def test_connection_that_keeps_dropping_raises_connect_error(lab: Lab, vendor: str) -> None:
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01)
    sandbox, client, probe = await lab.started(vendor, retry=retry)
    await client.login()
    sandbox.state.faults.drop_next(4)

    with pytest.raises(vendorkit.ConnectError) as caught:
        await probe.call(client)

    assert caught.value.request_sent
    # 2 vendorkit attempts, each resent once by aiohttp on a fresh connection.
    assert sandbox.state.counters.requests[probe.route] == 4
    assert sandbox.state.faults.pending() == 0
    assert client.stats.retries == 1
    _assert_no_token_in(caught.value, client)


@each_vendor
async def test_body_that_keeps_being_cut_short_raises_connect_error(
    lab: Lab, vendor: str
) -> None:
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01)
    sandbox, client, probe = await lab.started(vendor, retry=retry)
    await client.login()
    sandbox.state.faults.drop_next(2, mid_body=True)

    with pytest.raises(vendorkit.ConnectError):
        await probe.call(client)

    assert sandbox.state.counters.requests[probe.route] == 2


# --- slow answers ---------------------------------------------------------------------------


@each_vendor
async def test_answer_slower_than_the_timeout_is_abandoned_and_retried(
    lab: Lab, vendor: str
) -> None:
    sandbox, client, probe = await lab.started(vendor, timeout=0.2)
    await client.login()
    sandbox.state.faults.slow_next(1, 1.0)

    started = time.monotonic()
    assert await probe.call(client)
    elapsed = time.monotonic() - started

    assert 0.2 <= elapsed < 0.9  # gave up on the slow answer instead of waiting for it
    assert sandbox.state.counters.requests[probe.route] == 2
    assert client.stats.retries == 1


@each_vendor
async def test_answers_that_stay_slow_raise_a_timeout_error(lab: Lab, vendor: str) -> None:
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01)
    sandbox, client, probe = await lab.started(vendor, timeout=0.2, retry=retry)
    await client.login()
    sandbox.state.faults.slow_next(2, 0.5)

    with pytest.raises(vendorkit.TimeoutError) as caught:
        await probe.call(client)

    assert isinstance(caught.value, TimeoutError)  # the builtin too, for generic handlers
    assert sandbox.state.counters.requests[probe.route] == 2


# --- unparseable 200s -----------------------------------------------------------------------


@each_vendor
@pytest.mark.parametrize("kind", ["json", "html"])
async def test_200_with_a_body_that_is_not_the_json_documented_raises_response_parse_error(
    lab: Lab, vendor: str, kind: str
) -> None:
    sandbox, client, probe = await lab.started(vendor)
    await client.login()
    sandbox.state.faults.malformed_next(1, kind=kind)

    with pytest.raises(vendorkit.ResponseParseError) as caught:
        await probe.call(client)

    assert "expected JSON" in str(caught.value)
    _assert_no_token_in(caught.value, client)
    assert sandbox.state.counters.requests[probe.route] == 1  # a 200 is never replayed
    assert await probe.call(client)  # the client is unharmed
    assert sandbox.state.counters.logins == 1


# --- login answers without a token ----------------------------------------------------------

NO_TOKEN_BODIES = {
    "no_token": {"status": "ok", "expires_in": 3600},
    "success_false": {"success": False, "message": "Service temporarily unavailable"},
}


@each_vendor
@pytest.mark.parametrize("body", NO_TOKEN_BODIES.values(), ids=NO_TOKEN_BODIES.keys())
async def test_login_answer_without_a_token_raises_token_response_error_and_next_call_logs_in(
    lab: Lab, vendor: str, body: dict[str, object]
) -> None:
    sandbox, client, probe = await lab.started(vendor)
    if probe.discovers:
        await client.login()  # discovery is fetched once; the fault must hit the token request
        await client.logout()
    login_requests = sandbox.state.counters.requests[probe.login_route]
    sandbox.state.faults.fail_next(1, 200, target="auth", body=json.dumps(body))

    with pytest.raises(vendorkit.TokenResponseError) as caught:
        await probe.call(client)

    assert client.token is None
    assert not leaks(str(caught.value), issued_secrets([sandbox]))
    assert sandbox.state.counters.requests[probe.route] == 0  # no call without a token

    assert await probe.call(client)  # the failure was not cached: this call logs in again
    assert sandbox.state.counters.requests[probe.login_route] == login_requests + 2
    assert sandbox.state.counters.requests[probe.route] == 1


# --- a POST is not replayed once it may have reached the server -----------------------------

ENRICH_ROUTE = "POST /api/enterprise/company/enrich/"


async def test_post_that_timed_out_is_not_replayed(lab: Lab) -> None:
    sandbox, client, _ = await lab.started("wokelo", timeout=0.2)
    await client.login()
    sandbox.state.faults.slow_next(1, 0.5)  # the server is working on it, slowly

    with pytest.raises(vendorkit.TimeoutError):
        await client.enrich_company("Acme AI")

    assert sandbox.state.counters.requests[ENRICH_ROUTE] == 1
    assert client.stats.retries == 0


async def test_post_marked_idempotent_is_replayed_after_a_timeout(lab: Lab) -> None:
    sandbox, client, _ = await lab.started("wokelo", timeout=0.2)
    await client.login()
    sandbox.state.faults.slow_next(1, 0.5)

    response = await client.request(
        "POST", "/api/enterprise/company/enrich/", json={"company": "Acme AI"}, idempotent=True
    )

    assert response.status == 202
    assert sandbox.state.counters.requests[ENRICH_ROUTE] == 2
    assert client.stats.retries == 1


@pytest.mark.parametrize("mid_body", [False, True], ids=["before_response", "mid_body"])
async def test_post_whose_connection_dropped_is_not_replayed(lab: Lab, mid_body: bool) -> None:
    sandbox, client, _ = await lab.started("wokelo")
    await client.login()
    sandbox.state.faults.drop_next(1, mid_body=mid_body)

    with pytest.raises(vendorkit.ConnectError) as caught:
        await client.enrich_company("Acme AI")

    assert caught.value.request_sent
    assert sandbox.state.counters.requests[ENRICH_ROUTE] == 1  # neither we nor aiohttp resent


async def test_post_answered_503_is_not_replayed(lab: Lab) -> None:
    sandbox, client, _ = await lab.started("wokelo")
    await client.login()
    sandbox.state.faults.fail_next(1, 503)

    with pytest.raises(vendorkit.ServerError):
        await client.enrich_company("Acme AI")

    assert sandbox.state.counters.requests[ENRICH_ROUTE] == 1


async def test_post_answered_429_is_replayed_because_the_server_did_not_process_it(
    lab: Lab,
) -> None:
    sandbox, client, _ = await lab.started("wokelo")
    await client.login()
    sandbox.state.faults.fail_next(1, 429, retry_after="0")

    status = await client.enrich_company("Acme AI")

    assert status.status == "PENDING"
    assert sandbox.state.counters.requests[ENRICH_ROUTE] == 2
