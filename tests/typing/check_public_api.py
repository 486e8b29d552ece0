"""Type-checked, never run (mypy --strict in CI): the public API reads as users write it.

Like stamina's typing tests: if a signature loses its types, this file stops checking.
"""

from __future__ import annotations

import vendorkit
from vendorkit.stores import FileTokenStore, RedisTokenStore
from vendorkit.vendors.cloud4wi import Organization
from vendorkit.vendors.cloudcx import User
from vendorkit.vendors.wokelo import CompanySearch, RequestStatus


async def cloud4wi() -> list[Organization]:
    async with vendorkit.Cloud4WiClient("ck", "secret", token_store=FileTokenStore("t")) as c:
        token: vendorkit.Token = await c.login()
        remaining: float | None = token.remaining()
        header: str = token.authorization_header()
        assert remaining is None or header
        return await c.get_organizations("cid", sort_by="name", sort_reverse=True)


async def cloudcx() -> list[User]:
    async with vendorkit.CloudCXClient("https://cx.example.com", api_key="k") as c:
        page: vendorkit.Page[User] = await c.get_user_page(page_index=2, keywords="si")
        users = [user async for user in c.iter_users(page_size=200)]
        async for one_page in c.iter_user_pages(start=3):
            users += one_page.items
        return page.items + users


async def wokelo() -> RequestStatus:
    client = vendorkit.WokeloClient.from_env(retry=vendorkit.RetryPolicy(max_attempts=3))
    async with client:
        found: CompanySearch = await client.search_companies("acme")
        request = await client.enrich_company(found.data[0].name)
        return await client.wait_for_request(request.request_id, poll_interval=0.5)


async def escape_hatch() -> object:
    store = RedisTokenStore("redis://127.0.0.1:6379/0", strict=True)
    async with vendorkit.CambyoProClient("id", "secret", token_store=store) as c:
        response: vendorkit.Response = await c.request("GET", "/api/x", params={"a": "1"})
        stats: vendorkit.Stats = c.stats
        assert (stats.logins >= 0 and response.request_id is None) or response.ok
        try:
            return response.json()
        except vendorkit.ResponseParseError:
            return None


async def wogeez() -> int:
    async with vendorkit.WogeezClient("me", "pw", issuer="https://idp.example.com/realms/x") as c:
        filters = await c.get_search_filters()
        companies = [company.name async for company in c.iter_companies()]
        return len(filters.items) + len(companies)


def errors(exc: vendorkit.VendorkitError) -> float | None:
    if isinstance(exc, vendorkit.RateLimitError):
        return exc.retry_after
    if isinstance(exc, vendorkit.APIError):
        return float(exc.status)
    return None


async def streaming_views_and_limits() -> int:
    limit = vendorkit.RateLimit(400, per=1.0, burst=20)
    async with vendorkit.CloudCXClient("https://cx.example.com", api_key="k",
                                       rate_limit=limit, tracing=False) as c:
        async with c.stream("GET", "/openapi/v2/export") as s:
            size = len([chunk async for chunk in s.iter_bytes()])
        view = c.with_options(timeout=600)
        page: vendorkit.Page[User] = await view.get_user_page()
        raw: vendorkit.Response | None = view.last_response
        organizations: vendorkit.ItemList[Organization] = await vendorkit.Cloud4WiClient(
            "ck", "secret").get_organizations("cid")
        return size + len(page.items) + len(organizations.skipped) + (raw is None)
