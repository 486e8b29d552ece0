"""Emulator variants: each undocumented point answered each declared way, over real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.sandbox.test_sandbox import (
    WOGEEZ_OIDC,
    Answer,
    login,
    multipart,
    password_form,
    protected,
    send,
    token_of,
)
from vendorkit.sandbox import (
    VENDORS,
    RunningSandbox,
    SandboxThread,
    parse_variant,
    serve,
    serve_all,
    variant_pairs,
    variants_of,
)
from vendorkit.sandbox.cloud4wi import FORBIDDEN_CID

TOKEN_PATHS = {
    "wokelo": "/auth/token/",
    "cloudcx": "/oauth/token",
    "wogeez": f"{WOGEEZ_OIDC}/token",
}
ORGS = "/v2/customers/organizations"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def get(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, path: str, token: str
) -> Answer:
    headers = {"Authorization": f"Bearer {token}"}
    return await send(http, "GET", sandbox.base_url + path, headers=headers)


# --- the catalogue ----------------------------------------------------------------------------


def test_every_vendor_declares_variants_with_a_description() -> None:
    pairs = variant_pairs()
    assert {vendor for vendor, _ in pairs} == set(VENDORS)
    assert len(pairs) == len(set(pairs)) >= 40
    for vendor, name in pairs:
        assert len(variants_of(vendor)[name].description) > 10, (vendor, name)


async def test_unknown_variant_names_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown cloudcx variant 'capped'; cloudcx variants: "):
        async with serve("cloudcx", variants="capped"):
            pass
    with pytest.raises(ValueError, match="capped-page"):  # the message lists the real names
        async with serve_all(["cloudcx"], variants={"cloudcx": ["nope"]}):
            pass
    with pytest.raises(ValueError, match="variants given for wogeez, which is not served"):
        async with serve_all(["cloudcx"], variants={"wogeez": "capped-page"}):
            pass
    assert parse_variant(" CloudCX = capped-page ") == ("cloudcx", "capped-page")
    for text in ("cloudcx", "cloudcx=", "=capped-page", "acme=capped-page", "wokelo=capped-page"):
        with pytest.raises(ValueError):
            parse_variant(text)


async def test_two_variants_turning_one_knob_two_ways_are_refused() -> None:
    with pytest.raises(ValueError, match="'records-envelope' and 'bare-list' both set page_style"):
        async with serve("cloudcx", variants=["records-envelope", "bare-list"]):
            pass


async def test_several_variants_of_one_vendor_combine(http: aiohttp.ClientSession) -> None:
    async with serve_all(variants={"cloudcx": ["capped-page", "spring-envelope"]}) as running:
        sandbox = running["cloudcx"]
        assert sandbox.state.variants == ("capped-page", "spring-envelope")
        assert running["wogeez"].state.variants == ()
        page = await get(
            http, sandbox, "/openapi/v2/user/page?pageSize=100", await token_of(http, sandbox)
        )
        assert (len(page.body["content"]), page.body["size"], page.body["totalPages"]) == (
            50,
            50,
            50,
        )


# --- cloud4wi ---------------------------------------------------------------------------------


async def test_cloud4wi_token_in_header_variant_restores_the_header(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("cloud4wi", variants="token-in-header") as sandbox:
        answer = await login(http, sandbox)
        assert answer.headers["Authorization"] == f"Bearer {answer.body['token']}"


@pytest.mark.parametrize(
    ("variant", "shape"),
    [
        ("single-object", "object"),
        ("envelope", "envelope"),
        ("null-data", "null"),
        (None, "list"),
    ],
)
async def test_cloud4wi_organizations_come_in_the_variants_shape(
    variant: str | None, shape: str, http: aiohttp.ClientSession
) -> None:
    async with serve("cloud4wi") as plain, serve("cloud4wi", variants=variant) as sandbox:
        rows = (await get(http, plain, f"{ORGS}/c7", await token_of(http, plain))).body
        body = (await get(http, sandbox, f"{ORGS}/c7", await token_of(http, sandbox))).body
        expected = {
            "list": rows,
            "object": rows[0],
            "envelope": {"code": 0, "data": {"records": rows}},
            "null": {"data": None},
        }[shape]
        assert body == expected


async def test_cloud4wi_forbidden_cid_is_a_lasting_403_with_a_valid_token(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("cloud4wi", variants="forbidden-cid") as sandbox:
        token = await token_of(http, sandbox)
        refused = [await get(http, sandbox, f"{ORGS}/{FORBIDDEN_CID}", token) for _ in range(3)]
        assert {answer.status for answer in refused} == {403}
        assert (await get(http, sandbox, f"{ORGS}/cid-1", token)).status == 200
        assert sandbox.state.counters.rejected == 0  # the token was never the problem


# --- token answers ----------------------------------------------------------------------------


async def test_cloudcx_answers_the_seeds_token_and_refresh_token_is_a_variant(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("cloudcx") as plain, serve("cloudcx", variants="refresh-token") as refreshing:
        seed = (await login(http, plain)).body
        old = (await login(http, refreshing)).body
        assert "refresh_token" not in seed and "scope" not in seed
        assert old["refresh_token"] and old["scope"] == "openapi"


async def test_wogeez_tokens_are_jwts_living_an_hour_unless_a_variant_says_otherwise(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("wogeez") as plain, serve("wogeez", variants="opaque-300s") as opaque:
        jwt = (await login(http, plain)).body
        assert jwt["expires_in"] == 3600
        assert claims(jwt["access_token"])["exp"] - claims(jwt["access_token"])["iat"] == 3600
        old = (await login(http, opaque)).body
        assert old["expires_in"] == 300 and old["access_token"].count(".") == 0
        assert (await protected(http, opaque, old["access_token"])).status == 200


TOKEN_ODDITIES = sorted(
    (vendor, name)
    for vendor, name in variant_pairs()
    if name.startswith(("expires-in-", "token-type-", "scope-", "data-wrapped"))
)


@pytest.mark.parametrize(("vendor", "variant"), TOKEN_ODDITIES)
async def test_token_answers_carry_the_variants_odd_fields(
    vendor: str, variant: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor, variants=variant, token_lifetime=90) as sandbox:
        answer = await login(http, sandbox)
        assert answer.status == 200
        body = answer.body["data"] if variant == "data-wrapped" else answer.body
        token = body.get("access_token") or body.get("accessToken") or body["token"]
        assert (await protected(http, sandbox, token)).status == 200  # a real token
        lifetime = body.get("expires_in", body.get("expiresIn"))
        expected = {
            "expires-in-suffixed": ("lifetime", "90s"),
            "expires-in-empty": ("lifetime", ""),
            "expires-in-true": ("lifetime", True),
            "token-type-null": ("type", None),
            "scope-list": ("scope", body.get("scope")),
            "expires-in-camel": ("keys", {"expiresIn"}),
            "expires-in-snake": ("keys", {"expires_in"}),
            "data-wrapped": ("keys", {"data"}),
        }[variant]
        if expected[0] == "lifetime":
            assert lifetime == expected[1]
        elif expected[0] == "type":
            assert "token_type" in body or "tokenType" in body
            assert body.get("token_type", body.get("tokenType")) is None
        elif expected[0] == "scope":
            assert isinstance(body["scope"], list) and body["scope"]
        else:
            keys = set(answer.body if variant == "data-wrapped" else body)
            assert expected[1] <= keys
            assert keys.isdisjoint({"expires_in", "expiresIn"} - expected[1])


async def test_wokelo_json_login_takes_the_curls_json_and_refuses_multipart_415(
    http: aiohttp.ClientSession,
) -> None:
    async with serve("wokelo", variants="json-login") as sandbox:
        url, form = sandbox.base_url + TOKEN_PATHS["wokelo"], password_form(sandbox)
        as_multipart = await send(http, "POST", url, data=multipart(form))
        assert as_multipart.status == 415
        assert as_multipart.body["detail"].startswith('Unsupported media type "multipart/form-data')
        ok = await send(http, "POST", url, json=form)
        assert ok.status == 200 and ok.body["refresh_token"]
        refresh = {k: form[k] for k in ("client_id", "client_secret")} | {
            "grant_type": "refresh_token",
            "refresh_token": ok.body["refresh_token"],
        }
        assert (await send(http, "POST", url, json=refresh)).status == 200
        assert sandbox.state.counters.failed_logins == 1


REFUSALS = {
    "refresh-refused-401-detail": (
        401,
        {"detail": "Token is invalid or expired", "code": "token_not_valid"},
    ),
    "refresh-refused-invalid-request": (400, {"error": "invalid_request"}),
}


@pytest.mark.parametrize(
    ("vendor", "variant"),
    [(vendor, name) for vendor, name in variant_pairs() if name.startswith("refresh-refused-")],
)
async def test_a_dead_refresh_token_is_refused_as_the_variant_words_it(
    vendor: str, variant: str, http: aiohttp.ClientSession
) -> None:
    async with serve(vendor, variants=variant) as sandbox:
        first = (await login(http, sandbox)).body
        form = {
            k: v for k, v in password_form(sandbox).items() if k in ("client_id", "client_secret")
        }
        form |= {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        url = sandbox.base_url + TOKEN_PATHS[vendor]

        async def refresh() -> Answer:
            data = multipart(form) if vendor == "wokelo" else form
            return await send(http, "POST", url, data=data)

        assert (await refresh()).status == 200
        refused = await refresh()  # the same refresh token again: it has been rotated
        if variant in REFUSALS:
            assert (refused.status, refused.body) == REFUSALS[variant]
        else:
            assert (refused.status, refused.body["error"]) == (400, "invalid_grant")
        assert sandbox.state.counters.failed_logins == 1


# --- pages ------------------------------------------------------------------------------------


async def test_capped_cloudcx_pages_serve_50_and_say_so(http: aiohttp.ClientSession) -> None:
    async with serve("cloudcx", variants="capped-page") as sandbox:
        token = await token_of(http, sandbox)
        path = "/openapi/v2/user/page?pageSize=100&pageIndex="
        first, second = [
            (await get(http, sandbox, f"{path}{i}", token)).body["data"] for i in (1, 2)
        ]
        assert (first["pageSize"], first["total"], len(first["list"])) == (50, 2500, 50)
        assert first["list"][-1]["id"] != second["list"][0]["id"]
        assert int(second["list"][0]["extensionNumber"]) == 1000 + 51  # row 51: no gap
        huge = await get(http, sandbox, "/openapi/v2/user/page?pageSize=1000", token)
        assert (huge.status, huge.body["data"]["pageSize"]) == (200, 50)


async def test_capped_wogeez_pages_serve_50_and_say_so(http: aiohttp.ClientSession) -> None:
    async with serve("wogeez", variants="capped-page") as sandbox:
        token = await token_of(http, sandbox)
        page = (await get(http, sandbox, "/companies?page=1&size=100", token)).body
        assert (page["size"], page["totalElements"], page["totalPages"]) == (50, 300, 6)
        assert (len(page["content"]), page["number"], page["last"]) == (50, 1, False)


ENVELOPES = {
    "records-envelope": lambda body: (body["data"]["records"], body["data"]["total"]),
    "list-envelope": lambda body: (body["data"]["list"], body["data"]["total"]),
    "spring-envelope": lambda body: (body["content"], body["totalElements"]),
    "bare-list": lambda body: (body, None),
}
LISTINGS = {
    "cloudcx": ("/openapi/v2/user/page?pageSize=30&pageIndex={}", 1, 2500),
    "wogeez": ("/companies?size=30&page={}", 0, 300),
}


@pytest.mark.parametrize(
    ("vendor", "variant"), [(vendor, name) for vendor, name in variant_pairs() if name in ENVELOPES]
)
async def test_every_envelope_pages_through_every_row_once(
    vendor: str, variant: str, http: aiohttp.ClientSession
) -> None:
    path, first_index, total = LISTINGS[vendor]
    async with serve(vendor, variants=variant) as sandbox:
        token = await token_of(http, sandbox)
        ids: list[str] = []
        for index in range(first_index, first_index + 200):
            rows, said = ENVELOPES[variant](
                (await get(http, sandbox, path.format(index), token)).body
            )
            assert said in (total, None)
            if not rows:
                break
            ids += [row["id"] for row in rows]
        assert len(ids) == len(set(ids)) == total


# --- the thread runner ------------------------------------------------------------------------


def test_sandbox_thread_serves_variants() -> None:
    with SandboxThread(["cloudcx"], variants={"cloudcx": "refresh-token"}) as thread:
        assert thread.sandboxes["cloudcx"].state.settings.refresh_token is True
