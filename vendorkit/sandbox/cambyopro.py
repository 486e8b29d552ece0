"""CambyoPro emulator: JSON client login for an ``atk_`` token; no logout, no refresh.

CambyoPro documents no API beyond login, so ``GET /api/v1/account`` is SANDBOX-ONLY: one
protected endpoint for exercising authentication. It does not exist on the real service.
Variants send the login answer's optional fields in odd forms.
"""

from __future__ import annotations

from aiohttp import web

from vendorkit.sandbox._core import (
    Call,
    Refusal,
    SandboxState,
    Variant,
    Vendor,
    api,
    auth,
    build_app,
    json_object,
    refuse,
    reply,
    seconds,
    token_reply,
    token_variants,
)

VARIANTS: dict[str, Variant] = token_variants(
    renamed=("expires-in-snake", "expires_in"), scope=False
)


async def login(call: Call) -> web.StreamResponse:
    """POST /api/no-auth/authentication/v1/login with JSON {"clientId", "clientSecret"}."""
    state, request = call.state, call.request
    if request.content_type != "application/json":
        return refuse(
            state, (415, {"success": False, "message": "Content-Type must be application/json"})
        )
    body = await json_object(request) or {}
    client_id, client_secret = body.get("clientId"), body.get("clientSecret")
    if not (
        isinstance(client_id, str)
        and client_id
        and isinstance(client_secret, str)
        and client_secret
    ):
        return refuse(
            state, (400, {"success": False, "message": "clientId and clientSecret are required"})
        )
    if (client_id, client_secret) != (
        state.credentials["client_id"],
        state.credentials["client_secret"],
    ):
        return refuse(state, (401, {"success": False, "message": "Invalid credentials."}))
    grant = state.login(client_id)
    return token_reply(
        state,
        {
            "success": True,
            "accessToken": grant.access.value,
            "tokenType": "Bearer",
            "message": "API client authenticated successfully",
            "expiresIn": seconds(state.token_lifetime),
        },
    )


async def account(call: Call) -> web.StreamResponse:
    """GET /api/v1/account -- sandbox-only: who the bearer token belongs to."""
    return reply(200, {"success": True, "clientId": call.bearer.subject, "company": "Sandbox Co."})


def reject(refusal: Refusal) -> web.Response:
    return reply(401, {"success": False, "message": "Invalid or expired token."})


def make_app(state: SandboxState) -> web.Application:
    return build_app(
        state,
        [
            auth("POST", "/api/no-auth/authentication/v1/login", login),
            api("GET", "/api/v1/account", account),
        ],
        reject,
    )


VENDOR = Vendor(
    name="cambyopro",
    credentials={
        "client_id": "cbp-sandbox-client",
        "client_secret": "4XWvoqzF4JTa7KRuSRfP6q7GuI2e1_4Qed2b0f4d5a953cb0",
    },
    token_lifetime=86400,
    make_app=make_app,
    token_prefix="atk_",
    variants=VARIANTS,
)
