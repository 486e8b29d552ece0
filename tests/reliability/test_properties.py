"""Property tests for every parser that reads a server's answer.

Whatever JSON a server sends (token answers, pages, models, error bodies), vendorkit
gives back a value or a typed vendorkit error, never another exception, and never a
message that quotes a secret, even when the server echoes one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import vendorkit
from vendorkit import Page, ResponseParseError, RetryPolicy, Token, TokenResponseError
from vendorkit.models import structure, structure_list
from vendorkit.pagination import parse_page
from vendorkit.response import Response
from vendorkit.sandbox import RunningSandbox
from vendorkit.token import parse_token
from vendorkit.vendors import cloud4wi, cloudcx, wogeez, wokelo

from .support import Lab, Probe, issued_secrets, leaks

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Stands for a real secret in generated bodies; replaced before the body is sent.
SECRET = "\x00secret\x00"

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and Infinity too: Python's json module reads them
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)

# --- token answers --------------------------------------------------------------------------

TOKEN_KEYS = (
    "access_token", "accessToken", "AccessToken", "token", "refresh_token", "refreshToken",
)
OTHER_TOKEN_KEYS = (
    "token_type", "tokenType", "expires_in", "expiresIn", "refresh_expires_in", "scope",
    "success", "message", "error", "error_description",
)
token_secrets = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=12, max_size=40
)


@st.composite
def token_answers(draw: st.DrawFn) -> tuple[object, set[str]]:
    """A login answer of any shape, and the token values it carries (the secrets)."""
    if draw(st.booleans()):
        return draw(json_values), set()
    body: dict[str, object] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    secrets: set[str] = set()
    for key in draw(st.lists(st.sampled_from(TOKEN_KEYS), max_size=3, unique=True)):
        value = draw(token_secrets | json_values)
        body[key] = value
        if isinstance(value, str) and len(value) >= 12:
            secrets.add(value)
    for key in draw(st.lists(st.sampled_from(OTHER_TOKEN_KEYS), max_size=4, unique=True)):
        body[key] = draw(json_values | st.sampled_from([True, False, 3600, "3600", "Bearer"]))
    echoes = draw(st.booleans())
    if secrets and echoes:  # a server that echoes the token in its message
        body["message"] = f"bad token {draw(st.sampled_from(sorted(secrets)))}"
    return body, secrets


@PROPERTY
@given(answer=token_answers(), header_token=st.none() | token_secrets)
@example(answer=({"success": False, "accessToken": "atk_0123456789ab",
                  "message": "token atk_0123456789ab refused"}, {"atk_0123456789ab"}),
         header_token=None)
def test_any_login_answer_gives_a_token_or_a_token_response_error_without_secrets(
    answer: tuple[object, set[str]], header_token: str | None
) -> None:
    body, secrets = answer
    if header_token:
        secrets = secrets | {header_token}
    try:
        token = parse_token(body, default_lifetime=60.0, header_token=header_token)
    except TokenResponseError as exc:
        assert not leaks(str(exc), secrets)
    else:
        assert isinstance(token, Token)
        assert token.access_token.strip()
        assert not leaks(repr(token), [token.access_token, token.refresh_token or ""])


# --- raw bodies -----------------------------------------------------------------------------


@PROPERTY
@given(content=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
@example(content=b"[" * 100_000)  # nesting deeper than the decoder's recursion limit
@example(content=b"\xff\xfe not utf-8")
def test_any_body_reads_as_json_or_a_response_parse_error(content: bytes) -> None:
    response = Response(200, "GET", "https://api.test/x", {}, content, 0.0)
    try:
        response.json()
    except ResponseParseError as exc:
        assert "expected JSON" in str(exc)
    assert isinstance(response.json_object(), dict)


# --- pages and models -----------------------------------------------------------------------

ITEM_MODELS = (cloudcx.User, wogeez.Company, wokelo.Company, cloud4wi.Organization)
MODELS = (
    *ITEM_MODELS,
    wogeez.SearchFilters,
    wokelo.CompanySearch,
    wokelo.RequestStatus,
    wokelo.RequestResult,
)
envelope_keys = st.sampled_from(
    ["list", "records", "items", "rows", "content", "data", "results", "total", "totalCount",
     "totalElements", "count", "pageIndex"]
)


@st.composite
def pages(draw: st.DrawFn) -> object:
    """A page answer in one of the envelopes vendors use, with items of any JSON."""
    items = draw(st.lists(json_values | st.dictionaries(envelope_keys, json_values), max_size=4))
    envelope = draw(st.dictionaries(envelope_keys, json_values, max_size=3))
    envelope[draw(st.sampled_from(["list", "records", "items", "rows", "content", "data"]))] = items
    return draw(st.sampled_from([items, envelope, {"code": 0, "data": envelope}]))


@PROPERTY
@given(
    body=pages() | json_values,
    model=st.sampled_from(ITEM_MODELS),
    page_index=st.integers(0, 5),
    page_size=st.integers(0, 50),
)
def test_any_page_answer_gives_a_page_or_a_response_parse_error(
    body: object, model: type[Any], page_index: int, page_size: int
) -> None:
    try:
        page = parse_page(body, model, page_index=page_index, page_size=page_size)
    except ResponseParseError:
        return
    assert isinstance(page, Page)
    assert all(isinstance(item, model) for item in page.items)


@PROPERTY
@given(
    body=json_values | st.dictionaries(envelope_keys, json_values),
    model=st.sampled_from(MODELS),
)
def test_any_model_answer_gives_a_model_or_a_response_parse_error(
    body: object, model: type[Any]
) -> None:
    try:
        value = structure(body, model, what="answer")
    except ResponseParseError:
        return
    assert isinstance(value, model)


@PROPERTY
@given(body=json_values | st.dictionaries(envelope_keys, json_values | st.lists(json_values)))
def test_any_list_answer_gives_models_or_a_response_parse_error(body: object) -> None:
    try:
        values = structure_list(body, cloud4wi.Organization, what="organizations")
    except ResponseParseError:
        return
    assert all(isinstance(value, cloud4wi.Organization) for value in values)


# --- error bodies, over HTTP ----------------------------------------------------------------

secret_strings = st.builds(
    lambda pad, tail: f"{pad}{SECRET}{tail}",
    st.text(max_size=220),  # long padding puts the secret across any excerpt limit
    st.text(max_size=10),
)
error_bodies = st.recursive(
    scalars | secret_strings,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(["error", "error_description", "message", "msg", "detail", "code"])
        | st.text(max_size=8),
        inner,
        max_size=4,
    ),
    max_leaves=10,
)
error_statuses = st.sampled_from([400, 401, 403, 404, 405, 409, 410, 418, 422, 429, 500, 501,
                                  502, 503, 504, 599])


def _fill(body: object, secret: str) -> str:
    return json.dumps(body).replace(json.dumps(SECRET)[1:-1], secret)


def _secret_fragments(secrets: set[str]) -> set[str]:
    """Each secret and its halves: an error that quotes half a secret still leaks it."""
    fragments = set(secrets)
    for secret in secrets:
        if len(secret) >= 16:
            fragments |= {secret[: len(secret) // 2], secret[len(secret) // 2 :]}
    return fragments


@pytest.fixture
async def armed(lab: Lab, vendor: str) -> tuple[RunningSandbox, Any, Probe]:
    """One sandbox and client per test, shared by all of its examples; no retries."""
    return await lab.started(vendor, retry=RetryPolicy.never())


@pytest.mark.parametrize("vendor", ["cloud4wi", "wogeez"])
@PROPERTY
@given(body=error_bodies, status=error_statuses, which=st.integers(0, 2))
async def test_any_api_error_body_gives_a_typed_error_that_quotes_no_secret(
    armed: tuple[RunningSandbox, Any, Probe], body: object, status: int, which: int
) -> None:
    sandbox, client, probe = armed
    token = client.token or await client.login()
    candidates = sorted(
        {v for k, v in sandbox.credentials.items() if k in ("client_secret", "password")}
        | {token.access_token}
    )
    sandbox.state.faults.fail_next(1, status, body=_fill(body, candidates[which % len(candidates)]))

    try:
        await probe.call(client)
    except vendorkit.APIError as exc:
        assert exc.status in (status, 401, 403)
        text = f"{exc} {exc.body_excerpt}"
        assert not leaks(text, _secret_fragments(issued_secrets([sandbox])))
    except vendorkit.ResponseParseError:
        assert status < 400  # never: an error status is always an APIError


@pytest.mark.parametrize("vendor", ["cambyopro", "wokelo"])
@PROPERTY
@given(body=error_bodies, status=error_statuses)
async def test_any_login_error_body_gives_a_typed_error_that_quotes_no_secret(
    armed: tuple[RunningSandbox, Any, Probe], body: object, status: int
) -> None:
    sandbox, client, probe = armed
    secret = sandbox.credentials["client_secret"]
    sandbox.state.faults.fail_next(1, status, target="auth", body=_fill(body, secret))

    with pytest.raises(vendorkit.APIError) as caught:
        await client.login()

    assert caught.value.status == status
    text = f"{caught.value} {caught.value.body_excerpt}"
    assert not leaks(text, _secret_fragments(issued_secrets([sandbox])))
    assert probe.login_route in sandbox.state.counters.requests
