"""Token and parse_token: every login answer shape, and no value ever quoted in an error."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vendorkit import Token, TokenResponseError, parse_token

NOW = 1_700_000_000.0


def make_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


# --- the shapes ---------------------------------------------------------------------------


def test_jwt_answer_takes_its_expiry_from_the_exp_claim() -> None:
    jwt = make_jwt({"sub": "client", "exp": NOW + 600})

    token = parse_token({"token": jwt}, default_lifetime=86400, now=NOW)

    assert token.access_token == jwt
    assert token.expires_at == NOW + 600
    assert token.issued_at == NOW
    assert token.refresh_token is None
    assert token.authorization_header() == f"Bearer {jwt}"


@pytest.mark.parametrize("jwt", [make_jwt({"sub": "client"}), "opaque-token-value"])
def test_jwt_answer_without_exp_gets_the_default_lifetime(jwt: str) -> None:
    token = parse_token({"token": jwt}, default_lifetime=86400, now=NOW)

    assert token.expires_at == NOW + 86400
    assert token.lifetime == 86400
    assert parse_token({"token": jwt}, now=NOW).expires_at is None


def test_oauth2_answer_reads_every_field() -> None:
    token = parse_token(
        {"access_token": "at", "token_type": "bearer", "expires_in": 300,
         "refresh_token": "rt", "refresh_expires_in": 1800, "scope": "openid email",
         "not-before-policy": 0, "session_state": "s"},
        now=NOW,
    )

    assert token == Token(access_token="at", token_type="bearer", expires_at=NOW + 300,
                          refresh_token="rt", refresh_expires_at=NOW + 1800,
                          scope="openid email", issued_at=NOW)
    assert token.authorization_header() == "Bearer at"
    assert token.lifetime == 300


def test_oauth2_answer_without_expires_in_uses_the_jwt_exp_then_the_default() -> None:
    jwt = make_jwt({"exp": NOW + 90})
    assert parse_token({"access_token": jwt}, now=NOW).expires_at == NOW + 90
    assert parse_token({"access_token": "at"}, default_lifetime=60, now=NOW).expires_at == NOW + 60


@pytest.mark.parametrize(
    "body",
    [
        {"success": True, "accessToken": "atk_1", "tokenType": "Bearer", "expiresIn": 86400,
         "message": "API client authenticated successfully"},
        {"success": True, "accesstoken": "atk_1", "tokentype": "Bearer", "expiresin": "86400"},
        {"Success": True, "AccessToken": "atk_1", "ExpiresIn": 86400.0},
    ],
)
def test_camel_case_answer_in_any_key_case(body: dict[str, Any]) -> None:
    token = parse_token(body, now=NOW)

    assert token.access_token == "atk_1"
    assert token.token_type == "Bearer"
    assert token.expires_at == NOW + 86400


def test_camel_case_answer_with_refresh_token() -> None:
    token = parse_token({"accessToken": "a", "refreshToken": "r", "expiresIn": 5}, now=NOW)

    assert (token.refresh_token, token.expires_at) == ("r", NOW + 5)


@pytest.mark.parametrize("body", [{}, None, "", {"user": "x"}])
def test_token_from_the_authorization_header(body: object) -> None:
    token = parse_token(body, header_token="hdr-token", default_lifetime=30, now=NOW)

    assert token.access_token == "hdr-token"
    assert token.expires_at == NOW + 30


def test_token_in_the_body_wins_over_the_header() -> None:
    assert parse_token({"token": "body"}, header_token="hdr").access_token == "body"


# --- refusals -----------------------------------------------------------------------------


def test_success_false_names_keys_not_values() -> None:
    body = {"success": False, "message": "Invalid client secret s3cr3t-Value", "code": "E401"}

    with pytest.raises(TokenResponseError) as caught:
        parse_token(body)

    message = str(caught.value)
    assert "success=false" in message
    assert "code, message, success" in message
    assert "s3cr3t-Value" not in message
    assert "E401" not in message


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"user": "alice-Secret", "expires_in": 10}, "carries no token"),
        ({"access_token": 12345}, "wrong type"),
        ({"access_token": "tok-Secret", "expires_in": "soon"}, "wrong type"),
        ({"access_token": "tok-Secret", "expires_in": True}, "wrong type"),
        ({"accessToken": ["tok-Secret"]}, "wrong type"),
        ({"token": {"value": "tok-Secret"}}, "wrong type"),
        ({"access_token": "   "}, "empty token"),
        ({"token": ""}, "empty token"),
        ([{"access_token": "tok-Secret"}], "JSON list"),
        ("tok-Secret", "JSON str"),
        (None, "JSON NoneType"),
        (42, "JSON int"),
    ],
)
def test_unusable_answer_raises_token_response_error(body: object, says: str) -> None:
    with pytest.raises(TokenResponseError, match=says) as caught:
        parse_token(body)

    assert "Secret" not in str(caught.value)
    assert "alice" not in str(caught.value)


# --- the property -------------------------------------------------------------------------

KNOWN_KEYS = ["token", "access_token", "accessToken", "accesstoken", "ACCESS_TOKEN",
              "expires_in", "expiresIn", "expiresin", "refresh_token", "refreshToken",
              "refresh_expires_in", "token_type", "tokenType", "scope", "success",
              "message", "error"]

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(), children, max_size=5),
    max_leaves=12,
)
# Answers shaped like logins (known keys, plausible types) reach the parser's every branch.
shaped_answers = st.fixed_dictionaries(
    {},
    optional={key: st.text() | st.booleans() | st.integers() | json_values for key in KNOWN_KEYS},
)
login_answers = (
    json_values
    | shaped_answers
    | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), json_values, max_size=6)
)

# The sentences parse_token writes; a value found inside them was not quoted from the input.
TEMPLATES = (
    "login answer is a JSON NoneType bool int float str list, not an object with a token",
    "login answer says success=false",
    "login answer has a field of the wrong type",
    "login answer carries no token",
    "login answer has an empty token",
    "(keys seen: none)",
)


def strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


@settings(max_examples=400, deadline=None)
@given(login_answers)
def test_any_json_gives_a_token_or_a_token_response_error_quoting_no_value(
    body: object,
) -> None:
    try:
        token = parse_token(body, now=NOW)
    except TokenResponseError as exc:
        message = str(exc)
        keys = ", ".join(sorted(map(str, body))) if isinstance(body, dict) else ""
        quoted = [
            s for s in strings_in(body)
            if len(s) > 3 and s in message
            and s not in keys and not any(s in template for template in TEMPLATES)
        ]
        assert quoted == [], message
    else:
        assert isinstance(token, Token)
        assert isinstance(token.access_token, str) and token.access_token.strip()
        assert "access_token" not in repr(token)


# --- Token --------------------------------------------------------------------------------


def test_token_lifetime_and_expiry() -> None:
    token = Token(access_token="a", expires_at=NOW + 10, issued_at=NOW - 50)

    assert token.remaining(NOW) == 10
    assert token.lifetime == 60
    assert not token.is_expired(NOW)
    assert token.is_expired(NOW + 10)
    assert Token(access_token="a").remaining(NOW) is None
    assert not Token(access_token="a").is_expired(NOW)


def test_token_can_refresh_only_with_a_live_refresh_token() -> None:
    assert not Token(access_token="a").can_refresh(NOW)
    assert Token(access_token="a", refresh_token="r").can_refresh(NOW)
    dead = Token(access_token="a", refresh_token="r", refresh_expires_at=NOW - 1)
    assert not dead.can_refresh(NOW)


def test_token_repr_hides_both_tokens() -> None:
    token = Token(access_token="at-Secret-1", refresh_token="rt-Secret-2", expires_at=NOW)

    assert "Secret" not in repr(token)
    assert "expires_at" in repr(token)


def test_authorization_header_keeps_a_non_bearer_scheme() -> None:
    assert Token(access_token="k", token_type="MAC").authorization_header() == "MAC k"
    assert Token(access_token="k", token_type="BEARER").authorization_header() == "Bearer k"
