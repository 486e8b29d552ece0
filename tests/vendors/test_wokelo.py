"""WokeloClient against the Wokelo sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import vendorkit
from vendorkit import AuthenticationError, BadRequestError, Token
from vendorkit.testing import SandboxFactory
from vendorkit.vendors.wokelo import Company, CompanySearch, RequestResult, RequestStatus

TOKEN_PATH = "/auth/token/"
ENRICH_PATH = "/api/enterprise/company/enrich/"
Renewal = Callable[[Token | None], Awaitable[None]]
StartRecorder = Callable[[Mapping[tuple[str, str], Any]], Awaitable[Any]]


def _password_grant(credentials: dict[str, str]) -> dict[str, str]:
    return {"grant_type": "password", **credentials}


async def test_login_is_accepted_and_returns_a_refreshable_token(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, sandbox):
        token = await client.login()
        assert (sandbox.state.counters.logins, sandbox.state.counters.failed_logins) == (1, 0)
        assert token.refresh_token
        assert token.scope == "read write"
        assert token.expires_at == pytest.approx(time.time() + 2_628_288, abs=5)


async def test_sandbox_refuses_a_token_request_that_is_not_multipart(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("wokelo") as (_, sandbox):
        url, fields = sandbox.base_url + TOKEN_PATH, _password_grant(sandbox.credentials)
        async with raw_http.post(url, json=fields) as as_json:
            assert as_json.status == 400
            assert await as_json.json() == {"error": "unsupported_grant_type"}
        async with raw_http.post(url, data=fields) as urlencoded:
            assert urlencoded.status == 400
        multipart = aiohttp.FormData(fields, default_to_multipart=True)
        async with raw_http.post(url, data=multipart) as documented:
            assert documented.status == 200
        assert sandbox.state.counters.logins == 1


async def test_company_search_is_typed(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("wokelo") as (client, _):
        found = await client.search_companies("ai")
        assert isinstance(found, CompanySearch)
        assert found.status == "success"
        assert found.count == len(found.data) > 0
        for company in found.data:
            assert isinstance(company, Company)
            assert "ai" in company.name.lower()
            assert company.permalink and company.domain and company.hq
            assert company.industries and isinstance(company.founded_year, int)
            assert company.ipo_status in ("public", "private")
            assert company.extra == {}  # every documented field is typed


async def test_company_search_options_reach_the_server(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("wokelo") as (client, _):
        public = await client.search_companies("a", company_type="public")
        assert public.data and {c.ipo_status for c in public.data} == {"public"}
        by_domain = await client.search_companies(".com", search_by="domain")
        assert by_domain.count == 60  # every seeded domain ends in .com; no name contains it
        assert (await client.search_companies(".com")).count == 0


async def test_enrichment_completes_and_its_result_carries_the_data(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, _):
        company = (await client.search_companies("a")).data[0]
        started = await client.enrich_company(company.name)
        assert isinstance(started, RequestStatus)
        assert (started.status, started.done) == ("PENDING", False)

        finished = await client.wait_for_request(started.request_id, poll_interval=0.05,
                                                 timeout=5)
        result = await client.get_request_result(started.request_id)

        assert (finished.status, finished.done) == ("COMPLETED", True)
        assert isinstance(result, RequestResult)
        assert (result.request_id, result.status) == (started.request_id, "COMPLETED")
        assert result.data is not None
        assert result.data["name"] == company.name
        assert result.data["domain"] == company.domain
        assert len(result.data["competitors"]) == 3


async def test_an_enrichment_answer_that_does_not_fit_keeps_the_created_jobs_id(
    recorder: StartRecorder,
) -> None:
    # The job exists server-side once the POST is answered: its id must not be lost.
    started = {"requestId": "req-7Hq2", "status": "PENDING"}  # camelCase, not request_id
    server = await recorder({
        ("POST", TOKEN_PATH): (200, {"access_token": "wk-at", "token_type": "Bearer",
                                     "expires_in": 3600, "refresh_token": "wk-rt"}),
        ("POST", ENRICH_PATH): (200, started),
    })
    async with vendorkit.WokeloClient("cid", "csecret", "me@example.com", "pw",
                                      base_url=server.base_url) as client:
        with pytest.raises(vendorkit.ResponseParseError) as caught:
            await client.enrich_company("acme.com")

    error = caught.value
    assert error.response is not None
    assert (error.response.status, error.response.method) == (200, "POST")
    assert error.response.json()["requestId"] == "req-7Hq2"
    assert error.response.headers["Content-Type"].startswith("application/json")
    assert (error.model, error.field) == ("RequestStatus", "request_id")
    assert "RequestStatus.request_id" in str(error)
    assert len(server.find("POST", ENRICH_PATH)) == 1  # a POST is never replayed: one job


async def test_a_400_naming_the_content_type_switches_the_login_to_json_for_good(
    recorder: StartRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    # The seed's curl sends JSON; a server that takes only that may refuse multipart with
    # a 400 whose reason names the content type (DRF's words), not a 415.
    token = {"access_token": "wk-at", "token_type": "Bearer", "expires_in": 3600,
             "refresh_token": "wk-rt"}

    async def json_only(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return web.json_response(
                {"detail": f'Unsupported media type "{request.content_type}" in request.'},
                status=400,
            )
        return web.json_response(token)

    server = await recorder({("POST", TOKEN_PATH): json_only})
    caplog.set_level(logging.INFO, logger="vendorkit")
    async with vendorkit.WokeloClient("cid", "csecret", "me@example.com", "pw-Zk3",
                                      base_url=server.base_url) as client:
        assert (await client.login()).access_token == "wk-at"
        assert (await client.login()).access_token == "wk-at"  # a later login goes as JSON at once

    sent = [r.content_type for r in server.find("POST", TOKEN_PATH)]
    assert sent == ["multipart/form-data", "application/json", "application/json"]
    assert server.find("POST", TOKEN_PATH)[1].fields["password"] == "pw-Zk3"
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("json" in line and "multipart" in line for line in said), said
    assert not any("pw-Zk3" in line or "csecret" in line for line in said)


async def test_enrichment_of_a_failing_company_ends_failed_without_data(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, _):
        started = await client.enrich_company("fail-me")
        finished = await client.wait_for_request(started.request_id, poll_interval=0.05,
                                                 timeout=5)
        result = await client.get_request_result(started.request_id)
        assert (finished.status, finished.done) == ("FAILED", True)
        assert (result.status, result.data) == ("FAILED", None)
        assert "fail-me" in result.extra["message"]


async def test_result_of_an_unfinished_request_is_a_bad_request(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, _):
        started = await client.enrich_company("Acme AI")
        with pytest.raises(BadRequestError) as caught:
            await client.get_request_result(started.request_id)
        assert caught.value.status == 409
        assert "Request not completed" in str(caught.value)


async def test_waiting_past_the_timeout_raises_vendorkit_timeout_error(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, _):
        started = await client.enrich_company("Acme AI")
        began = time.monotonic()
        with pytest.raises(vendorkit.TimeoutError) as caught:
            await client.wait_for_request(started.request_id, poll_interval=0.05, timeout=0.01)
        assert time.monotonic() - began < 1
        assert isinstance(caught.value, builtins.TimeoutError)
        assert started.request_id in str(caught.value) and "PENDING" in str(caught.value)


async def test_short_lived_token_is_refreshed_and_the_rotated_refresh_token_kept(
    vendorkit_sandbox: SandboxFactory, until_renewal: Renewal, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("wokelo", token_lifetime=2) as (client, sandbox):
        await client.search_companies("a")
        first = client.token
        await until_renewal(first)
        await client.search_companies("a")
        second = client.token
        await until_renewal(second)
        await client.search_companies("a")

        counters = sandbox.state.counters
        assert (counters.logins, counters.refreshes, counters.failed_logins) == (1, 2, 0)
        assert first is not None and second is not None and client.token is not None
        assert len({first.refresh_token, second.refresh_token, client.token.refresh_token}) == 3
        # Like Django OAuth Toolkit, rotation revoked the access token it replaced.
        url = f"{sandbox.base_url}/api/enterprise/company/search?query=a"
        headers = {"Authorization": f"Bearer {first.access_token}"}
        async with raw_http.get(url, headers=headers) as answer:
            assert answer.status == 401


async def test_mass_revocation_mid_run_costs_one_relogin_and_every_call_succeeds(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, sandbox):
        await client.search_companies("a")
        sandbox.state.revoke_all_tokens()
        results = await asyncio.gather(*(client.search_companies("a") for _ in range(10)))
        assert all(r.count for r in results)
        assert sandbox.state.counters.logins == 2


async def test_logout_sends_nothing_because_wokelo_documents_no_revocation(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, sandbox):
        await client.search_companies("a")
        token = client.token
        assert token is not None
        before = dict(sandbox.state.counters.requests)

        assert await client.logout() is False
        await client.aclose()

        assert dict(sandbox.state.counters.requests) == before
        assert client.token is None
        # As documented, the token stays valid at Wokelo until it expires.
        url = f"{sandbox.base_url}/api/enterprise/company/search?query=a"
        headers = {"Authorization": f"Bearer {token.access_token}"}
        async with raw_http.get(url, headers=headers) as answer:
            assert answer.status == 200


async def test_wrong_password_raises_authentication_error_with_reason_and_no_secret(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    wrong = "pw_wrong_Tq8zLm3Vx5Rk"
    async with vendorkit_sandbox("wokelo", password=wrong) as (client, sandbox):
        with pytest.raises(AuthenticationError) as caught:
            await client.search_companies("a")
        assert not isinstance(caught.value, vendorkit.InvalidGrantError)  # a login, not a refresh
        assert caught.value.status == 400
        assert "Invalid credentials given." in str(caught.value)
        assert wrong not in str(caught.value)
        assert sandbox.credentials["client_secret"] not in str(caught.value)
        assert sandbox.state.counters.failed_logins == 1


async def test_wrong_client_secret_raises_authentication_error(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    wrong = "cs_wrong_Hn4wQ7pZ2kLs"
    async with vendorkit_sandbox("wokelo", client_secret=wrong) as (client, _):
        with pytest.raises(AuthenticationError) as caught:
            await client.login()
        assert caught.value.status == 401
        assert "invalid_client" in str(caught.value)
        assert wrong not in str(caught.value)


async def test_replay_with_a_token_revoked_since_gets_one_more_login(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    # A call is rejected with token T1; meanwhile a refresh replaced it with T2, and a mass
    # revocation killed T2 as well. The replay with T2 is refused too, yet the credentials
    # are fine: one more login is owed, not an AuthenticationError.
    async with vendorkit_sandbox("wokelo", token_lifetime=2) as (client, sandbox):
        await client.search_companies("a")
        await asyncio.sleep(0.8)
        sandbox.state.faults.slow_next(1, 0.4)
        slow_call = asyncio.create_task(client.search_companies("a"))
        await asyncio.sleep(0.3)
        await client.search_companies("a")  # the advisory refresh: T2, and T1 revoked
        await asyncio.sleep(0.05)
        sandbox.state.revoke_all_tokens()  # T2 too
        result = await slow_call
        assert result.status == "success"
        # The slow call was re-authed twice (T1, then T2); the refreshing call may add one
        # of its own when the refresh revokes T1 under it.
        assert client.stats.reauths >= 2
        assert sandbox.state.counters.logins == 2
