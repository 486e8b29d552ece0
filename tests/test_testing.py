"""vendorkit's pytest plugin, used the way a user's test suite uses it."""

from __future__ import annotations

import asyncio
import textwrap
import time

import pytest

from vendorkit import (
    CambyoProClient,
    Cloud4WiClient,
    CloudCXClient,
    ConnectError,
    WogeezClient,
    WokeloClient,
)
from vendorkit.sandbox import VENDORS, Quota
from vendorkit.testing import SandboxClient, SandboxFactory, SandboxThreadFactory
from vendorkit.vendors import CLIENTS

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("vendor", VENDORS)
async def test_vendorkit_sandbox_hands_back_a_client_configured_for_the_sandbox(
    vendor: str, vendorkit_sandbox: SandboxFactory
) -> None:
    async with vendorkit_sandbox(vendor) as (client, sandbox):
        assert type(client) is CLIENTS[vendor]
        assert sandbox.vendor == vendor
        assert sandbox.base_url.startswith("http://127.0.0.1:")
        await client.login()
        assert sandbox.state.counters.logins == 1


async def test_vendorkit_sandbox_splits_sandbox_options_from_client_options(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    secret = "user-chosen-secret-Rt5x"
    async with vendorkit_sandbox("cambyopro", token_lifetime=2, credentials={
            "client_secret": secret}, timeout=5) as (client, sandbox):
        token = await client.login()
        assert token.expires_at == pytest.approx(time.time() + 2, abs=0.5)
        assert sandbox.credentials["client_secret"] == secret


async def test_vendorkit_sandbox_closes_the_client_then_stops_the_sandbox(
    vendorkit_sandbox: SandboxFactory, vendorkit_fast_retries: None
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, sandbox):
        await client.get_organizations("cid-1")
    assert sandbox.state.counters.logouts == 1  # the client logged out while the sandbox ran
    assert client.token is None
    with pytest.raises(ConnectError):
        await client.get_organizations("cid-1")
    await client.aclose()


async def test_vendorkit_sandbox_serves_the_variants_it_is_asked_for(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloudcx", variants="refresh-token") as (client, sandbox):
        assert sandbox.state.variants == ("refresh-token",)
        assert (await client.login()).refresh_token  # the seed's answer has none
    async with vendorkit_sandbox("cloudcx") as (client, sandbox):
        assert sandbox.state.variants == ()
        assert (await client.login()).refresh_token is None
    with pytest.raises(ValueError, match="unknown cloudcx variant 'nope'"):
        async with vendorkit_sandbox("cloudcx", variants=["nope"]):
            pass


@pytest.mark.vendorkit_variant("capped-page", "spring-envelope")
async def test_per_vendor_fixtures_take_variants_from_a_marker(
    cloudcx_sandbox_client: SandboxClient[CloudCXClient],
) -> None:
    client, sandbox = cloudcx_sandbox_client
    assert sandbox.state.variants == ("capped-page", "spring-envelope")
    answer = await client.request("GET", "/openapi/v2/user/page", params={"pageSize": 100})
    assert (answer.json()["size"], len(answer.json()["content"])) == (50, 50)


def test_vendorkit_sandbox_thread_serves_variants_and_a_quota(
    vendorkit_sandbox_thread: SandboxThreadFactory,
) -> None:
    client, sandbox = vendorkit_sandbox_thread(
        "cloudcx", variants=["refresh-token"], quota=Quota(rate=0.5, burst=1))
    assert asyncio.run(client.login()).refresh_token
    assert sandbox.state.variants == ("refresh-token",)
    assert sandbox.state.quota == Quota(rate=0.5, burst=1)


async def test_per_vendor_fixtures_are_ready_to_call(
    cloud4wi_sandbox_client: SandboxClient[Cloud4WiClient],
    wokelo_sandbox_client: SandboxClient[WokeloClient],
    cloudcx_sandbox_client: SandboxClient[CloudCXClient],
    cambyopro_sandbox_client: SandboxClient[CambyoProClient],
    wogeez_sandbox_client: SandboxClient[WogeezClient],
) -> None:
    assert await cloud4wi_sandbox_client.client.get_organizations("cid-1")
    assert (await wokelo_sandbox_client.client.search_companies("a")).count
    assert (await cloudcx_sandbox_client.client.get_user_page()).total == 2500
    account = await cambyopro_sandbox_client.client.request("GET", "/api/v1/account")
    assert account.status == 200
    client, sandbox = wogeez_sandbox_client
    assert (await client.list_companies()).total == 300
    assert sandbox.state.counters.logins == 1


def test_vendorkit_sandbox_thread_serves_a_synchronous_test(
    vendorkit_sandbox_thread: SandboxThreadFactory,
) -> None:
    client, sandbox = vendorkit_sandbox_thread("wokelo", token_lifetime=60)
    found = asyncio.run(client.search_companies("a"))
    assert found.count
    assert isinstance(client, WokeloClient)
    assert sandbox.state.counters.logins == 1


async def test_vendorkit_fast_retries_skips_a_retry_after_wait(
    vendorkit_sandbox: SandboxFactory, vendorkit_fast_retries: None
) -> None:
    async with vendorkit_sandbox("cloudcx") as (client, sandbox):
        await client.login()
        sandbox.state.faults.fail_next(1, 503, retry_after="30")
        began = time.monotonic()
        page = await client.get_user_page()
        assert page.total == 2500
        assert time.monotonic() - began < 5
        assert client.stats.retries == 1


USER_TESTS = """
    import asyncio

    import pytest


    @pytest.mark.asyncio
    async def test_fixture(cloud4wi_sandbox_client):
        client, sandbox = cloud4wi_sandbox_client
        assert await client.get_organizations("cid-1")


    @pytest.mark.asyncio
    async def test_factory(vendorkit_sandbox):
        async with vendorkit_sandbox("cambyopro") as (client, sandbox):
            assert (await client.request("GET", "/api/v1/account")).status == 200


    def test_thread(vendorkit_sandbox_thread):
        client, sandbox = vendorkit_sandbox_thread("cloudcx")
        assert asyncio.run(client.get_user_page()).total == 2500


    @pytest.mark.asyncio
    @pytest.mark.vendorkit_variant("refresh-token")
    async def test_variant_marker(cloudcx_sandbox_client):
        client, sandbox = cloudcx_sandbox_client
        assert sandbox.state.variants == ("refresh-token",)
"""


def test_plugin_works_for_a_project_in_pytest_asyncio_strict_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = strict\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS))
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider",
                                           "--strict-markers")
    result.assert_outcomes(passed=4)


def test_plugin_works_for_a_project_without_pytest_asyncio(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate an environment without pytest-asyncio: its module cannot be imported.
    blocker = pytester.mkdir("no_pytest_asyncio")
    (blocker / "pytest_asyncio.py").write_text("raise ImportError('not installed')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker))
    pytester.makepyfile(test_user=textwrap.dedent("""
        import asyncio


        def test_thread(vendorkit_sandbox_thread):
            client, sandbox = vendorkit_sandbox_thread("cambyopro")
            response = asyncio.run(client.request("GET", "/api/v1/account"))
            assert response.status == 200


        def test_async_fixture(cloud4wi_sandbox_client):
            pass
    """))
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:asyncio",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*cloud4wi_sandbox_client needs pytest-asyncio*"])
