"""CambyoProClient against the CambyoPro sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from vendorkit import AuthenticationError, Token, TokenResponseError
from vendorkit.testing import SandboxFactory

LOGIN = "/api/no-auth/authentication/v1/login"
ACCOUNT = "/api/v1/account"  # sandbox-only: CambyoPro documents nothing beyond login
Renewal = Callable[[Token | None], Awaitable[None]]


async def test_camel_case_token_is_parsed_and_expires_in_honoured(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cambyopro", token_lifetime=2) as (client, sandbox):
        token = await client.login()
        assert sandbox.state.counters.logins == 1
        assert token.access_token.startswith("atk_")
        assert token.token_type == "Bearer"
        assert token.refresh_token is None
        assert token.expires_at == pytest.approx(time.time() + 2, abs=0.5)


async def test_sandbox_refuses_login_shapes_other_than_the_documented_json(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("cambyopro") as (_, sandbox):
        url, creds = sandbox.base_url + LOGIN, sandbox.credentials
        documented = {"clientId": creds["client_id"], "clientSecret": creds["client_secret"]}
        async with raw_http.post(url, data=documented) as form:
            assert form.status == 415
        snake = {"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
        async with raw_http.post(url, json=snake) as wrong_names:
            assert wrong_names.status == 400
            assert (await wrong_names.json())["success"] is False
        async with raw_http.post(url, json=documented) as right:
            assert right.status == 200
            assert (await right.json())["success"] is True


async def test_escape_hatch_request_carries_the_bearer_token(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cambyopro") as (client, sandbox):
        response = await client.request("GET", ACCOUNT)
        assert response.status == 200
        assert response.json()["clientId"] == sandbox.credentials["client_id"]
        assert sandbox.state.counters.rejected == 0


async def test_invalid_credentials_raise_authentication_error_quoting_the_server(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    wrong = "cbp_wrong_Xe4rT9uWq2Zs"
    async with vendorkit_sandbox("cambyopro", client_secret=wrong) as (client, sandbox):
        with pytest.raises(AuthenticationError) as caught:
            await client.request("GET", ACCOUNT)
        assert caught.value.status == 401
        assert "Invalid credentials." in str(caught.value)
        assert wrong not in str(caught.value)
        assert sandbox.state.counters.failed_logins == 1


async def test_success_false_with_status_200_is_a_token_response_error(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cambyopro") as (client, sandbox):
        body = '{"success": false, "message": "Client disabled."}'
        sandbox.state.faults.fail_next(1, 200, target="auth", body=body)
        with pytest.raises(TokenResponseError, match="success=false"):
            await client.login()
        assert client.token is None


async def test_short_lived_token_is_replaced_by_a_new_login(
    vendorkit_sandbox: SandboxFactory, until_renewal: Renewal
) -> None:
    async with vendorkit_sandbox("cambyopro", token_lifetime=2) as (client, sandbox):
        await client.request("GET", ACCOUNT)
        first = client.token
        await until_renewal(first)
        await client.request("GET", ACCOUNT)
        counters = sandbox.state.counters
        assert (counters.logins, counters.refreshes, counters.rejected) == (2, 0, 0)
        assert client.token is not None and first is not None
        assert client.token.access_token != first.access_token


async def test_mass_revocation_mid_run_costs_one_relogin_and_every_call_succeeds(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cambyopro") as (client, sandbox):
        await client.request("GET", ACCOUNT)
        sandbox.state.revoke_all_tokens()
        answers = await asyncio.gather(*(client.request("GET", ACCOUNT) for _ in range(10)))
        assert {a.status for a in answers} == {200}
        assert sandbox.state.counters.logins == 2


async def test_logout_sends_nothing_because_cambyopro_documents_no_logout(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cambyopro") as (client, sandbox):
        await client.request("GET", ACCOUNT)
        before = dict(sandbox.state.counters.requests)
        assert await client.logout() is False
        assert client.token is None
        await client.aclose()
        assert dict(sandbox.state.counters.requests) == before
