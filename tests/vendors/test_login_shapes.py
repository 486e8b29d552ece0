"""The login request each client sends, recorded by a server impersonating the vendor.

Each expectation is the vendor's documentation, not the client's code: method, path,
Content-Type and the exact field names (and the fixed values, such as ``grant_type``).
The recorder answers the documented success body, so the client's token is then seen on
an API call too.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import pytest

from vendorkit import (
    CambyoProClient,
    Cloud4WiClient,
    CloudCXClient,
    VendorClient,
    WogeezClient,
    WokeloClient,
)

StartRecorder = Callable[[Mapping[tuple[str, str], Any]], Awaitable[Any]]
ISSUER_PATH = "/auth/realms/any-realm"
DISCOVERED_TOKEN_PATH = "/idp/oauth2/token-endpoint"  # only discovery names it


def _jwt(exp: int) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': 'ck', 'exp': exp})}.c2ln"


OAUTH_ANSWER = {"access_token": "at-recorded", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "rt-recorded"}


@attrs.frozen
class Documented:
    """What the vendor's documentation says its login request is."""

    vendor: str
    method: str
    path: str
    content_type: str
    #: Field name -> its value: a constructor argument's name, or ("=", fixed value).
    fields: Mapping[str, str | tuple[str, str]]
    answer: Mapping[str, Any]
    make: Callable[[str, Mapping[str, str]], VendorClient]


CREDENTIALS = {
    "client_key": "ck-rec", "client_id": "cid-rec", "client_secret": "cs-rec-9Xb2",
    "username": "user-rec", "password": "pw-rec-4Lm7",
}

DOCUMENTED = [
    Documented(
        "cloud4wi", "POST", "/v1/sts/login/services", "application/json",
        {"clientKey": "client_key", "clientSecret": "client_secret"},
        {"token": _jwt(int(time.time()) + 3600)},
        lambda url, c: Cloud4WiClient(c["client_key"], c["client_secret"], base_url=url),
    ),
    Documented(
        "wokelo", "POST", "/auth/token/", "multipart/form-data",
        {"client_id": "client_id", "client_secret": "client_secret", "username": "username",
         "password": "password", "grant_type": ("=", "password")},
        OAUTH_ANSWER,
        lambda url, c: WokeloClient(c["client_id"], c["client_secret"], c["username"],
                                    c["password"], base_url=url),
    ),
    Documented(
        "cloudcx", "POST", "/oauth/token", "application/x-www-form-urlencoded",
        {"client_id": "client_id", "client_secret": "client_secret",
         "grant_type": ("=", "password"), "username": "username", "password": "password"},
        OAUTH_ANSWER,
        lambda url, c: CloudCXClient(url, client_id=c["client_id"],
                                     client_secret=c["client_secret"], username=c["username"],
                                     password=c["password"]),
    ),
    Documented(
        "cambyopro", "POST", "/api/no-auth/authentication/v1/login", "application/json",
        {"clientId": "client_id", "clientSecret": "client_secret"},
        {"success": True, "accessToken": "atk_recorded", "tokenType": "Bearer",
         "message": "API client authenticated successfully", "expiresIn": 86400},
        lambda url, c: CambyoProClient(c["client_id"], c["client_secret"], base_url=url),
    ),
    Documented(
        "wogeez", "POST", DISCOVERED_TOKEN_PATH, "application/x-www-form-urlencoded",
        {"client_id": "client_id", "username": "username", "password": "password",
         "grant_type": ("=", "password")},
        OAUTH_ANSWER,
        lambda url, c: WogeezClient(c["username"], c["password"], client_id=c["client_id"],
                                    issuer=url + ISSUER_PATH, api_base_url=url),
    ),
]


def _add_discovery(server: Any) -> None:
    """Discovery names the token endpoint (for Wogeez; harmless for the others)."""
    server.routes[("GET", ISSUER_PATH + "/.well-known/openid-configuration")] = (200, {
        "issuer": server.base_url + ISSUER_PATH,
        "token_endpoint": server.base_url + DISCOVERED_TOKEN_PATH,
    })


def _expected_fields(doc: Documented) -> dict[str, str]:
    return {name: value[1] if isinstance(value, tuple) else CREDENTIALS[value]
            for name, value in doc.fields.items()}


@pytest.mark.parametrize("doc", DOCUMENTED, ids=lambda d: d.vendor)
async def test_login_request_is_exactly_what_the_vendor_documents(
    doc: Documented, recorder: StartRecorder
) -> None:
    server = await recorder({(doc.method, doc.path): (200, doc.answer)})
    _add_discovery(server)
    async with doc.make(server.base_url, CREDENTIALS) as client:
        token = await client.login()
        await client.request("GET", "/probe")

    [login] = server.find(doc.method, doc.path)
    assert login.content_type == doc.content_type
    assert dict(login.fields) == _expected_fields(doc)  # names, values, nothing else
    assert login.file_parts == ()
    assert "Authorization" not in login.headers  # credentials travel in the body only
    [probe] = server.find("GET", "/probe")
    assert probe.headers["Authorization"] == f"Bearer {token.access_token}"


@pytest.mark.parametrize("doc", [d for d in DOCUMENTED if d.content_type == "application/json"],
                         ids=lambda d: d.vendor)
async def test_json_logins_send_a_json_object_body(
    doc: Documented, recorder: StartRecorder
) -> None:
    server = await recorder({(doc.method, doc.path): (200, doc.answer)})
    async with doc.make(server.base_url, CREDENTIALS) as client:
        await client.login()
    [login] = server.find(doc.method, doc.path)
    assert login.headers["Content-Type"] == "application/json"
    assert sorted(login.fields) == sorted(doc.fields)


async def test_wogeez_asks_discovery_before_the_token_endpoint(recorder: StartRecorder) -> None:
    doc = DOCUMENTED[-1]
    server = await recorder({(doc.method, doc.path): (200, doc.answer)})
    _add_discovery(server)
    async with doc.make(server.base_url, CREDENTIALS) as client:
        await client.login()
    assert [(r.method, r.path) for r in server.requests][:2] == [
        ("GET", ISSUER_PATH + "/.well-known/openid-configuration"),
        ("POST", DISCOVERED_TOKEN_PATH),
    ]
