"""A server's answer cannot send a credential elsewhere, exhaust memory, or leak the token
through an exception chain (issue 16, points 1, 2, 3 and 8)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import traceback
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import attrs
import pytest
from aiohttp import web

from tests.conftest import MakeManager
from tests.toy import CLIENT_SECRET, PASSWORD, Toy, json_login, oauth2_grant
from vendorkit import (
    APIKeyAuth,
    ConnectError,
    OIDCPasswordGrant,
    RedirectError,
    ResponseParseError,
    ResponseTooLargeError,
    SessionManager,
    TimeoutError,
    VendorkitError,
)
from vendorkit.sandbox import serve_app

API_KEY = "vk-api-key-Zq8Lm2Xw5Rt9"


@contextlib.asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 on a free port (yielded) until the block ends."""
    async with serve_app(app) as base_url:
        yield int(base_url.rsplit(":", 1)[1])


@attrs.define
class Elsewhere:
    """Another origin on 127.0.0.1 (another port): records whatever reaches it."""

    base_url: str = ""
    received: list[str] = attrs.Factory(list)

    async def record(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.received.append(f"{request.method} {request.path} {dict(request.headers)} {body}")
        return web.json_response({"access_token": "stolen-session-token", "expires_in": 60})


@pytest.fixture
async def elsewhere() -> AsyncIterator[Elsewhere]:
    other = Elsewhere()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", other.record)
    async with _serving(app) as port:
        other.base_url = f"http://localhost:{port}"  # another host name and port: another origin
        yield other


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _assert_no_aiohttp_object_in_chain(exc: BaseException) -> None:
    for link in _chain(exc):
        assert not type(link).__module__.startswith("aiohttp"), type(link)
        for value in vars(link).values() if hasattr(link, "__dict__") else ():
            assert not type(value).__module__.startswith("aiohttp.client"), type(value)


# --- 1. redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_login_redirected_to_another_origin_is_refused_and_nothing_is_sent_there(
    toy: Toy, make_manager: MakeManager, elsewhere: Elsewhere, status: int
) -> None:
    manager = make_manager("json")
    toy.answer_next(1, route="POST /login", status=status,
                    headers={"Location": elsewhere.base_url + "/login"})

    with pytest.raises(RedirectError) as caught:
        await manager.request("GET", "/data")

    assert elsewhere.received == []
    assert caught.value.source == toy.base_url and caught.value.target == elsewhere.base_url
    assert elsewhere.base_url in str(caught.value) and toy.base_url in str(caught.value)
    assert PASSWORD not in str(caught.value)


async def test_a_login_redirected_to_plain_http_off_loopback_is_refused_without_a_lookup(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("oauth2")
    toy.answer_next(1, route="POST /oauth/token", status=308,
                    headers={"Location": "http://vendor.example.test/oauth/token"})

    with pytest.raises(RedirectError) as caught:
        await manager.login()

    assert caught.value.target == "http://vendor.example.test"
    assert CLIENT_SECRET not in str(caught.value)


async def test_a_login_redirected_within_its_own_origin_is_not_followed_either(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    toy.answer_next(1, route="POST /login", status=307, headers={"Location": "/login"})

    with pytest.raises(RedirectError):
        await manager.login()

    assert toy.counters.requests["POST /login"] == 1


async def test_an_api_key_in_a_custom_header_never_follows_a_redirect_to_another_origin(
    toy: Toy, elsewhere: Elsewhere
) -> None:
    auth = APIKeyAuth(vendor="toy", api_key=API_KEY, header_name="X-API-Key", scheme="")
    async with SessionManager(toy.base_url, auth) as manager:
        toy.answer_next(1, status=302, headers={"Location": elsewhere.base_url + "/data"})

        with pytest.raises(RedirectError):
            await manager.request("GET", "/data")

    assert elsewhere.received == []


async def test_an_api_call_follows_a_redirect_within_the_vendors_origin(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    toy.answer_next(1, status=302, headers={"Location": "/data?moved=1"})

    response = await manager.request("GET", "/data")

    assert response.status == 200 and response.json()["generation"] == 1
    assert toy.counters.requests["GET /data"] == 2  # the redirect, then its target, token kept


async def test_a_redirect_loop_is_a_typed_error_whose_chain_holds_no_request_headers(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    toy.answer_next(20, status=302, headers={"Location": "/data"})

    with pytest.raises(RedirectError) as caught:
        await manager.request("GET", "/data")

    assert "more than 10 redirects" in str(caught.value)
    _assert_no_aiohttp_object_in_chain(caught.value)


# --- 8. exception chains ----------------------------------------------------------------------


async def test_a_refused_connection_raises_an_error_with_no_aiohttp_exception_in_its_chain(
    toy: Toy,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manager = SessionManager(f"http://127.0.0.1:{port}", oauth2_grant(toy),
                             retry=__import__("vendorkit").RetryPolicy.never())
    try:
        with pytest.raises(ConnectError) as caught:
            await manager.request("GET", "/data")
    finally:
        await manager.aclose()

    assert caught.value.__context__ is None and caught.value.__cause__ is None
    _assert_no_aiohttp_object_in_chain(caught.value)


async def test_a_timeout_raises_an_error_with_no_aiohttp_exception_in_its_chain(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json", timeout=0.2,
                           retry=__import__("vendorkit").RetryPolicy.never())
    await manager.login()
    toy.answer_next(1, status=200, delay=1.0)

    with pytest.raises(TimeoutError) as caught:
        await manager.request("GET", "/data")

    _assert_no_aiohttp_object_in_chain(caught.value)


# --- 2. OpenID Connect discovery -------------------------------------------------------------


@attrs.define
class Issuer:
    """A Keycloak-like issuer on 127.0.0.1 whose discovery document a test writes."""

    base_url: str = ""
    document: dict[str, object] = attrs.Factory(dict)
    token_requests: int = 0

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(self.document)

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        return web.json_response({"access_token": "issued-here", "expires_in": 60})


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    it = Issuer()
    app = web.Application()
    app.router.add_get("/realms/r/.well-known/openid-configuration", it.discovery)
    app.router.add_post("/realms/r/token", it.token)
    async with _serving(app) as port:
        it.base_url = f"http://127.0.0.1:{port}"
        yield it


def _oidc(issuer: Issuer, **options: object) -> OIDCPasswordGrant:
    return OIDCPasswordGrant(vendor="oidc", issuer=issuer.base_url + "/realms/r",
                             client_id="c", client_secret=CLIENT_SECRET, username="u",
                             password=PASSWORD, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", ["other-host", "plain-http-off-loopback", "issuer-mismatch"])
async def test_a_discovery_document_pointing_credentials_elsewhere_is_refused(
    issuer: Issuer, elsewhere: Elsewhere, case: str
) -> None:
    own = issuer.base_url + "/realms/r"
    issuer.document = {"issuer": own, "token_endpoint": own + "/token"}
    if case == "other-host":
        issuer.document["token_endpoint"] = elsewhere.base_url + "/token"
    elif case == "plain-http-off-loopback":
        issuer.document["revocation_endpoint"] = "http://idp.example.test/revoke"
    else:
        issuer.document["issuer"] = elsewhere.base_url + "/realms/r"

    async with SessionManager(issuer.base_url, _oidc(issuer)) as manager:
        with pytest.raises(ResponseParseError) as caught:
            await manager.login()

    assert "discovery" in str(caught.value)
    assert elsewhere.received == [] and issuer.token_requests == 0
    assert PASSWORD not in str(caught.value) and CLIENT_SECRET not in str(caught.value)


async def test_a_discovered_endpoint_on_an_explicitly_trusted_host_is_used(
    issuer: Issuer, elsewhere: Elsewhere
) -> None:
    own = issuer.base_url + "/realms/r"
    issuer.document = {"issuer": own, "token_endpoint": elsewhere.base_url + "/token"}

    auth = _oidc(issuer, trusted_hosts=frozenset({"localhost"}))
    async with SessionManager(issuer.base_url, auth) as manager:
        token = await manager.login()

    assert token.access_token == "stolen-session-token"  # the caller allowed that host
    assert len(elsewhere.received) == 1


# --- 3. bounded bodies -------------------------------------------------------------------------


@attrs.define
class Big:
    base_url: str = ""

    async def body(self, request: web.Request) -> web.StreamResponse:
        size, status = int(request.query["size"]), int(request.query.get("status", "200"))
        if request.query.get("chunked"):
            response = web.StreamResponse(status=status)
            response.enable_chunked_encoding()
            await response.prepare(request)
            chunk = b"x" * 65536
            for _ in range(size // len(chunk)):
                await response.write(chunk)
            await response.write_eof()
            return response
        payload = json.dumps({"message": "too big", "pad": "x" * size}).encode()
        return web.Response(status=status, body=payload, content_type="application/json")


@pytest.fixture
async def big() -> AsyncIterator[Big]:
    it = Big()
    app = web.Application()
    app.router.add_get("/big", it.body)
    async with _serving(app) as port:
        it.base_url = f"http://127.0.0.1:{port}"
        yield it


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_past_max_body_size_is_a_typed_error_keeping_status_and_headers(
    toy: Toy, big: Big, chunked: bool
) -> None:
    async with SessionManager(big.base_url, oauth2_grant(toy), max_body_size=1 << 20) as manager:
        query = {"size": str(4 << 20), **({"chunked": "1"} if chunked else {})}
        with pytest.raises(ResponseTooLargeError) as caught:
            await manager.request("GET", "/big", params=query, authenticate=False)

    assert caught.value.status == 200 and caught.value.limit == 1 << 20
    assert caught.value.headers  # the answer's headers are kept


async def test_an_error_body_is_read_only_as_far_as_its_excerpt_needs(
    toy: Toy, big: Big
) -> None:
    async with SessionManager(big.base_url, oauth2_grant(toy), max_body_size=1 << 20,
                              retry=__import__("vendorkit").RetryPolicy.never()) as manager:
        with pytest.raises(VendorkitError) as caught:  # 50 MB error answer, 1 MiB cap
            await manager.request("GET", "/big", params={"size": str(50 << 20),
                                                         "status": "500"}, authenticate=False)

    assert getattr(caught.value, "status", None) == 500
    assert not isinstance(caught.value, ResponseTooLargeError)


async def test_a_body_within_the_cap_is_read_whole(toy: Toy, big: Big) -> None:
    async with SessionManager(big.base_url, oauth2_grant(toy)) as manager:
        response = await manager.request("GET", "/big", params={"size": str(2 << 20)},
                                         authenticate=False)

    assert len(response.json()["pad"]) == 2 << 20


async def test_max_body_size_is_validated() -> None:
    with pytest.raises(VendorkitError, match="max_body_size"):
        SessionManager("http://127.0.0.1:1", APIKeyAuth(vendor="t", api_key=API_KEY),
                       max_body_size=0)
    await asyncio.sleep(0)
    assert aiohttp  # the module is used by the fixtures' servers


# --- 9. a traceback rendered with its frames' locals ------------------------------------------


@pytest.mark.parametrize("kind", ["json", "oauth2"])
async def test_a_login_traceback_with_captured_locals_shows_no_credential(
    toy: Toy, make_manager: MakeManager, kind: str
) -> None:
    import traceback

    manager = make_manager(kind, retry=__import__("vendorkit").RetryPolicy.never())
    route = "POST /login" if kind == "json" else "POST /oauth/token"
    toy.answer_next(1, route=route, status=307, headers={"Location": "/elsewhere"})

    with pytest.raises(RedirectError) as caught:
        await manager.login()

    rendered = "".join(traceback.TracebackException.from_exception(
        caught.value, capture_locals=True).format())
    assert PASSWORD not in rendered and CLIENT_SECRET not in rendered
    assert "password" in rendered or "username" in rendered  # the frames were rendered


# --- the secret scan, over every hostile answer above ----------------------------------------

#: A password that JSON escapes and a URL encodes: an echo of it is never the literal text.
AWKWARD = 'Pa"ss/w0rd &=+ \u00e9-Qx7\\'


def _forms(secret: str) -> set[str]:
    """``secret`` as a server may echo it: verbatim, JSON-escaped, URL-encoded."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            quote(secret, safe=""), quote_plus(secret)}


def _exception_text(exc: BaseException) -> str:
    """What an error reporter walking the chain could ship: each link's text, repr,
    traceback and attributes (a ``request_info`` with its headers, say)."""
    parts = ["".join(traceback.format_exception(exc))]
    for link in _chain(exc):
        parts += [str(link), repr(link)]
        parts += [repr(value) for value in getattr(link, "__dict__", {}).values()]
    return "\n".join(parts)


async def test_no_hostile_answer_puts_a_secret_anywhere_in_any_form(
    toy: Toy, make_manager: MakeManager, elsewhere: Elsewhere, issuer: Issuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []

    async def refused(manager: SessionManager, call: Any) -> None:
        with pytest.raises(VendorkitError) as caught:
            await call(manager)
        errors.append(caught.value)

    # A login redirected to another origin; a refusal echoing the password escaped and encoded.
    async with SessionManager(toy.base_url, json_login(toy, password=AWKWARD)) as awkward:
        toy.answer_next(1, route="POST /login", status=307,
                        headers={"Location": elsewhere.base_url + "/login"})
        await refused(awkward, lambda m: m.login())
        toy.answer_next(1, route="POST /login", status=401, body={
            "error": "invalid_grant", "detail": f"password {AWKWARD} is wrong",
            "query": "username=u&password=" + quote_plus(AWKWARD),
            "encoded": quote(AWKWARD, safe=""),
        })
        await refused(awkward, lambda m: m.login())
    # An API key in a custom header, redirected to another origin.
    auth = APIKeyAuth(vendor="toy", api_key=API_KEY, header_name="X-API-Key", scheme="")
    async with SessionManager(toy.base_url, auth) as keyed:
        toy.answer_next(1, status=302, headers={"Location": elsewhere.base_url + "/data"})
        await refused(keyed, lambda m: m.request("GET", "/data"))
    # A discovery document sending the password and the client secret elsewhere.
    own = issuer.base_url + "/realms/r"
    issuer.document = {"issuer": own, "token_endpoint": elsewhere.base_url + "/token"}
    oidc = OIDCPasswordGrant(vendor="oidc", issuer=own, client_id="c",
                             client_secret=CLIENT_SECRET, username="u", password=AWKWARD)
    async with SessionManager(issuer.base_url, oidc) as discovering:
        await refused(discovering, lambda m: m.login())
    # A redirect loop on an API call made with a bearer token.
    manager = make_manager("json")
    await manager.login()
    toy.answer_next(20, status=302, headers={"Location": "/data"})
    await refused(manager, lambda m: m.request("GET", "/data"))

    assert [type(e).__name__ for e in errors] == [
        "RedirectError", "AuthenticationError", "RedirectError", "ResponseParseError",
        "RedirectError"]
    assert elsewhere.received == []
    evidence = "\n".join([
        *(_exception_text(e) for e in errors),
        *(record.getMessage() for record in caplog.records),
        *(repr(vars(record)) for record in caplog.records),  # ``extra`` fields
        repr(manager), repr(oidc), repr(auth),
    ])
    secrets = [AWKWARD, PASSWORD, CLIENT_SECRET, API_KEY, *toy.issued]
    found = [form for secret in secrets for form in _forms(secret) if form in evidence]
    assert found == []
    assert "***" in _exception_text(errors[1])  # the echo was there, masked in every form
