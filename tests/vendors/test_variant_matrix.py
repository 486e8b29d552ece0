"""Every client against every emulator variant that applies to it: the variant matrix.

Each case serves one vendor answering one undocumented point one plausible way (or as
its docs say: "default"), then runs the client's documented calls end to end: login, the
typed calls checked against what the server holds, a full ``iter_*`` walk where the
vendor pages (every item exactly once, against the server's true total), and a token
renewal after expiry; where the vendor refreshes, also a refresh the server refuses
(someone else rotated the refresh token), which must cost exactly one new login.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from vendorkit import APIError, PermissionDeniedError
from vendorkit.sandbox import (
    VENDORS,
    RunningSandbox,
    cloud4wi as cloud4wi_emulator,
    cloudcx as cloudcx_emulator,
    variant_pairs,
    wogeez as wogeez_emulator,
    wokelo as wokelo_emulator,
)
from vendorkit.testing import SandboxFactory

#: Fractional, so that the server's expiry is exactly what ``expires_in`` says.
LIFETIME = 1.5
#: Variants whose point only shows together with another: a capped page in each envelope.
COMBINATIONS = [
    ("cloudcx", ("capped-page", "records-envelope")),
    ("cloudcx", ("capped-page", "spring-envelope")),
    ("wogeez", ("capped-page", "list-envelope")),
    ("wogeez", ("capped-page", "records-envelope")),
    ("wokelo", ("json-login", "refresh-refused-401-detail")),
]
CASES = [
    *((vendor, ()) for vendor in VENDORS),
    *((vendor, (name,)) for vendor, name in variant_pairs()),
    *COMBINATIONS,
]
#: The vendors whose tokens come with a refresh token (CloudCX: only in its variants).
REFRESHING = {"wokelo", "wogeez"}


def case_id(case: tuple[str, tuple[str, ...]]) -> str:
    vendor, names = case
    return f"{vendor}-{'+'.join(names) or 'default'}"


Call = Callable[[], Awaitable[object]]


async def renew_after_expiry(client: Any, sandbox: RunningSandbox, call: Call) -> int:
    """Let the token run out, make ``call``; returns the logins + refreshes it cost.

    When the client knows the server's expiry the call comes just before it, deep in the
    mandatory window; when it does not (an unreadable lifetime, an opaque token, a default
    lifetime) just after the server's, so the client learns of it from the rejection.
    """
    counters = sandbox.state.counters
    before = counters.logins + counters.refreshes
    token = client.token
    assert token is not None
    issued = sandbox.state.verify(token.access_token)
    assert not isinstance(issued, str) and issued.expires_at is not None
    if token.expires_at is not None and abs(token.expires_at - issued.expires_at) < 0.5:
        await asyncio.sleep(max(0.0, token.expires_at - time.time() - 0.1))
    else:
        await asyncio.sleep(max(0.0, issued.expires_at - time.time() + 0.1))
    await call()
    return counters.logins + counters.refreshes - before


async def refused_refresh(client: Any, sandbox: RunningSandbox, call: Call) -> None:
    """Another holder rotates the refresh token: the client's refresh is refused (as the
    variant words it) and must fall back to exactly one login, and the call succeed."""
    token = client.token
    assert token is not None and token.refresh_token is not None
    assert sandbox.state.refresh(token.refresh_token) is not None  # rotated elsewhere
    counters = sandbox.state.counters
    logins, refreshes, failed = counters.logins, counters.refreshes, counters.failed_logins
    await asyncio.sleep(LIFETIME)  # past any renewal point the client may hold
    await call()
    assert counters.logins == logins + 1
    assert counters.refreshes == refreshes
    assert counters.failed_logins - failed <= 1  # the refused refresh, nothing more


async def check_token(client: Any, sandbox: RunningSandbox, names: tuple[str, ...]) -> None:
    """The login's token is the one the server issued, with the refresh token it sent."""
    token = await client.login()
    assert sandbox.state.counters.logins == 1
    issued = sandbox.state.verify(token.access_token)
    assert not isinstance(issued, str), f"the server refuses the client's token: {issued}"
    if "expires-in-camel" in names or "expires-in-snake" in names:
        assert token.expires_at == pytest.approx(time.time() + LIFETIME, abs=0.5)
    sends_refresh = sandbox.vendor in REFRESHING or (
        sandbox.vendor == "cloudcx" and sandbox.state.settings.refresh_token)
    if sends_refresh:
        assert token.refresh_token, "the server sent a refresh token; the client lost it"


async def walk_cloud4wi(client: Any, sandbox: RunningSandbox, names: tuple[str, ...]) -> None:
    seeded = sorted(cloud4wi_emulator.seed_organizations("cid-1"), key=lambda o: o.created_ms)
    expected = {
        "list": [org.id for org in seeded],
        "envelope": [org.id for org in seeded],
        "object": [seeded[0].id],
        "null": [],
    }[sandbox.state.settings.organizations]
    orgs = await client.get_organizations("cid-1")
    assert [org.id for org in orgs] == expected
    assert all(org.cid == "cid-1" and org.name for org in orgs)
    if "forbidden-cid" in names:
        logins = sandbox.state.counters.logins
        for _ in range(5):  # a lasting 403 with a valid token: final, not a login storm
            with pytest.raises(PermissionDeniedError):
                await client.get_organizations(cloud4wi_emulator.FORBIDDEN_CID)
        assert sandbox.state.counters.logins - logins <= 1
        assert [org.id for org in await client.get_organizations("cid-1")] == expected
    call = lambda: client.get_organizations("cid-2")  # noqa: E731
    assert await renew_after_expiry(client, sandbox, call) == 1


async def walk_wokelo(client: Any, sandbox: RunningSandbox, names: tuple[str, ...]) -> None:
    found = await client.search_companies("labs")
    expected = [c.name for c in wokelo_emulator.companies() if "labs" in c.name.lower()]
    assert [c.name for c in found.data] == expected and found.count == len(expected)
    job = await client.enrich_company("Nova Labs")
    done = await client.wait_for_request(job.request_id, poll_interval=0.05, timeout=10)
    assert done.status == "COMPLETED"
    result = await client.get_request_result(job.request_id)
    assert result.data is not None and result.data["name"] == "Nova Labs"
    call = lambda: client.search_companies("ai")  # noqa: E731
    assert await renew_after_expiry(client, sandbox, call) == 1
    await refused_refresh(client, sandbox, call)
    if "json-login" in names:  # multipart refused once, then JSON for the client's life
        assert sandbox.state.counters.failed_logins <= 2


async def walk_cloudcx(client: Any, sandbox: RunningSandbox, names: tuple[str, ...]) -> None:
    users = cloudcx_emulator.users()
    page = await client.get_user_page(page_index=2, page_size=25)
    assert [u.id for u in page.items] == [u["id"] for u in users[25:50]]
    assert page.total in (len(users), None)
    seen = [user.id async for user in client.iter_users(page_size=100)]
    assert len(seen) == len(users), f"{len(seen)} of {len(users)} users"
    assert seen == [u["id"] for u in users]  # each once, in order
    silva = [u["id"] for u in users
             if any("silva" in str(u[field]).lower() for field in ("userName", "displayName"))]
    assert [u.id async for u in client.iter_users(keywords="silva", page_size=60)] == silva
    call = lambda: client.get_user_page(page_index=3)  # noqa: E731
    assert await renew_after_expiry(client, sandbox, call) == 1
    if sandbox.state.settings.refresh_token:
        await refused_refresh(client, sandbox, call)


async def walk_cambyopro(client: Any, sandbox: RunningSandbox, names: tuple[str, ...]) -> None:
    account = await client.request("GET", "/api/v1/account")
    assert account.status == 200
    assert account.json()["clientId"] == sandbox.credentials["client_id"]
    call = lambda: client.request("GET", "/api/v1/account")  # noqa: E731
    assert await renew_after_expiry(client, sandbox, call) == 1
    assert sandbox.state.counters.logins == 2


async def walk_wogeez(client: Any, sandbox: RunningSandbox, names: tuple[str, ...]) -> None:
    companies = wogeez_emulator.companies()
    filters = await client.get_search_filters()
    assert [f.field for f in filters.items] == list(wogeez_emulator.FILTER_FIELDS)
    country = filters.items[0].definition.parameters[0]
    hits = await client.search_resources(country=country.value, size=10)
    matching = [c["id"] for c in companies if c["country"] == country.value]
    assert [h.id for h in hits.items] == matching[:10]
    assert hits.total in (country.count, None)
    page = await client.list_companies(page=1, size=20)
    assert [c.id for c in page.items] == [c["id"] for c in companies[20:40]]
    seen = [company.id async for company in client.iter_companies(size=100)]
    assert len(seen) == len(companies), f"{len(seen)} of {len(companies)} companies"
    assert seen == [c["id"] for c in companies]  # each once, in order
    call = lambda: client.list_companies(page=2)  # noqa: E731
    assert await renew_after_expiry(client, sandbox, call) == 1
    await refused_refresh(client, sandbox, call)


WALKS = {
    "cloud4wi": walk_cloud4wi,
    "wokelo": walk_wokelo,
    "cloudcx": walk_cloudcx,
    "cambyopro": walk_cambyopro,
    "wogeez": walk_wogeez,
}


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
async def test_client_completes_its_documented_calls_against_the_variant(
    case: tuple[str, tuple[str, ...]], vendorkit_sandbox: SandboxFactory
) -> None:
    vendor, names = case
    async with vendorkit_sandbox(vendor, variants=names, token_lifetime=LIFETIME) as (
        client, sandbox,
    ):
        assert sandbox.state.variants == names
        async with asyncio.timeout(90):  # a wedged client fails the case, not the suite
            await check_token(client, sandbox, names)
            try:
                await WALKS[vendor](client, sandbox, names)
            except APIError as exc:  # name the answer that broke the client, not the type
                raise AssertionError(f"{vendor} {names}: {exc!r}") from exc


def test_the_matrix_covers_every_declared_variant() -> None:
    covered = {(vendor, name) for vendor, names in CASES for name in names}
    assert covered == set(variant_pairs())
    assert len(CASES) == len(VENDORS) + len(variant_pairs()) + len(COMBINATIONS)
