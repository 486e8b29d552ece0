"""The vendor emulators, spoken to over real HTTP with a plain aiohttp.ClientSession."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple

import aiohttp
import pytest

from vendorkit.sandbox import (
    DEFAULT_CREDENTIALS,
    VENDORS,
    Faults,
    RunningSandbox,
    SandboxThread,
    serve,
    serve_all,
)

WOGEEZ_OIDC = "/realms/wogeez/protocol/openid-connect"
PROTECTED = {
    "cloud4wi": "/v2/customers/organizations/cid-42",
    "wokelo": "/api/enterprise/company/search?query=a",
    "cloudcx": "/openapi/v2/user/page?pageIndex=1&pageSize=5",
    "cambyopro": "/api/v1/account",
    "wogeez": "/companies",
}
PROTECTED_ROUTE = {
    "cloud4wi": "GET /v2/customers/organizations/{cid}",
    "wokelo": "GET /api/enterprise/company/search",
    "cloudcx": "GET /openapi/v2/user/page",
    "cambyopro": "GET /api/v1/account",
    "wogeez": "GET /companies",
}
REJECTION = {
    "cloud4wi": {"error": "Unauthorized"},
    "wokelo": {"detail": "Authentication credentials were not provided."},
    "cloudcx": {"code": 401, "msg": "Unauthorized"},
    "cambyopro": {"success": False, "message": "Invalid or expired token."},
    "wogeez": {"error": "invalid_token", "error_description": "Token is not active"},
}


class Answer(NamedTuple):
    status: int
    body: Any
    headers: Mapping[str, str]


async def send(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Answer:
    async with http.request(method, url, **kwargs) as response:
        text = await response.text()
        return Answer(response.status, json.loads(text) if text else None, response.headers)


def multipart(fields: Mapping[str, str]) -> aiohttp.FormData:
    return aiohttp.FormData(dict(fields), default_to_multipart=True)


def password_form(sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
    creds = sandbox.credentials
    fields = {
        "grant_type": "password",
        "client_id": creds["client_id"],
        "username": creds["username"],
        "password": creds["password"],
    }
    if "client_secret" in creds:
        fields["client_secret"] = creds["client_secret"]
    return fields | extra


async def login(http: aiohttp.ClientSession, sandbox: RunningSandbox) -> Answer:
    """Log in the way the vendor's docs say."""
    base, creds = sandbox.base_url, sandbox.credentials
    if sandbox.vendor == "cloud4wi":
        body = {"clientKey": creds["client_key"], "clientSecret": creds["client_secret"]}
        return await send(http, "POST", f"{base}/v1/sts/login/services", json=body)
    if sandbox.vendor == "wokelo":
        form = multipart(password_form(sandbox))
        return await send(http, "POST", f"{base}/auth/token/", data=form)
    if sandbox.vendor == "cloudcx":
        return await send(http, "POST", f"{base}/oauth/token", data=password_form(sandbox))
    if sandbox.vendor == "cambyopro":
        body = {"clientId": creds["client_id"], "clientSecret": creds["client_secret"]}
        return await send(http, "POST", f"{base}/api/no-auth/authentication/v1/login", json=body)
    return await send(http, "POST", f"{base}{WOGEEZ_OIDC}/token", data=password_form(sandbox))


async def token_of(http: aiohttp.ClientSession, sandbox: RunningSandbox) -> str:
    answer = await login(http, sandbox)
    assert answer.status == 200, answer
    body = answer.body
    return str(body.get("token") or body.get("accessToken") or body["access_token"])


async def protected(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, token: str, scheme: str = "Bearer"
) -> Answer:
    headers = {"Authorization": f"{scheme} {token}"}
    return await send(http, "GET", sandbox.base_url + PROTECTED[sandbox.vendor], headers=headers)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- every vendor: tokens, rejection, counters ------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
async def test_fresh_token_opens_the_protected_endpoint(
    vendor: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor) as sandbox:
        token = await token_of(http, sandbox)
        answer = await protected(http, sandbox, token, scheme="bEaReR")
        assert answer.status == 200
        counters = sandbox.state.counters
        assert (counters.logins, counters.rejected) == (1, 0)
        assert counters.requests[PROTECTED_ROUTE[vendor]] == 1


@pytest.mark.parametrize("vendor", VENDORS)
async def test_missing_and_unknown_tokens_get_the_vendor_401(
    vendor: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor) as sandbox:
        bare = await send(http, "GET", sandbox.base_url + PROTECTED[vendor])
        forged = await protected(http, sandbox, "not-a-token")
        assert (bare.status, forged.status) == (401, 401)
        assert bare.body == forged.body == REJECTION[vendor]
        assert sandbox.state.counters.rejected == 2


@pytest.mark.parametrize("vendor", VENDORS)
async def test_expired_token_is_rejected_403_only_by_cloud4wi(
    vendor: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor, token_lifetime=0.2) as sandbox:
        token = await token_of(http, sandbox)
        assert (await protected(http, sandbox, token)).status == 200
        await asyncio.sleep(0.3)
        answer = await protected(http, sandbox, token)
        assert answer.status == (403 if vendor == "cloud4wi" else 401)
        assert sandbox.state.counters.rejected == 1


@pytest.mark.parametrize("vendor", VENDORS)
async def test_clock_skew_makes_the_server_reject_tokens_early(
    vendor: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor, token_lifetime=60) as sandbox:
        token = await token_of(http, sandbox)
        sandbox.state.clock_skew = 61
        assert (await protected(http, sandbox, token)).status in (401, 403)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_mass_revocation_kills_every_issued_token(
    vendor: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor) as sandbox:
        tokens = [await token_of(http, sandbox) for _ in range(2)]
        assert sandbox.state.revoke_all_tokens() >= 2
        for token in tokens:
            answer = await protected(http, sandbox, token)
            assert (answer.status, answer.body) == (401, REJECTION[vendor])
        assert sandbox.state.counters.rejected == 2


@pytest.mark.parametrize("vendor", VENDORS)
async def test_injected_failure_hits_api_routes_only(
    vendor: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor) as sandbox:
        sandbox.state.faults.fail_next(1, 503, retry_after="7")
        token = await token_of(http, sandbox)  # an "auth" route: untouched
        failed = await protected(http, sandbox, token)
        assert failed.status == 503
        assert failed.headers["Retry-After"] == "7"
        assert (await protected(http, sandbox, token)).status == 200
        assert sandbox.state.counters.faults == 1


# --- faults ---------------------------------------------------------------------------------


async def test_faults_are_consumed_in_order(http: aiohttp.ClientSession) -> None:
    async with serve("cambyopro") as sandbox:
        token = await token_of(http, sandbox)
        faults = sandbox.state.faults
        faults.fail_next(1, 429, body='{"message": "slow down"}')
        faults.fail_next(1, 500)
        first_answer = await protected(http, sandbox, token)
        second_answer = await protected(http, sandbox, token)
        assert (first_answer.status, first_answer.body) == (429, {"message": "slow down"})
        assert second_answer.status == 500
        assert (await protected(http, sandbox, token)).status == 200


async def test_auth_fault_hits_login_not_api(http: aiohttp.ClientSession) -> None:
    async with serve("cambyopro") as sandbox:
        token = await token_of(http, sandbox)
        sandbox.state.faults.fail_next(1, 502, target="auth")
        assert (await protected(http, sandbox, token)).status == 200
        assert (await login(http, sandbox)).status == 502
        assert sandbox.state.counters.faults == 1


async def test_drop_closes_the_connection_before_any_response(http: aiohttp.ClientSession) -> None:
    async with serve("cambyopro") as sandbox:
        token = await token_of(http, sandbox)
        # aiohttp silently retries an idempotent request once, so two drops are needed to see one.
        sandbox.state.faults.drop_next(2)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await protected(http, sandbox, token)
        sandbox.state.faults.drop_next(1, target="auth")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await login(http, sandbox)  # POST: not retried
        assert sandbox.state.counters.faults == 3
        assert (await protected(http, sandbox, token)).status == 200


async def test_drop_mid_body_cuts_the_payload_short(http: aiohttp.ClientSession) -> None:
    async with serve("cloudcx") as sandbox:
        token = await token_of(http, sandbox)
        sandbox.state.faults.drop_next(1, mid_body=True)
        url = sandbox.base_url + PROTECTED["cloudcx"]
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        assert (await protected(http, sandbox, token)).status == 200


async def test_malformed_answers_are_200_but_unparseable(http: aiohttp.ClientSession) -> None:
    async with serve("wogeez") as sandbox:
        token = await token_of(http, sandbox)
        sandbox.state.faults.malformed_next(1)
        sandbox.state.faults.malformed_next(1, kind="html")
        url, headers = sandbox.base_url + "/companies", {"Authorization": f"Bearer {token}"}
        async with http.get(url, headers=headers) as response:
            assert (response.status, response.content_type) == (200, "application/json")
            with pytest.raises(json.JSONDecodeError):
                await response.json()
        async with http.get(url, headers=headers) as response:
            assert (response.status, response.content_type) == (200, "text/html")
            assert "502 Bad Gateway" in await response.text()


async def test_slow_fault_and_latency_delay_the_answer(http: aiohttp.ClientSession) -> None:
    async with serve("cambyopro") as sandbox:
        token = await token_of(http, sandbox)
        sandbox.state.faults.slow_next(1, 0.3)
        started = time.monotonic()
        assert (await protected(http, sandbox, token)).status == 200
        assert time.monotonic() - started >= 0.3
        sandbox.state.faults.latency = 0.2
        started = time.monotonic()
        assert (await protected(http, sandbox, token)).status == 200
        assert time.monotonic() - started >= 0.2


def test_faults_reject_nonsense() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="target"):
        faults.fail_next(1, 500, target="everything")
    with pytest.raises(ValueError, match="status"):
        faults.fail_next(1, 42)
    with pytest.raises(ValueError, match="html"):
        faults.malformed_next(1, kind="xml")
    assert faults.pending() == 0


# --- control routes ---------------------------------------------------------------------------


async def test_control_routes_drive_another_process(http: aiohttp.ClientSession) -> None:
    async with serve("cloud4wi") as sandbox:
        base = sandbox.base_url
        token = await token_of(http, sandbox)
        queued = await send(
            http,
            "POST",
            f"{base}/_sandbox/faults",
            json={"kind": "fail", "n": 1, "status": 429, "retry_after": 2},
        )
        assert queued.body["pending"] == 1
        limited = await protected(http, sandbox, token)
        assert (limited.status, limited.headers["Retry-After"]) == (429, "2")
        counters = (await send(http, "GET", f"{base}/_sandbox/counters")).body
        assert counters["logins"] == 1 and counters["faults"] == 1
        assert counters["requests"]["POST /v1/sts/login/services"] == 1
        assert (await send(http, "POST", f"{base}/_sandbox/revoke")).body == {"revoked": 1}
        assert (await protected(http, sandbox, token)).status == 401
        assert (await send(http, "POST", f"{base}/_sandbox/reset")).status == 200
        after = (await send(http, "GET", f"{base}/_sandbox/counters")).body
        assert after["logins"] == after["rejected"] == 0 and after["requests"] == {}
        bad = await send(http, "POST", f"{base}/_sandbox/faults", json={"kind": "explode"})
        assert bad.status == 400


# --- cloud4wi ---------------------------------------------------------------------------------


async def test_cloud4wi_login_returns_a_jwt_in_the_body_only(http: aiohttp.ClientSession) -> None:
    async with serve("cloud4wi", token_lifetime=2.5) as sandbox:
        answer = await login(http, sandbox)
        token = answer.body["token"]
        assert answer.body == {"token": token}
        assert "Authorization" not in answer.headers
        header, payload, _ = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert json.loads(base64.urlsafe_b64decode(header + "=="))["alg"] == "HS256"
        assert claims["sub"] == "ck-sandbox" and claims["jti"]
        assert claims["exp"] - claims["iat"] == pytest.approx(2.5, abs=1.0)


async def test_cloud4wi_login_is_strict_about_its_body(http: aiohttp.ClientSession) -> None:
    async with serve("cloud4wi") as sandbox:
        url, creds = f"{sandbox.base_url}/v1/sts/login/services", sandbox.credentials
        as_form = await send(
            http,
            "POST",
            url,
            data={"clientKey": creds["client_key"], "clientSecret": creds["client_secret"]},
        )
        snake = await send(
            http,
            "POST",
            url,
            json={"client_key": creds["client_key"], "client_secret": creds["client_secret"]},
        )
        wrong = await send(
            http, "POST", url, json={"clientKey": creds["client_key"], "clientSecret": "nope"}
        )
        assert as_form.status == 415 and "error" in as_form.body
        assert snake.status == 400 and "clientKey" in snake.body["error"]
        assert (wrong.status, wrong.body) == (401, {"error": "Invalid clientKey or clientSecret"})
        assert sandbox.state.counters.failed_logins == 3


async def test_cloud4wi_logout_revokes_the_token(http: aiohttp.ClientSession) -> None:
    async with serve("cloud4wi") as sandbox:
        token = await token_of(http, sandbox)
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{sandbox.base_url}/v1/sts/logout"
        assert (await send(http, "POST", url, headers=headers)).body == {"message": "Token revoked"}
        assert (await send(http, "POST", url, headers=headers)).status == 401
        assert (await protected(http, sandbox, token)).status == 401
        assert sandbox.state.counters.logouts == 1


async def test_cloud4wi_organizations_sort_and_validate(http: aiohttp.ClientSession) -> None:
    async with serve("cloud4wi") as sandbox:
        headers = {"Authorization": f"Bearer {await token_of(http, sandbox)}"}
        url = f"{sandbox.base_url}/v2/customers/organizations"
        by_name = await send(http, "GET", f"{url}/c1?sortBy=name&sortReverse=true", headers=headers)
        default = await send(http, "GET", f"{url}/c1", headers=headers)
        names = [org["name"] for org in by_name.body]
        assert names == sorted(names, reverse=True) and 3 <= len(names) <= 7
        created = [org["created_absolute"] for org in default.body]
        assert created == sorted(created)
        assert {"id", "cid", "created", "updated", "status", "tags", "portalTheme"} <= set(
            default.body[0]
        )
        bad = await send(http, "GET", f"{url}/c1?sortReverse=yes", headers=headers)
        missing = await send(http, "GET", f"{url}/missing", headers=headers)
        assert bad.status == 400
        assert (missing.status, missing.body) == (404, {"error": "Customer not found"})


# --- wokelo -----------------------------------------------------------------------------------


async def test_wokelo_token_endpoint_wants_form_data(http: aiohttp.ClientSession) -> None:
    async with serve("wokelo") as sandbox:
        url, form = f"{sandbox.base_url}/auth/token/", password_form(sandbox)
        ok = await send(http, "POST", url, data=multipart(form))
        as_json = await send(http, "POST", url, json=form)
        urlencoded = await send(http, "POST", url, data=form)
        bad_user = await send(http, "POST", url, data=multipart(form | {"password": "x"}))
        bad_client = await send(http, "POST", url, data=multipart(form | {"client_secret": "x"}))
        assert set(ok.body) == {
            "access_token",
            "expires_in",
            "token_type",
            "scope",
            "refresh_token",
        }
        assert (ok.body["expires_in"], ok.body["scope"]) == (2628288, "read write")
        assert as_json.body == urlencoded.body == {"error": "unsupported_grant_type"}
        assert (bad_user.status, bad_user.body["error"]) == (400, "invalid_grant")
        assert (bad_client.status, bad_client.body) == (401, {"error": "invalid_client"})


async def test_wokelo_refresh_rotates_and_retires_the_old_access_token(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("wokelo") as sandbox:
        first = (await login(http, sandbox)).body
        creds, url = sandbox.credentials, f"{sandbox.base_url}/auth/token/"
        form = {
            "grant_type": "refresh_token",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "refresh_token": first["refresh_token"],
        }
        second = await send(http, "POST", url, data=multipart(form))
        assert second.status == 200 and second.body["refresh_token"] != first["refresh_token"]
        reused = await send(http, "POST", url, data=multipart(form))
        assert (reused.status, reused.body["error"]) == (400, "invalid_grant")
        assert (await protected(http, sandbox, first["access_token"])).status == 401
        # Unlike Keycloak here, the replay does not end the session (DOT's default).
        third = await send(
            http,
            "POST",
            url,
            data=multipart(form | {"refresh_token": second.body["refresh_token"]}),
        )
        assert third.status == 200
        assert sandbox.state.counters.refreshes == 2


async def test_wokelo_search_filters_and_validates(http: aiohttp.ClientSession) -> None:
    async with serve("wokelo") as sandbox:
        headers = {"Authorization": f"Bearer {await token_of(http, sandbox)}"}
        url = f"{sandbox.base_url}/api/enterprise/company/search"
        public = await send(http, "GET", f"{url}?query=a&company_type=public", headers=headers)
        assert public.body["status"] == "success" and public.body["count"] > 0
        assert all(c["ipo_status"] == "public" and c["ticker"] for c in public.body["data"])
        domain = public.body["data"][0]["domain"]
        by_domain = await send(
            http, "GET", f"{url}?query={domain}&search_by=domain", headers=headers
        )
        assert [c["domain"] for c in by_domain.body["data"]] == [domain]
        missing = await send(http, "GET", url, headers=headers)
        assert (missing.status, missing.body["status"]) == (400, "error")


async def test_wokelo_enrichment_completes_or_fails_over_time(http: aiohttp.ClientSession) -> None:
    async with serve("wokelo") as sandbox:
        headers = {"Authorization": f"Bearer {await token_of(http, sandbox)}"}
        base = f"{sandbox.base_url}/api/enterprise"
        ok = await send(
            http, "POST", f"{base}/company/enrich/", json={"company": "x"}, headers=headers
        )
        doomed = await send(
            http, "POST", f"{base}/company/enrich/", json={"company": "fail-me"}, headers=headers
        )
        as_form = await send(
            http, "POST", f"{base}/company/enrich/", data={"company": "x"}, headers=headers
        )
        assert (ok.status, ok.body["status"], as_form.status) == (202, "PENDING", 415)
        early = await send(
            http,
            "GET",
            f"{base}/request/result/?request_id={ok.body['request_id']}",
            headers=headers,
        )
        assert (early.status, early.body["message"]) == (409, "Request not completed")
        await asyncio.sleep(0.35)
        done = await send(
            http,
            "GET",
            f"{base}/request/result/?request_id={ok.body['request_id']}",
            headers=headers,
        )
        failed = await send(
            http,
            "GET",
            f"{base}/request/status/?request_id={doomed.body['request_id']}",
            headers=headers,
        )
        unknown = await send(
            http, "GET", f"{base}/request/status/?request_id=nope", headers=headers
        )
        assert done.body["status"] == "COMPLETED" and done.body["data"]["name"] == "x"
        assert failed.body["status"] == "FAILED"
        assert unknown.status == 404


# --- cloudcx ----------------------------------------------------------------------------------


async def test_cloudcx_token_endpoint_is_form_urlencoded_only(http: aiohttp.ClientSession) -> None:
    async with serve("cloudcx") as sandbox:
        url, form = f"{sandbox.base_url}/oauth/token", password_form(sandbox)
        ok = await send(http, "POST", url, data=form)
        as_json = await send(http, "POST", url, json=form)
        bad_user = await send(http, "POST", url, data=form | {"password": "x"})
        bad_client = await send(http, "POST", url, data=form | {"client_secret": "x"})
        # The seed's example answer, field for field: no refresh token, no scope.
        assert set(ok.body) == {"access_token", "token_type", "expires_in"}
        assert (ok.body["expires_in"], ok.body["token_type"]) == (3599, "Bearer")
        assert ok.body["access_token"].count(".") == 2
        assert (as_json.status, as_json.body["error"]) == (400, "invalid_request")
        assert bad_user.body == {"error": "invalid_grant", "error_description": "Bad credentials"}
        assert (bad_client.status, bad_client.body) == (401, {"error": "invalid_client"})


async def test_cloudcx_api_key_and_user_pages(http: aiohttp.ClientSession) -> None:
    async with serve("cloudcx", token_lifetime=0.1) as sandbox:
        key = sandbox.credentials["api_key"]
        assert "api_key" not in sandbox.client_kwargs
        await asyncio.sleep(0.15)  # the API key outlives any token lifetime
        url = f"{sandbox.base_url}/openapi/v2/user/page"
        headers = {"Authorization": f"Bearer {key}"}
        first = (await send(http, "GET", f"{url}?pageIndex=1&pageSize=200", headers=headers)).body
        assert (first["code"], first["data"]["total"], len(first["data"]["list"])) == (0, 2500, 200)
        past = await send(http, "GET", f"{url}?pageIndex=99&pageSize=200", headers=headers)
        assert past.body["data"]["list"] == []
        user = first["data"]["list"][0]
        found = await send(
            http, "GET", f"{url}?keywords={user['userName'].upper()}", headers=headers
        )
        assert [u["id"] for u in found.body["data"]["list"]] == [user["id"]]
        too_big = await send(http, "GET", f"{url}?pageSize=201", headers=headers)
        assert (too_big.status, too_big.body["code"]) == (400, 400)


# --- cambyopro --------------------------------------------------------------------------------


async def test_cambyopro_login_shapes(http: aiohttp.ClientSession) -> None:
    async with serve("cambyopro") as sandbox:
        url, creds = f"{sandbox.base_url}/api/no-auth/authentication/v1/login", sandbox.credentials
        ok = await login(http, sandbox)
        as_form = await send(http, "POST", url, data={"clientId": creds["client_id"]})
        snake = await send(
            http,
            "POST",
            url,
            json={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
        )
        wrong = await send(
            http, "POST", url, json={"clientId": creds["client_id"], "clientSecret": "nope"}
        )
        assert ok.body["accessToken"].startswith("atk_")
        assert (ok.body["success"], ok.body["tokenType"], ok.body["expiresIn"]) == (
            True,
            "Bearer",
            86400,
        )
        assert (as_form.status, as_form.body["success"]) == (415, False)
        assert (snake.status, snake.body) == (
            400,
            {"success": False, "message": "clientId and clientSecret are required"},
        )
        assert (wrong.status, wrong.body) == (
            401,
            {"success": False, "message": "Invalid credentials."},
        )
        account = await protected(http, sandbox, ok.body["accessToken"])
        assert account.body["clientId"] == creds["client_id"]


# --- wogeez (Keycloak) ------------------------------------------------------------------------


async def test_wogeez_discovery_uses_the_request_host(http: aiohttp.ClientSession) -> None:
    async with serve("wogeez") as sandbox:
        issuer = sandbox.client_kwargs["issuer"]
        config = (await send(http, "GET", f"{issuer}/.well-known/openid-configuration")).body
        assert config["issuer"] == issuer == f"{sandbox.base_url}/realms/wogeez"
        assert config["token_endpoint"] == f"{sandbox.base_url}{WOGEEZ_OIDC}/token"
        assert config["end_session_endpoint"].endswith("/protocol/openid-connect/logout")
        assert config["revocation_endpoint"].endswith("/protocol/openid-connect/revoke")


async def test_wogeez_token_endpoint_speaks_keycloak(http: aiohttp.ClientSession) -> None:
    async with serve("wogeez") as sandbox:
        url, form = f"{sandbox.base_url}{WOGEEZ_OIDC}/token", password_form(sandbox)
        ok = await send(http, "POST", url, data=form)
        as_json = await send(http, "POST", url, json=form)
        other_client = await send(http, "POST", url, data=form | {"client_id": "web"})
        bad_user = await send(http, "POST", url, data=form | {"password": "x"})
        assert (ok.body["expires_in"], ok.body["refresh_expires_in"]) == (3600, 1800)
        assert ok.body["access_token"].count(".") == 2  # a JWT, as the seed says
        assert ok.body["not-before-policy"] == 0 and ok.body["session_state"]
        assert as_json.body == {
            "error": "invalid_request",
            "error_description": "Missing form parameter: grant_type",
        }
        assert (other_client.status, other_client.body["error"]) == (401, "invalid_client")
        assert (bad_user.status, bad_user.body) == (
            401,
            {"error": "invalid_grant", "error_description": "Invalid user credentials"},
        )


async def test_wogeez_refresh_rotation_refuses_a_replayed_token(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("wogeez") as sandbox:
        first = (await login(http, sandbox)).body
        url = f"{sandbox.base_url}{WOGEEZ_OIDC}/token"

        async def refresh(token: str) -> Answer:
            return await send(
                http,
                "POST",
                url,
                data={
                    "grant_type": "refresh_token",
                    "client_id": "wogeez-api",
                    "refresh_token": token,
                },
            )

        second = await refresh(first["refresh_token"])
        assert second.status == 200
        replayed = await refresh(first["refresh_token"])
        assert (replayed.status, replayed.body) == (
            400,
            {"error": "invalid_grant", "error_description": "Token is not active"},
        )
        # The replay ends the session: the rotated-in refresh token dies too.
        assert (await refresh(second.body["refresh_token"])).status == 400
        assert sandbox.state.counters.refreshes == 1


async def test_wogeez_logout_ends_the_session(http: aiohttp.ClientSession) -> None:
    async with serve("wogeez") as sandbox:
        tokens = (await login(http, sandbox)).body
        oidc = f"{sandbox.base_url}{WOGEEZ_OIDC}"
        no_token = await send(http, "POST", f"{oidc}/logout", data={"client_id": "wogeez-api"})
        assert (no_token.status, no_token.body["error"]) == (400, "invalid_request")
        out = await send(
            http,
            "POST",
            f"{oidc}/logout",
            data={"client_id": "wogeez-api", "refresh_token": tokens["refresh_token"]},
        )
        assert out.status == 204
        refresh = await send(
            http,
            "POST",
            f"{oidc}/token",
            data={
                "grant_type": "refresh_token",
                "client_id": "wogeez-api",
                "refresh_token": tokens["refresh_token"],
            },
        )
        assert (refresh.status, refresh.body["error"]) == (400, "invalid_grant")
        assert (await protected(http, sandbox, tokens["access_token"])).status == 401
        assert sandbox.state.counters.logouts == 1


async def test_wogeez_revocation_answers_200_even_for_unknown_tokens(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("wogeez") as sandbox:
        tokens = (await login(http, sandbox)).body
        url = f"{sandbox.base_url}{WOGEEZ_OIDC}/revoke"
        unknown = await send(http, "POST", url, data={"client_id": "wogeez-api", "token": "x"})
        real = await send(
            http,
            "POST",
            url,
            data={
                "client_id": "wogeez-api",
                "token": tokens["access_token"],
                "token_type_hint": "access_token",
            },
        )
        assert (unknown.status, real.status) == (200, 200)
        assert (await protected(http, sandbox, tokens["access_token"])).status == 401
        assert sandbox.state.counters.revocations == 1


async def test_wogeez_search_pages_through_companies(http: aiohttp.ClientSession) -> None:
    async with serve("wogeez") as sandbox:
        headers = {"Authorization": f"Bearer {await token_of(http, sandbox)}"}
        base = sandbox.base_url
        filters = (
            await send(http, "GET", f"{base}/resources/search/filters", headers=headers)
        ).body["items"]
        country = next(f for f in filters if f["field"] == "country")["definition"]["parameters"][0]
        found = (
            await send(
                http,
                "GET",
                f"{base}/resources/search?country={country['value']}&page=0&size=5",
                headers=headers,
            )
        ).body
        assert found["totalElements"] == country["count"]
        assert len(found["content"]) == 5 and found["number"] == 0
        last = (await send(http, "GET", f"{base}/companies?page=14&size=20", headers=headers)).body
        assert (last["totalElements"], last["totalPages"], last["last"]) == (300, 15, True)


# --- runners ----------------------------------------------------------------------------------


async def test_serve_all_gives_each_vendor_its_own_port_and_client_kwargs() -> None:
    async with serve_all() as running:
        assert set(running) == set(VENDORS)
        assert len({sandbox.base_url for sandbox in running.values()}) == len(VENDORS)
        wogeez = running["wogeez"]
        assert wogeez.client_kwargs == {
            "issuer": f"{wogeez.base_url}/realms/wogeez",
            "api_base_url": wogeez.base_url,
            **DEFAULT_CREDENTIALS["wogeez"],
        }
        assert running["cloud4wi"].client_kwargs == {
            "base_url": running["cloud4wi"].base_url,
            **DEFAULT_CREDENTIALS["cloud4wi"],
        }


async def test_unknown_vendor_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown vendor"):
        async with serve("acme"):
            pass


def test_sandbox_thread_serves_other_threads_and_stops() -> None:
    with SandboxThread(["cambyopro", "cloud4wi"], token_lifetime=5) as thread:
        sandbox = thread.sandboxes["cambyopro"]
        creds = sandbox.credentials
        request = urllib.request.Request(
            f"{sandbox.base_url}/api/no-auth/authentication/v1/login",
            method="POST",
            data=json.dumps(
                {"clientId": creds["client_id"], "clientSecret": creds["client_secret"]}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            assert json.load(response)["expiresIn"] == 5
        assert thread.call(lambda: sandbox.state.counters.logins) == 1
        base_url = sandbox.base_url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base_url}/_sandbox/counters", timeout=2)
