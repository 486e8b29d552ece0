"""WogeezClient against the Wogeez (Keycloak) sandbox and a generic OpenID Connect server."""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from vendorkit import AuthenticationError, InvalidGrantError, Token, WogeezClient
from vendorkit.testing import SandboxFactory
from vendorkit.vendors.wogeez import Company, FilterParameter, SearchFilter

OIDC = "/realms/wogeez/protocol/openid-connect"
DISCOVERY_ROUTE = "GET /realms/wogeez/.well-known/openid-configuration"
TOKEN_ROUTE = f"POST {OIDC}/token"
Renewal = Callable[[Token | None], Awaitable[None]]
ServeApp = Callable[[web.Application], Awaitable[str]]


async def _refresh(http: aiohttp.ClientSession, base_url: str, refresh_token: str,
                   client_id: str = "wogeez-api") -> tuple[int, dict[str, str]]:
    """A refresh_token grant sent by hand, as another process holding the token would."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    async with http.post(base_url + OIDC + "/token", data=form) as answer:
        return answer.status, await answer.json()


async def test_discovery_is_fetched_once_for_login_calls_relogin_and_logout(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wogeez") as (client, sandbox):
        await client.list_companies()
        sandbox.state.revoke_all_tokens()
        await client.get_search_filters()  # 401 -> a second password grant
        await client.aclose()  # end_session + revocation
        requests = sandbox.state.counters.requests
        assert requests[DISCOVERY_ROUTE] == 1
        assert requests[TOKEN_ROUTE] == 2
        assert requests[f"POST {OIDC}/logout"] == 1


async def test_sandbox_refuses_a_token_request_that_is_not_urlencoded(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("wogeez") as (_, sandbox):
        fields = {"grant_type": "password", **sandbox.credentials}
        url = sandbox.base_url + OIDC + "/token"
        async with raw_http.post(url, json=fields) as as_json:
            assert as_json.status == 400
            assert (await as_json.json())["error"] == "invalid_request"
        async with raw_http.post(url, data=fields) as documented:
            assert documented.status == 200


async def test_search_filters_are_typed(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("wogeez") as (client, _):
        filters = await client.get_search_filters()
        assert [f.field for f in filters.items] == ["country", "sector", "headcount"]
        for item in filters.items:
            assert isinstance(item, SearchFilter)
            assert (item.definition.type, item.scope) == ("TERMS", "COMPANY")
            assert all(isinstance(p, FilterParameter) for p in item.definition.parameters)
            assert sum(p.count or 0 for p in item.definition.parameters) == 300
        country = filters.items[0].definition.parameters
        assert {"name": "France", "value": "FR"} in [{"name": p.name, "value": p.value}
                                                      for p in country]


async def test_company_page_is_typed_and_unknown_fields_land_in_extra(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wogeez") as (client, _):
        page = await client.list_companies(page=1, size=20)
        assert (page.total, page.page_index, page.page_size, page.has_next) == (300, 1, 20, True)
        assert len(page) == 20
        for company in page.items:
            assert isinstance(company, Company)
            assert company.id and company.name and company.sector and company.website
            assert company.country is not None and len(company.country) == 2
            assert isinstance(company.founded_year, int)
            assert set(company.extra) == {"countryName", "headcount"}
        assert page.items[0].name is not None and page.items[0].name.endswith(" 21")


async def test_iter_companies_yields_all_300_exactly_once(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wogeez") as (client, sandbox):
        ids = [company.id async for company in client.iter_companies(size=100)]
        assert len(ids) == len(set(ids)) == 300
        assert sandbox.state.counters.requests["GET /companies"] == 3


async def test_search_filters_combine_on_the_server(vendorkit_sandbox: SandboxFactory) -> None:
    async with vendorkit_sandbox("wogeez") as (client, _):
        counts = {p.value: p.count for p in (await client.get_search_filters()).items[0]
                  .definition.parameters}
        french = await client.search_resources(country="FR", size=200)
        assert french.total == counts["FR"] == len(french)
        assert {c.country for c in french.items} == {"FR"}
        narrower = await client.search_resources(country="FR", sector="Energy", size=200)
        assert narrower.total is not None and narrower.total < counts["FR"]
        assert {(c.country, c.sector) for c in narrower.items} == {("FR", "Energy")}


async def test_rotating_refresh_tokens_are_stored_so_two_refreshes_in_a_row_succeed(
    vendorkit_sandbox: SandboxFactory, until_renewal: Renewal
) -> None:
    async with vendorkit_sandbox("wogeez", token_lifetime=2) as (client, sandbox):
        await client.list_companies()
        seen = [client.token]
        for _ in range(2):
            await until_renewal(client.token)
            await client.list_companies()
            seen.append(client.token)
        counters = sandbox.state.counters
        assert (counters.logins, counters.refreshes, counters.failed_logins) == (1, 2, 0)
        assert client.stats.refreshes == 2
        assert len({t.refresh_token for t in seen if t is not None}) == 3


async def test_a_stale_refresh_token_gets_invalid_grant_and_a_full_login(
    vendorkit_sandbox: SandboxFactory, until_renewal: Renewal, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("wogeez", token_lifetime=2) as (client, sandbox):
        await client.list_companies()
        token = client.token
        assert token is not None and token.refresh_token is not None
        # Someone else rotates the refresh token: the client's copy is now stale.
        assert (await _refresh(raw_http, sandbox.base_url, token.refresh_token))[0] == 200
        await until_renewal(token)

        page = await client.list_companies()

        assert page.total == 300
        counters = sandbox.state.counters
        assert (counters.logins, counters.refreshes, counters.failed_logins) == (2, 1, 1)
        assert (client.stats.logins, client.stats.refreshes) == (2, 0)


async def test_close_ends_the_keycloak_session_and_the_refresh_token_dies(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("wogeez") as (client, sandbox):
        await client.list_companies()
        token = client.token
        assert token is not None and token.refresh_token is not None
        await client.aclose()
        assert sandbox.state.counters.logouts == 1
        status, body = await _refresh(raw_http, sandbox.base_url, token.refresh_token)
        assert (status, body["error"]) == (400, "invalid_grant")


async def test_keycloak_401_for_a_wrong_password_is_an_authentication_error(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    wrong = "pw_wrong_Lk2sV8nQ4rTz"
    async with vendorkit_sandbox("wogeez", password=wrong) as (client, sandbox):
        with pytest.raises(AuthenticationError) as caught:
            await client.list_companies()
        assert not isinstance(caught.value, InvalidGrantError)  # a login, not a refresh
        assert caught.value.status == 401
        assert "Invalid user credentials" in str(caught.value)
        assert wrong not in str(caught.value)
        assert sandbox.state.counters.failed_logins == 1


class GenericOIDC:
    """A small standards-compliant OpenID Connect provider with a protected ``/companies``.

    Its endpoint paths are unlike Keycloak's, so only discovery can lead a client to them.
    A confidential client: the secret is required in the form (client_secret_post).
    """

    ISSUER_PATH = "/tenants/acme/v2.0"
    CLIENT_ID, CLIENT_SECRET = "acme-app", "acme-secret-Wq3e9R"
    USERNAME, PASSWORD = "alice", "alice-pw-7Tg2Kx"

    def __init__(self, *, expires_in: int = 300) -> None:
        self.expires_in = expires_in
        self.paths: list[str] = []
        self.grants: list[str] = []
        self.base_url = ""
        self._access: set[str] = set()
        self._refresh: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get(self.ISSUER_PATH + "/.well-known/openid-configuration", self.discovery)
        app.router.add_post("/oauth2/v2.0/token", self.token)
        app.router.add_post("/oauth2/v2.0/logout", self.logout)
        app.router.add_post("/oauth2/v2.0/revoke", self.revoke)
        app.router.add_get("/companies", self.companies)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[
            [web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        self.paths.append(f"{request.method} {request.path}")
        return await handler(request)

    async def discovery(self, request: web.Request) -> web.Response:
        base = self.base_url
        return web.json_response({
            "issuer": base + self.ISSUER_PATH,
            "token_endpoint": base + "/oauth2/v2.0/token",
            "end_session_endpoint": base + "/oauth2/v2.0/logout",
            "revocation_endpoint": base + "/oauth2/v2.0/revoke",
            "jwks_uri": base + "/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "grant_types_supported": ["password", "refresh_token"],
        })

    async def token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self._error("invalid_request", "form body required")
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.grants.append(form.get("grant_type", ""))
        if (form.get("client_id"), form.get("client_secret")) != (self.CLIENT_ID,
                                                                   self.CLIENT_SECRET):
            return self._error("invalid_client", "Client authentication failed", status=401)
        if form.get("grant_type") == "password":
            if (form.get("username"), form.get("password")) != (self.USERNAME, self.PASSWORD):
                return self._error("invalid_grant", "The username or password is incorrect")
        elif form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self._refresh:
                return self._error("invalid_grant", "refresh token is invalid")
            self._refresh.discard(form["refresh_token"])
        else:
            return self._error("unsupported_grant_type", "")
        access, renewal = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self._access.add(access)
        self._refresh.add(renewal)
        return web.json_response({"access_token": access, "token_type": "Bearer",
                                  "expires_in": self.expires_in, "refresh_token": renewal},
                                 headers={"Cache-Control": "no-store"})

    async def logout(self, request: web.Request) -> web.Response:
        form = await request.post()
        self._refresh.discard(str(form.get("refresh_token")))
        return web.Response(status=204)

    async def revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        self._refresh.discard(str(form.get("token")))
        return web.Response(status=200)

    async def companies(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._access:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"content": [{"id": "c1", "name": "Acme"}], "totalElements": 1})

    @staticmethod
    def _error(code: str, description: str, *, status: int = 400) -> web.Response:
        return web.json_response({"error": code, "error_description": description},
                                 status=status)


async def _generic(serve_app: ServeApp, **options: int) -> GenericOIDC:
    server = GenericOIDC(**options)
    server.base_url = await serve_app(server.app())
    return server


def _client(server: GenericOIDC, *, password: str = GenericOIDC.PASSWORD) -> WogeezClient:
    return WogeezClient(
        GenericOIDC.USERNAME, password, client_id=GenericOIDC.CLIENT_ID,
        client_secret=GenericOIDC.CLIENT_SECRET, issuer=server.base_url + GenericOIDC.ISSUER_PATH,
        api_base_url=server.base_url,
    )


async def test_any_openid_connect_server_works_by_following_its_discovery(
    serve_app: ServeApp, until_renewal: Renewal
) -> None:
    server = await _generic(serve_app, expires_in=1)
    async with _client(server) as client:
        page = await client.list_companies()
        await until_renewal(client.token)
        await client.list_companies()
    assert page.items[0].name == "Acme"
    assert server.grants == ["password", "refresh_token"]
    assert server.paths == [
        f"GET {GenericOIDC.ISSUER_PATH}/.well-known/openid-configuration",
        "POST /oauth2/v2.0/token",
        "GET /companies",
        "POST /oauth2/v2.0/token",
        "GET /companies",
        "POST /oauth2/v2.0/logout",
        "POST /oauth2/v2.0/revoke",
    ]
    assert not [p for p in server.paths if "/realms/" in p or "openid-connect" in p]


async def test_an_rfc6749_400_for_a_wrong_password_is_an_authentication_error(
    serve_app: ServeApp,
) -> None:
    server = await _generic(serve_app)
    wrong = "pw_wrong_Hd7kP3xQ"
    async with _client(server, password=wrong) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.list_companies()
    assert not isinstance(caught.value, InvalidGrantError)
    assert caught.value.status == 400
    assert "The username or password is incorrect" in str(caught.value)
    assert wrong not in str(caught.value) and GenericOIDC.CLIENT_SECRET not in str(caught.value)
    assert collections.Counter(server.paths)["POST /oauth2/v2.0/token"] == 1


async def test_concurrent_first_calls_share_one_discovery_and_one_login(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("wogeez") as (client, sandbox):
        pages = await asyncio.gather(*(client.list_companies(page=i) for i in range(10)))
        assert [p.page_index for p in pages] == list(range(10))
        requests = sandbox.state.counters.requests
        assert (requests[DISCOVERY_ROUTE], requests[TOKEN_ROUTE]) == (1, 1)


class CappedCompanies(GenericOIDC):
    """A generic OpenID Connect server whose Spring Data company listing serves at most 50
    companies a page, whatever size is asked (its answer says ``"size": 50``)."""

    COUNT, CAP = 137, 50

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[int, int]] = []

    async def companies(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._access:
            return web.json_response({"error": "invalid_token"}, status=401)
        page, size = int(request.query["page"]), int(request.query["size"])
        self.asked.append((page, size))
        served = min(size, self.CAP)
        rows = [{"id": f"c{i}", "name": f"Company {i}"}
                for i in range(page * served, min((page + 1) * served, self.COUNT))]
        pages = -(-self.COUNT // served)
        return web.json_response({"content": rows, "totalElements": self.COUNT,
                                  "totalPages": pages, "number": page, "size": served,
                                  "numberOfElements": len(rows), "last": page >= pages - 1})


async def test_a_server_capping_pages_at_50_still_yields_all_137_companies_exactly_once(
    serve_app: ServeApp,
) -> None:
    server = CappedCompanies()
    server.base_url = await serve_app(server.app())
    async with _client(server) as client:
        ids = [company.id async for company in client.iter_companies(size=100)]
    assert ids == [f"c{i}" for i in range(137)]
    assert server.asked == [(0, 100), (1, 50), (2, 50)]
