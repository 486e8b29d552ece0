"""CloudCXClient against the CloudCX sandbox (and tiny servers), over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from vendorkit import AuthenticationError, CloudCXClient, ConfigurationError, Token
from vendorkit.testing import SandboxFactory
from vendorkit.vendors.cloudcx import User

TOKEN_PATH = "/oauth/token"
USERS_PATH = "/openapi/v2/user/page"
USERS_ROUTE = f"GET {USERS_PATH}"
Renewal = Callable[[Token | None], Awaitable[None]]
StartRecorder = Callable[[Mapping[tuple[str, str], Any]], Awaitable[Any]]
PAGE = {"code": 0, "msg": "success",
        "data": {"total": 1, "pageIndex": 1, "pageSize": 25, "list": [{"id": "1"}]}}


async def test_login_is_accepted_and_returns_a_refreshable_token(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx", variants="refresh-token") as (client, sandbox):
        token = await client.login()
        assert (sandbox.state.counters.logins, sandbox.state.counters.failed_logins) == (1, 0)
        assert token.refresh_token and token.scope == "openapi"
        assert token.lifetime == 3599


async def test_sandbox_refuses_a_token_request_that_is_not_urlencoded(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("cloudcx") as (_, sandbox):
        creds = sandbox.credentials
        fields = {"grant_type": "password", **{k: creds[k] for k in (
            "client_id", "client_secret", "username", "password")}}
        url = sandbox.base_url + TOKEN_PATH
        async with raw_http.post(url, json=fields) as as_json:
            assert as_json.status == 400
            assert (await as_json.json())["error"] == "invalid_request"
        multipart = aiohttp.FormData(fields, default_to_multipart=True)
        async with raw_http.post(url, data=multipart) as as_multipart:
            assert as_multipart.status == 400
        async with raw_http.post(url, data=fields) as documented:
            assert documented.status == 200


async def test_user_page_is_typed_and_unknown_fields_land_in_extra(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, _):
        page = await client.get_user_page(page_index=2, page_size=25)
        assert (page.total, page.page_index, page.page_size, page.has_next) == (2500, 2, 25, True)
        assert len(page) == 25
        for user in page.items:
            assert isinstance(user, User)
            assert user.id and user.user_name and user.display_name and user.create_time
            assert user.email == f"{user.user_name}@cloudcx.test"
            assert user.extension_number is not None and user.extension_number.isdigit()
            assert user.status in ("0", "1")
            assert set(user.extra) == {"role"}
        assert page.items[0].extension_number == "1026"  # page 2 starts at user 26


async def test_last_page_says_there_is_no_next_page(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, _):
        page = await client.get_user_page(page_index=13, page_size=200)
        assert (len(page), page.has_next) == (100, False)


async def test_iter_users_yields_all_2500_users_exactly_once(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, sandbox):
        ids = [user.id async for user in client.iter_users(page_size=200)]
        assert len(ids) == 2500
        assert len(set(ids)) == 2500
        assert sandbox.state.counters.requests[USERS_ROUTE] == 13  # ceil(2500 / 200), no more


async def test_iter_user_pages_resumes_from_a_given_page(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, _):
        indexes = [page.page_index async for page in client.iter_user_pages(
            page_size=200, start=12)]
        assert indexes == [12, 13]


async def test_keywords_filter_users_on_the_server(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, _):
        page = await client.get_user_page(page_size=200, keywords="silva")
        assert page.total is not None and 0 < page.total < 2500
        matched = [user async for user in client.iter_users(keywords="silva", page_size=50)]
        assert len(matched) == page.total
        for user in matched:
            assert "silva" in f"{user.user_name} {user.display_name} {user.email}".lower()


def _capped_user_pages(
    count: int, cap: int, *, says_its_page_size: bool, asked: list[tuple[int, int]]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A CloudCX user listing that serves at most ``cap`` users a page, whatever is asked."""

    async def answer(request: web.Request) -> web.Response:
        index, size = int(request.query["pageIndex"]), int(request.query["pageSize"])
        asked.append((index, size))
        served = min(size, cap)
        first = (index - 1) * served + 1
        data: dict[str, Any] = {"total": count, "pageIndex": index, "list": [
            {"id": str(i), "userName": f"user{i}"}
            for i in range(first, min(first + served, count + 1))]}
        if says_its_page_size:
            data["pageSize"] = served
        return web.json_response({"code": 0, "msg": "success", "data": data})

    return answer


@pytest.mark.parametrize("says_its_page_size", [True, False], ids=["says-so", "silently"])
async def test_a_server_capping_pages_at_50_still_yields_all_137_users_exactly_once(
    recorder: StartRecorder, says_its_page_size: bool
) -> None:
    asked: list[tuple[int, int]] = []
    server = await recorder({("GET", USERS_PATH): _capped_user_pages(
        137, 50, says_its_page_size=says_its_page_size, asked=asked)})
    async with CloudCXClient(server.base_url, api_key="cxk_test_Jd8w") as client:
        ids = [user.id async for user in client.iter_users(page_size=100)]
        first = await client.get_user_page(page_index=1, page_size=100)
    assert ids == [str(i) for i in range(1, 138)]
    assert asked[:3] == [(1, 100), (2, 50), (3, 50)]  # pages line up in the server's size
    assert (first.page_size, first.has_next, first.total) == (50, True, 137)


async def test_short_lived_token_is_refreshed_not_logged_in_again(
    vendorkit_sandbox: SandboxFactory, until_renewal: Renewal
) -> None:
    async with vendorkit_sandbox("cloudcx", token_lifetime=2, variants="refresh-token") as (
            client, sandbox):
        await client.get_user_page()
        first = client.token
        await until_renewal(first)
        await client.get_user_page()
        counters = sandbox.state.counters
        assert (counters.logins, counters.refreshes, counters.rejected) == (1, 1, 0)
        assert client.stats.refreshes == 1
        assert client.token is not None and first is not None
        assert client.token.access_token != first.access_token


async def test_mass_revocation_mid_run_costs_one_relogin_and_every_call_succeeds(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, sandbox):
        await client.get_user_page()
        sandbox.state.revoke_all_tokens()
        pages = await asyncio.gather(*(client.get_user_page(page_index=i) for i in range(1, 11)))
        assert [p.page_index for p in pages] == list(range(1, 11))
        assert sandbox.state.counters.logins == 2


async def test_close_sends_nothing_because_cloudcx_documents_no_revocation(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, sandbox):
        await client.get_user_page()
        before = dict(sandbox.state.counters.requests)
        assert await client.logout() is False
        await client.aclose()
        assert dict(sandbox.state.counters.requests) == before


async def test_wrong_password_raises_authentication_error_with_reason_and_no_secret(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    wrong = "pw_wrong_Rv9kQ2mX7tLp"
    async with vendorkit_sandbox("cloudcx", password=wrong) as (client, sandbox):
        with pytest.raises(AuthenticationError) as caught:
            await client.get_user_page()
        assert caught.value.status == 400
        assert "Bad credentials" in str(caught.value)
        assert wrong not in str(caught.value)
        assert sandbox.state.counters.failed_logins == 1


async def test_api_key_mode_sends_the_key_as_bearer_and_never_logs_in(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx") as (_, sandbox):
        key = sandbox.credentials["api_key"]
        async with CloudCXClient(sandbox.base_url, api_key=key) as client:
            users = [user async for user in client.iter_users(page_size=200)]
            assert len(users) == 2500
            assert client.token is not None and client.token.access_token == key
            assert await client.login() == client.token  # nothing to log in to
            assert await client.logout() is False
        counters = sandbox.state.counters
        assert f"POST {TOKEN_PATH}" not in counters.requests
        assert (counters.logins, counters.rejected) == (0, 0)
        assert counters.requests[USERS_ROUTE] == 13


async def test_api_key_header_is_exactly_authorization_bearer_key(recorder: StartRecorder) -> None:
    server = await recorder({("GET", USERS_PATH): (200, PAGE)})
    async with CloudCXClient(server.base_url, api_key="cxk_test_Jd8w") as client:
        await client.get_user_page()
    [seen] = server.requests
    assert seen.headers["Authorization"] == "Bearer cxk_test_Jd8w"


async def test_a_custom_api_key_header_carries_the_bare_key(recorder: StartRecorder) -> None:
    server = await recorder({("GET", USERS_PATH): (200, PAGE)})
    async with CloudCXClient(server.base_url, api_key="cxk_test_Jd8w",
                             api_key_header="X-API-Key", api_key_scheme="") as client:
        page = await client.get_user_page()
    assert page.total == 1
    [seen] = server.requests
    assert seen.headers["X-API-Key"] == "cxk_test_Jd8w"
    assert "Authorization" not in seen.headers


async def test_a_wrong_api_key_raises_authentication_error_without_the_key(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx") as (_, sandbox):
        wrong = "cxk_wrong_Bt5nW2qLz8"
        async with CloudCXClient(sandbox.base_url, api_key=wrong) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.get_user_page()
        assert caught.value.status == 401
        assert wrong not in str(caught.value)
        assert sandbox.state.counters.logins == 0


def test_configuring_both_modes_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="exactly one mode"):
        CloudCXClient("http://127.0.0.1:1", api_key="k", client_id="c", client_secret="s",
                      username="u", password="p")


def test_configuring_neither_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="configure api_key, or client_id"):
        CloudCXClient("http://127.0.0.1:1")


def test_a_half_configured_oauth_mode_names_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match=r"^password is required") as caught:
        CloudCXClient("http://127.0.0.1:1", client_id="c", client_secret="s3cret-value",
                      username="u")
    assert "s3cret-value" not in str(caught.value)
