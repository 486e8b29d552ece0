"""What every vendor client shares: from_env, secrets kept out of sight, the escape hatch,
the token property, login() and logout()."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from vendorkit import (
    CambyoProClient,
    Cloud4WiClient,
    CloudCXClient,
    ConfigurationError,
    NotFoundError,
    VendorClient,
    WogeezClient,
    WokeloClient,
)
from vendorkit.sandbox import VENDORS, RunningSandbox
from vendorkit.testing import SandboxFactory
from vendorkit.vendors import CLIENTS

StartRecorder = Callable[[Mapping[tuple[str, str], Any]], Awaitable[Any]]

#: One protected GET per vendor, for the escape hatch.
PROBE = {
    "cloud4wi": "/v2/customers/organizations/cid-1",
    "wokelo": "/api/enterprise/company/search?query=a",
    "cloudcx": "/openapi/v2/user/page?pageIndex=1&pageSize=5",
    "cambyopro": "/api/v1/account",
    "wogeez": "/companies",
}
#: Whether the vendor documents a way to revoke a token.
REVOKES = {"cloud4wi": True, "wokelo": False, "cloudcx": False, "cambyopro": False,
           "wogeez": True}


def _environ(sandbox: RunningSandbox) -> dict[str, str]:
    env_name = CLIENTS[sandbox.vendor].env_name
    return {f"VENDORKIT_{env_name}_{name.upper()}": str(value)
            for name, value in sandbox.client_kwargs.items()}


def _secrets(client: VendorClient, sandbox: RunningSandbox) -> list[str]:
    token = client.token
    assert token is not None
    values = [v for k, v in sandbox.credentials.items()
              if k in ("client_secret", "password", "api_key")]
    return [*values, token.access_token, *([token.refresh_token] if token.refresh_token else [])]


@pytest.mark.parametrize("vendor", VENDORS)
async def test_from_env_builds_a_working_client(
    vendor: str, vendorkit_sandbox: SandboxFactory
) -> None:
    async with vendorkit_sandbox(vendor) as (_, sandbox):
        environ = _environ(sandbox)
        assert set(environ) <= set(CLIENTS[vendor].env_variables())
        async with CLIENTS[vendor].from_env(environ=environ) as client:
            response = await client.request("GET", PROBE[vendor])
        assert response.status == 200
        assert sandbox.state.counters.logins == 1


async def test_from_env_keyword_arguments_override_the_environment(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cambyopro") as (_, sandbox):
        environ = _environ(sandbox) | {"VENDORKIT_CAMBYOPRO_CLIENT_SECRET": "stale-secret"}
        client_secret = sandbox.credentials["client_secret"]
        async with CambyoProClient.from_env(environ=environ, client_secret=client_secret) as c:
            await c.login()
        assert sandbox.state.counters.failed_logins == 0


@pytest.mark.parametrize(("cls", "variable"), [
    (Cloud4WiClient, "VENDORKIT_CLOUD4WI_CLIENT_SECRET"),
    (WokeloClient, "VENDORKIT_WOKELO_PASSWORD"),
    (CloudCXClient, "VENDORKIT_CLOUDCX_BASE_URL"),
    (CambyoProClient, "VENDORKIT_CAMBYOPRO_CLIENT_ID"),
    (WogeezClient, "VENDORKIT_WOGEEZ_USERNAME"),
])
def test_from_env_names_the_missing_variable_and_no_value(
    cls: type[VendorClient], variable: str
) -> None:
    environ = {name: f"value-of-{name}" for name in cls.env_variables()}
    del environ[variable]
    environ.pop(f"VENDORKIT_{cls.env_name}_API_KEY", None)  # CloudCX: one mode only
    with pytest.raises(ConfigurationError) as caught:
        cls.from_env(environ=environ)
    assert variable in str(caught.value)
    assert "value-of-" not in str(caught.value)


def test_from_env_names_a_variable_only_one_mode_requires() -> None:
    environ = {"VENDORKIT_CLOUDCX_BASE_URL": "http://127.0.0.1:1",
               "VENDORKIT_CLOUDCX_CLIENT_ID": "cid", "VENDORKIT_CLOUDCX_CLIENT_SECRET": "s3cr3t",
               "VENDORKIT_CLOUDCX_USERNAME": "admin"}
    with pytest.raises(ConfigurationError) as caught:
        CloudCXClient.from_env(environ=environ)
    assert "VENDORKIT_CLOUDCX_PASSWORD" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(("make", "argument"), [
    (lambda: Cloud4WiClient("", "secret"), "client_key"),
    (lambda: WokeloClient("id", " ", "user", "pw"), "client_secret"),
    (lambda: CambyoProClient("id", ""), "client_secret"),
    (lambda: WogeezClient("user", ""), "password"),
])
def test_a_blank_credential_is_a_configuration_error_naming_the_argument(
    make: Callable[[], VendorClient], argument: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{argument} is required"):
        make()


@pytest.mark.parametrize("vendor", VENDORS)
async def test_secrets_appear_in_no_repr_and_no_log_line(
    vendor: str, vendorkit_sandbox: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vendorkit")
    async with vendorkit_sandbox(vendor) as (client, sandbox):
        await client.request("GET", PROBE[vendor])
        sandbox.state.revoke_all_tokens()
        await client.request("GET", PROBE[vendor])  # re-auth, logged
        secrets = _secrets(client, sandbox)
        shown = " ".join([repr(client), repr(client.session), repr(client.session.auth),
                          repr(client.token), repr(client.stats)])
    assert sandbox.base_url in repr(client)
    for secret in secrets:
        assert secret not in shown
        assert secret not in caplog.text
    assert "logging in again" in caplog.text  # the re-auth was logged, without the token


async def test_token_property_is_none_before_login_and_does_no_io(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, sandbox):
        assert client.token is None
        assert not sandbox.state.counters.requests
        token = await client.login()
        assert client.token == token
        assert sum(sandbox.state.counters.requests.values()) == 1


async def test_login_logs_in_now_and_again_when_called_again(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wokelo") as (client, sandbox):
        first = await client.login()
        second = await client.login()
        assert sandbox.state.counters.logins == 2
        assert client.stats.logins == 2
        assert first.access_token != second.access_token
        assert client.token == second
        await client.request("GET", PROBE["wokelo"])
        assert sandbox.state.counters.logins == 2  # calls use the token login() got


@pytest.mark.parametrize("vendor", VENDORS)
async def test_logout_revokes_where_the_vendor_documents_how_and_forgets_the_token(
    vendor: str, vendorkit_sandbox: SandboxFactory
) -> None:
    async with vendorkit_sandbox(vendor) as (client, sandbox):
        await client.request("GET", PROBE[vendor])
        assert await client.logout() is REVOKES[vendor]
        assert client.token is None
        assert sandbox.state.counters.logouts == int(REVOKES[vendor])
        await client.request("GET", PROBE[vendor])  # logs in again by itself
        assert sandbox.state.counters.logins == 2
        assert sandbox.state.counters.rejected == 0


async def test_escape_hatch_sends_params_and_json_with_the_token(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, _):
        page = await client.request("GET", "openapi/v2/user/page",
                                    params={"pageIndex": 3, "pageSize": 7})
        assert page.json()["data"]["pageIndex"] == 3
        assert len(page.json()["data"]["list"]) == 7
    async with vendorkit_sandbox("wokelo") as (client, _):
        started = await client.request("POST", "/api/enterprise/company/enrich/",
                                       json={"company": "Acme AI"})
        assert started.status == 202
        assert started.json()["status"] == "PENDING"


async def test_escape_hatch_raises_typed_errors(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, _):
        with pytest.raises(NotFoundError):
            await client.request("GET", "/v2/customers/organizations/missing")


async def test_escape_hatch_refuses_to_send_the_token_to_another_origin(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cambyopro") as (client, sandbox):
        same_origin = await client.request("GET", sandbox.base_url + PROBE["cambyopro"])
        assert same_origin.status == 200
        with pytest.raises(ConfigurationError):
            await client.request("GET", "http://127.0.0.1:9/api/v1/account")


async def test_escape_hatch_headers_are_sent_but_cannot_replace_the_token(
    recorder: StartRecorder,
) -> None:
    server = await recorder({("POST", "/api/no-auth/authentication/v1/login"): (
        200, {"success": True, "accessToken": "atk_real", "expiresIn": 60})})
    async with CambyoProClient("id", "secret", base_url=server.base_url) as client:
        await client.request("GET", "/x", headers={"X-Trace": "t-1",
                                                   "Authorization": "Bearer forged"})
    [seen] = server.find("GET", "/x")
    assert seen.headers["X-Trace"] == "t-1"
    assert seen.headers["Authorization"] == "Bearer atk_real"
