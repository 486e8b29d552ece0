"""Wogeez emulator: a Keycloak realm (discovery, token, logout, revoke) and the company API.

The public client ``wogeez-api`` has no secret. Refresh tokens rotate and a replayed one is
refused and ends its session, as with Keycloak's "Revoke Refresh Token". The API is served
from the root of the same server, so ``api_base_url`` is the base URL itself. As the seed
shows, access tokens are JWTs living 3600 s. Variants: opaque 300 s tokens (the sandbox's
old default), other refusals of a dead refresh token, capped pages, other page envelopes,
odd token answers.
"""

from __future__ import annotations

import collections
import random
import uuid
from collections.abc import Sequence
from functools import cache

from aiohttp import web

from vendorkit.sandbox._core import (
    Call,
    Grant,
    OAuthDialect,
    PageRequest,
    Refusal,
    Reply,
    SandboxState,
    Variant,
    Vendor,
    api,
    auth,
    basic_credentials,
    build_app,
    form_fields,
    oauth_token_endpoint,
    page_body,
    refresh_variants,
    reply,
    seconds,
    token_variants,
)

REALM = "/realms/wogeez"
OIDC = f"{REALM}/protocol/openid-connect"
FORM = "application/x-www-form-urlencoded"
COMPANY_COUNT = 300
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 2000  # Spring Data's defaults
FILTER_FIELDS = ("country", "sector", "headcount")  # not "size": that is the page size
COUNTRIES = {
    "FR": "France",
    "DE": "Germany",
    "ES": "Spain",
    "IT": "Italy",
    "BE": "Belgium",
    "NL": "Netherlands",
    "PT": "Portugal",
}
SECTORS = (
    "Agrifood",
    "Construction",
    "Energy",
    "Healthcare",
    "Industry",
    "Retail",
    "Software",
    "Transport",
)
HEADCOUNTS = ("1-10", "11-50", "51-200", "201-1000", "1000+")
SYLLABLES = ("ga", "lo", "mi", "ver", "tes", "bra", "no", "vi", "ka", "ren", "sol", "dor", "ti")


def _token_fields(state: SandboxState, grant: Grant) -> dict[str, object]:
    assert grant.refresh is not None
    return {
        "access_token": grant.access.value,
        "expires_in": seconds(state.token_lifetime),
        "refresh_expires_in": seconds(state.refresh_lifetime),
        "refresh_token": grant.refresh.value,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "session_state": grant.session,
        "scope": "openid profile email",
    }


BAD_CLIENT: Reply = (
    401,
    {
        "error": "invalid_client",
        "error_description": "Invalid client or Invalid client credentials",
    },
)
DIALECT = OAuthDialect(
    content_type=FORM,
    unreadable=(
        400,
        {"error": "invalid_request", "error_description": "Missing form parameter: grant_type"},
    ),
    unsupported=(
        400,
        {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"},
    ),
    bad_client=BAD_CLIENT,
    bad_user=(401, {"error": "invalid_grant", "error_description": "Invalid user credentials"}),
    dead_refresh=(400, {"error": "invalid_grant", "error_description": "Token is not active"}),
    missing=lambda name: (
        400,
        {"error": "invalid_request", "error_description": f"Missing parameter: {name}"},
    ),
    token_fields=_token_fields,
    secret_required=False,
    replay_ends_session=True,
)


VARIANTS: dict[str, Variant] = {
    "opaque-300s": Variant(
        "opaque access tokens living 300 s (Keycloak's default lifespan)",
        {"token_style": "opaque", "token_lifetime": 300},
    ),
    **refresh_variants(),
    "capped-page": Variant(
        "at most 50 companies a page whatever size asks; the page says size: 50",
        {"page_cap": 50},
    ),
    "list-envelope": Variant(
        'pages as {"data": {"list": [...], "total": N, "pageSize": S}}', {"page_style": "list"}
    ),
    "records-envelope": Variant(
        'pages as {"code": 0, "data": {"records": [...], "total": N, "size", "current"}}',
        {"page_style": "records"},
    ),
    "bare-list": Variant("pages as a bare JSON list, no total", {"page_style": "bare"}),
    **token_variants(renamed=("expires-in-camel", "expiresIn"), scope=True),
}


async def discovery(call: Call) -> web.StreamResponse:
    """GET /realms/wogeez/.well-known/openid-configuration, URLs built from the request's host."""
    base = f"{call.request.scheme}://{call.request.host}"
    oidc = base + OIDC
    return web.json_response(
        {
            "issuer": base + REALM,
            "authorization_endpoint": f"{oidc}/auth",
            "token_endpoint": f"{oidc}/token",
            "introspection_endpoint": f"{oidc}/token/introspect",
            "userinfo_endpoint": f"{oidc}/userinfo",
            "end_session_endpoint": f"{oidc}/logout",
            "revocation_endpoint": f"{oidc}/revoke",
            "jwks_uri": f"{oidc}/certs",
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
        }
    )


async def certs(call: Call) -> web.StreamResponse:
    """GET .../certs: no keys; the sandbox's HS256 tokens are checked by the server alone."""
    return web.json_response({"keys": []})


async def _client_form(call: Call) -> dict[str, str] | web.Response:
    """The form of a logout or revoke request from the realm's client, or the refusal."""
    if call.request.content_type != FORM:
        return reply(
            400, {"error": "invalid_request", "error_description": f"Content-Type must be {FORM}"}
        )
    form = await form_fields(call.request)
    basic = basic_credentials(call.request)
    client_id = basic[0] if basic else form.get("client_id")
    return form if client_id == call.state.credentials["client_id"] else reply(*BAD_CLIENT)


async def logout(call: Call) -> web.StreamResponse:
    """POST .../logout with client_id and refresh_token: 204, the session's tokens die."""
    form = await _client_form(call)
    if isinstance(form, web.Response):
        return form
    if not form.get("refresh_token"):
        return reply(400, {"error": "invalid_request", "error_description": "No refresh token"})
    if not call.state.end_session(form["refresh_token"]):
        return reply(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
    call.state.counters.logouts += 1
    return web.Response(status=204)


async def revoke(call: Call) -> web.StreamResponse:
    """POST .../revoke (RFC 7009) with token and client_id: 200 even for an unknown token."""
    form = await _client_form(call)
    if isinstance(form, web.Response):
        return form
    if not form.get("token"):
        return reply(400, {"error": "invalid_request", "error_description": "Token not provided"})
    if form.get("token_type_hint", "access_token") not in ("access_token", "refresh_token"):
        return reply(
            400, {"error": "unsupported_token_type", "error_description": "Unsupported token type"}
        )
    if call.state.revoke(form["token"]):
        call.state.counters.revocations += 1
    return web.Response(status=200)


async def userinfo(call: Call) -> web.StreamResponse:
    subject = call.bearer.subject
    return web.json_response(
        {
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, subject)),
            "preferred_username": subject,
            "email_verified": True,
            "email": f"{subject}@wogeez.test",
        }
    )


@cache
def companies() -> tuple[dict[str, object], ...]:
    """300 companies, the same on every run."""
    rng = random.Random("wogeez")
    seeded = []
    for number in range(1, COMPANY_COUNT + 1):
        name = "".join(rng.sample(SYLLABLES, rng.randint(2, 3))).capitalize()
        country = rng.choice(sorted(COUNTRIES))
        seeded.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "name": f"{name} {rng.choice(('SAS', 'GmbH', 'SL', 'SRL', 'BV'))} {number}",
                "country": country,
                "countryName": COUNTRIES[country],
                "sector": rng.choice(SECTORS),
                "headcount": rng.choice(HEADCOUNTS),
                "foundedYear": rng.randint(1950, 2023),
                "website": f"https://{name.lower()}.test",
            }
        )
    return tuple(seeded)


async def search_filters(call: Call) -> web.StreamResponse:
    """GET /resources/search/filters: each filterable field with its values and counts."""
    items = []
    for field in FILTER_FIELDS:
        counts = collections.Counter(str(c[field]) for c in companies())
        parameters = [
            {
                "name": COUNTRIES.get(value, value) if field == "country" else value,
                "value": value,
                "count": counts[value],
            }
            for value in sorted(counts)
        ]
        items.append(
            {
                "field": field,
                "definition": {"type": "TERMS", "parameters": parameters},
                "scope": "COMPANY",
            }
        )
    return web.json_response({"items": items})


async def search(call: Call) -> web.StreamResponse:
    """GET /resources/search?country=FR&sector=...&q=&page=0&size=20 (filters AND, values OR)."""
    query = call.request.query
    found = list(companies())
    for field in FILTER_FIELDS:
        wanted = {v for raw in query.getall(field, []) for v in raw.split(",") if v}
        if wanted:
            found = [c for c in found if c[field] in wanted]
    text = query.get("q", "").lower()
    return _page(call, [c for c in found if text in str(c["name"]).lower()])


async def list_companies(call: Call) -> web.StreamResponse:
    """GET /companies?page=0&size=20"""
    return _page(call, companies())


def _page(call: Call, rows: Sequence[dict[str, object]]) -> web.Response:
    """A Spring Data page; like Spring, bad page/size values fall back to defaults."""
    query = call.request.query
    page = max(_int(query.get("page"), 0), 0)
    size = min(_int(query.get("size"), DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    size = size if size > 0 else DEFAULT_PAGE_SIZE
    asked = PageRequest(page, size, first_index=0)
    return web.json_response(page_body(call.state.settings, "spring", rows, asked))


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def reject(refusal: Refusal) -> web.Response:
    description = "Token expired" if refusal == "expired" else "Token is not active"
    return reply(
        401,
        {"error": "invalid_token", "error_description": description},
        **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def make_app(state: SandboxState) -> web.Application:
    return build_app(
        state,
        [
            auth("GET", f"{REALM}/.well-known/openid-configuration", discovery),
            auth("POST", f"{OIDC}/token", oauth_token_endpoint(DIALECT)),
            auth("POST", f"{OIDC}/logout", logout),
            auth("POST", f"{OIDC}/revoke", revoke),
            auth("GET", f"{OIDC}/certs", certs),
            auth("GET", f"{OIDC}/userinfo", userinfo, protected=True),
            api("GET", "/resources/search/filters", search_filters),
            api("GET", "/resources/search", search),
            api("GET", "/companies", list_companies),
        ],
        reject,
    )


def client_kwargs(base_url: str, credentials: dict[str, str]) -> dict[str, str]:
    return {"issuer": base_url + REALM, "api_base_url": base_url, **credentials}


VENDOR = Vendor(
    name="wogeez",
    credentials={
        "username": "sandbox-user",
        "password": "YW-hRkcF1gzBviYkX5oH",
        "client_id": "wogeez-api",
    },
    token_lifetime=3600,
    make_app=make_app,
    client_kwargs=client_kwargs,
    token_style="jwt",
    variants=VARIANTS,
)
