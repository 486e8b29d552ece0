"""``client.with_options()``: light views with their own timeout, retries and rate limiting,
sharing the client's session, and keeping the raw ``Response`` of their latest call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import FAST_RETRY
from tests.toy import Toy, oauth2_grant
from vendorkit import (
    ConfigurationError,
    Event,
    RateLimit,
    RetryPolicy,
    ServerError,
    TimeoutError,
)
from vendorkit.client import VendorClient


class ToyClient(VendorClient):
    """The toy as a vendor module would declare it: one typed endpoint method."""

    env_name = "TOY"

    def __init__(self, toy: Toy, **options: Any) -> None:
        options.setdefault("retry", FAST_RETRY)
        super().__init__(toy.base_url, oauth2_grant(toy), **options)

    async def get_data(self, *, delay: float = 0.0) -> dict[str, Any]:
        response = await self.request("GET", "/data", params={"delay": str(delay)})
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture
async def client(toy: Toy) -> AsyncIterator[ToyClient]:
    """A client whose own timeout (0.3 s) is too short for the toy's slow answers."""
    async with ToyClient(toy, timeout=0.3, retry=RetryPolicy.never()) as made:
        yield made


async def test_a_view_with_a_long_timeout_outlasts_the_clients_short_one(
    client: ToyClient, toy: Toy
) -> None:
    with pytest.raises(TimeoutError):
        await client.get_data(delay=0.6)

    data = await client.with_options(timeout=5).get_data(delay=0.6)

    assert data["ok"] is True
    assert toy.counters.logins == 1  # one login, shared by the client and its view


async def test_a_view_with_a_short_timeout_leaves_the_client_its_own(toy: Toy) -> None:
    async with ToyClient(toy, timeout=5, retry=RetryPolicy.never()) as patient:
        with pytest.raises(TimeoutError):
            await patient.with_options(timeout=0.2).get_data(delay=0.6)

        assert (await patient.get_data(delay=0.6))["ok"] is True


async def test_views_share_the_session_token_and_connections(
    client: ToyClient, toy: Toy
) -> None:
    views = [client.with_options(timeout=5) for _ in range(3)]

    results = await asyncio.gather(client.get_data(), *(view.get_data() for view in views))

    assert all(view.session is client.session for view in views)
    assert {result["generation"] for result in results} == {1}
    assert toy.counters.logins == 1
    assert all(view.token == client.token for view in views)
    assert client.stats.requests == 1 + 4  # one set of counters: the login, the four calls


async def test_closing_a_view_leaves_the_client_open_and_logged_in(
    client: ToyClient, toy: Toy
) -> None:
    async with client.with_options(timeout=5) as view:
        await view.get_data()
    await view.aclose()

    assert (await client.get_data())["generation"] == 1
    assert (toy.counters.logins, toy.counters.revocations) == (1, 0)


async def test_a_views_retry_policy_applies_to_its_calls_only(
    client: ToyClient, toy: Toy
) -> None:
    toy.answer_next(1, status=503)
    with pytest.raises(ServerError):
        await client.get_data()  # RetryPolicy.never(): the first 503 is final

    toy.answer_next(2, status=503)
    data = await client.with_options(retry=FAST_RETRY).get_data()

    assert data["ok"] is True
    assert toy.counters.requests["GET /data"] == 1 + 3
    assert client.stats.retries == 2


async def test_a_view_of_a_view_keeps_the_options_it_does_not_change(
    client: ToyClient, toy: Toy
) -> None:
    patient = client.with_options(timeout=5)
    toy.answer_next(1, status=503)

    data = await patient.with_options(retry=FAST_RETRY).get_data(delay=0.6)

    assert data["ok"] is True  # the timeout of the first view, the retries of the second
    assert toy.counters.requests["GET /data"] == 2


async def test_rate_limit_false_lets_a_views_calls_skip_the_clients_limiter(toy: Toy) -> None:
    waits: list[Event] = []
    async with ToyClient(toy, rate_limit=RateLimit(2, per=1.0),
                         event_hooks={"wait": [waits.append]}) as limited:
        await limited.get_data()
        before = len(waits)
        started = time.monotonic()
        await asyncio.gather(*(limited.with_options(rate_limit=False).get_data()
                               for _ in range(4)))
        unlimited = time.monotonic() - started
        after_views = len(waits)
        await limited.get_data()  # the client itself still waits its turn

    assert unlimited < 0.4  # four calls at 2 a second would take 1.5 s
    assert after_views == before  # not one of them waited for a permit
    assert len(waits) == before + 1 and (waits[-1].delay or 0) > 0.2
    assert toy.counters.requests["GET /data"] == 6


async def test_last_response_hands_back_the_raw_response_of_a_typed_call(
    client: ToyClient,
) -> None:
    view = client.with_options()

    data = await view.get_data()

    assert view.last_response is not None
    assert view.last_response.request_id == "req-ok"
    assert view.last_response.json() == data
    assert view.last_response.headers["Content-Type"].startswith("application/json")
    assert client.last_response is None  # the shared client keeps none


async def test_each_view_keeps_its_own_last_response(client: ToyClient) -> None:
    first, second = client.with_options(), client.with_options()

    await asyncio.gather(
        first.request("GET", "/data", headers={"X-Call": "first"}),
        second.request("GET", "/data", headers={"X-Call": "second"}),
    )

    assert first.last_response is not None and second.last_response is not None
    assert first.last_response.json()["headers"]["X-Call"] == "first"
    assert second.last_response.json()["headers"]["X-Call"] == "second"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"connect_timeout": -1}, "connect_timeout must be a positive number"),
        ({"retry": 3}, "retry must be a RetryPolicy"),
        ({"rate_limit": RateLimit(5)}, "takes True or False"),
    ],
)
async def test_with_options_rejects_a_bad_option_naming_it(
    client: ToyClient, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        client.with_options(**options)


async def test_rate_limit_true_needs_a_client_that_has_a_limiter(toy: Toy) -> None:
    async with ToyClient(toy, rate_limit=False) as unlimited:
        with pytest.raises(ConfigurationError, match="no limiter to share"):
            unlimited.with_options(rate_limit=True)
