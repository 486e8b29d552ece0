"""CloudCX emulator: Spring Authorization Server password/refresh grants, an API key, users.

The API key in ``credentials["api_key"]`` is accepted as a bearer token and never expires.
The token answer is the seed's example: access_token, token_type, expires_in, no refresh
token (the "refresh-token" variant adds one). Variants cap the page size and wrap pages
in other envelopes.
"""

from __future__ import annotations

import datetime
import random
from functools import cache

from aiohttp import web

from vendorkit.sandbox._core import (
    Call,
    Grant,
    OAuthDialect,
    PageRequest,
    Refusal,
    SandboxState,
    Variant,
    Vendor,
    api,
    auth,
    build_app,
    oauth_token_endpoint,
    page_body,
    refresh_variants,
    reply,
    seconds,
    token_variants,
)

USER_COUNT = 2500
MAX_PAGE_SIZE = 200
OAUTH_FIELDS = ("client_id", "client_secret", "username", "password")
FIRST = (
    "Ana",
    "Ben",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Goran",
    "Hana",
    "Ivan",
    "Julia",
    "Kenji",
    "Lena",
    "Marco",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
)
LAST = (
    "Silva",
    "Okafor",
    "Wang",
    "Novak",
    "Berg",
    "Haddad",
    "Kowalski",
    "Sato",
    "Rossi",
    "Meyer",
    "Dubois",
    "Patel",
    "Jensen",
    "Moreau",
    "Costa",
    "Larsen",
    "Ivanova",
    "Tanaka",
    "Nilsen",
)


def _token_fields(state: SandboxState, grant: Grant) -> dict[str, object]:
    """The seed's answer; with a refresh token (a variant), a scope as well."""
    fields: dict[str, object] = {
        "access_token": grant.access.value,
        "token_type": "Bearer",
        "expires_in": seconds(state.token_lifetime),
    }
    if grant.refresh is not None:
        fields["refresh_token"] = grant.refresh.value
    if grant.refresh is not None or state.settings.scope_list:
        fields["scope"] = "openapi"
    return fields


REFRESH = {"refresh_token": True}
VARIANTS: dict[str, Variant] = {
    "refresh-token": Variant(
        "logins also return a refresh token and a scope; a dead refresh token is refused "
        "400 invalid_grant",
        REFRESH,
    ),
    **refresh_variants(REFRESH),
    "capped-page": Variant(
        "at most 50 users a page whatever pageSize asks; the envelope says pageSize: 50",
        {"page_cap": 50},
    ),
    "records-envelope": Variant(
        'pages as {"code": 0, "data": {"records": [...], "total": N, "size", "current"}}',
        {"page_style": "records"},
    ),
    "spring-envelope": Variant(
        'Spring pages: {"content": [...], "totalElements", "totalPages", "last", "size", "number"}',
        {"page_style": "spring"},
    ),
    "bare-list": Variant("pages as a bare JSON list, no total", {"page_style": "bare"}),
    **token_variants(renamed=("expires-in-camel", "expiresIn"), scope=True),
}


DIALECT = OAuthDialect(
    content_type="application/x-www-form-urlencoded",
    unreadable=(
        400,
        {"error": "invalid_request", "error_description": "OAuth 2.0 Parameter: grant_type"},
    ),
    unsupported=(
        400,
        {"error": "unsupported_grant_type", "error_description": "OAuth 2.0 Parameter: grant_type"},
    ),
    bad_client=(401, {"error": "invalid_client"}),
    bad_user=(400, {"error": "invalid_grant", "error_description": "Bad credentials"}),
    dead_refresh=(400, {"error": "invalid_grant"}),
    missing=lambda name: (
        400,
        {"error": "invalid_request", "error_description": f"OAuth 2.0 Parameter: {name}"},
    ),
    token_fields=_token_fields,
)


@cache
def users() -> tuple[dict[str, object], ...]:
    """2,500 users, the same on every run."""
    rng = random.Random("cloudcx")
    start = datetime.datetime(2022, 1, 1, tzinfo=datetime.UTC)
    seeded: list[dict[str, object]] = []
    for number in range(1, USER_COUNT + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        user_name = f"{first[0]}{last}{number:04d}".lower()
        created = start + datetime.timedelta(seconds=rng.randrange(3 * 365 * 86400))
        seeded.append(
            {
                "id": str(260390634491792800 + number * 7919),
                "userName": user_name,
                "displayName": f"{first} {last}",
                "email": f"{user_name}@cloudcx.test",
                "extensionNumber": str(1000 + number),
                "status": 1 if rng.random() < 0.9 else 0,
                "role": rng.choice(("agent", "agent", "agent", "supervisor", "admin")),
                "createTime": created.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
    return tuple(seeded)


async def user_page(call: Call) -> web.StreamResponse:
    """GET /openapi/v2/user/page?pageIndex=1&pageSize=25&keywords= (pageIndex is 1-based)."""
    query = call.request.query
    page_index, page_size = (
        _positive(query.get("pageIndex", "1")),
        _positive(query.get("pageSize", "10")),
    )
    if page_index is None:
        return reply(400, {"code": 400, "msg": "pageIndex must be a positive integer"})
    capped = call.state.settings.page_cap is not None  # a capped server serves less, silently
    if page_size is None or (page_size > MAX_PAGE_SIZE and not capped):
        return reply(400, {"code": 400, "msg": f"pageSize must be between 1 and {MAX_PAGE_SIZE}"})
    keywords = query.get("keywords", "").strip().lower()
    matching = [
        u
        for u in users()
        if not keywords
        or any(keywords in str(u[field]).lower() for field in ("userName", "displayName", "email"))
    ]
    asked = PageRequest(page_index, page_size, first_index=1)
    return web.json_response(page_body(call.state.settings, "cloudcx", matching, asked))


def _positive(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def reject(refusal: Refusal) -> web.Response:
    return reply(401, {"code": 401, "msg": "Unauthorized"})


def make_app(state: SandboxState) -> web.Application:
    state.add_static_token(state.credentials["api_key"], subject="api-key")
    return build_app(
        state,
        [
            auth("POST", "/oauth/token", oauth_token_endpoint(DIALECT)),
            api("GET", "/openapi/v2/user/page", user_page),
        ],
        reject,
    )


def client_kwargs(base_url: str, credentials: dict[str, str]) -> dict[str, str]:
    """The OAuth2 fields only; the API key stays in ``credentials``."""
    return {"base_url": base_url} | {name: credentials[name] for name in OAUTH_FIELDS}


VENDOR = Vendor(
    name="cloudcx",
    credentials={
        "client_id": "260390634491792831814845",
        "client_secret": "6d624c35-978b-4c1e-9f2a-59d727f2ea19",
        "username": "sandbox.admin",
        "password": "g1xDQbHNTCu7-wnZ11Wh",
        "api_key": "cxk_61QCFxxsNA1ZuHxbP9egY9JPUlzswhCx707f00113904151c",
    },
    token_lifetime=3599,
    make_app=make_app,
    client_kwargs=client_kwargs,
    token_style="jwt",
    settings={"refresh_token": False},
    variants=VARIANTS,
)
