"""Token and parse_token: every login answer shape, tolerance of what real servers send,
and no value ever quoted in an error or a warning."""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from vendorkit import Token, TokenResponseError, parse_token
from vendorkit.token import MAX_LIFETIME

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
        ({"access_token": None, "token": None}, "carries no token"),
        ({"access_token": 12345}, "wrong type"),
        ({"accessToken": ["tok-Secret"]}, "wrong type"),
        ({"data": {"accessToken": ["tok-Secret"]}}, "wrong type: accessToken"),
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


# --- what real servers send (issue 11.8, issue 16.6/16.7/16.9) ------------------------------


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.name == "vendorkit"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expires_in", ""), ("expires_in", True), ("expires_in", "soon-Secret"),
        ("expiresIn", {"seconds": 60}), ("token_type", {"kind": "Bearer-Secret"}),
        ("token_type", "Bearer\r\nX-Injected: Secret"), ("scope", {"read": "Secret"}),
        ("scope", ["read", 7]), ("refresh_token", ["rt-Secret"]),
        ("refresh_expires_in", "later-Secret"),
    ],
)
def test_an_unreadable_optional_field_is_ignored_with_a_warning_naming_only_the_field(
    caplog: pytest.LogCaptureFixture, field: str, value: object
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")

    token = parse_token({"access_token": "at", field: value}, default_lifetime=60, now=NOW)

    assert token.access_token == "at"
    assert token.token_type == "Bearer"
    assert token.expires_at == NOW + 60  # as if the field were absent
    assert token.refresh_token is None and token.refresh_expires_at is None
    assert token.scope is None
    assert [w for w in warnings_in(caplog) if field in w] != []
    assert "Secret" not in caplog.text and "soon" not in caplog.text


def test_plausible_odd_values_read_as_the_server_meant_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")

    token = parse_token({"access_token": "at", "expires_in": "3599s", "token_type": None,
                         "scope": ["openid", "email"], "refresh_token": "",
                         "refresh_expires_in": 0}, now=NOW)

    assert token.expires_at == NOW + 3599
    assert token.token_type == "Bearer"
    assert token.scope == "openid email"
    assert (token.refresh_token, token.refresh_expires_at) == (None, None)
    assert warnings_in(caplog) == []


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "at", "expiresIn": 300, "refreshToken": "rt", "refreshExpiresIn": 900},
        {"accessToken": "at", "expires_in": 300, "refresh_token": "rt",
         "refresh_expires_in": 900},
        {"ACCESS_TOKEN": "at", "Expires-In": "300", "RefreshToken": "rt",
         "REFRESH_EXPIRES_IN": 900.0},
        {"token": "at", "expiresin": 300, "refresh-token": "rt", "refreshexpiresin": 900},
    ],
)
def test_lifetime_keys_are_found_in_any_style_beside_any_token_key(body: dict[str, Any]) -> None:
    token = parse_token(body, default_lifetime=86400, now=NOW)

    assert (token.access_token, token.refresh_token) == ("at", "rt")
    assert token.expires_at == NOW + 300
    assert token.refresh_expires_at == NOW + 900


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"access_token": "at", "expires_in": 300}},
        {"success": True, "data": {"accessToken": "at", "expiresIn": 300}},
        {"code": 0, "msg": "ok", "Data": {"token": "at", "expires_in": "300"}},
    ],
)
def test_a_token_answer_wrapped_in_data_is_read(body: dict[str, Any]) -> None:
    token = parse_token(body, now=NOW)

    assert (token.access_token, token.expires_at) == ("at", NOW + 300)


def test_a_wrapped_answer_still_honours_success_false() -> None:
    with pytest.raises(TokenResponseError, match="success=false"):
        parse_token({"data": {"success": False, "accessToken": "at"}})


UNUSABLE_LIFETIMES = [0, -30, "-5", math.nan, math.inf, -math.inf, 1e17, 10**400,
                      MAX_LIFETIME + 1]
UNUSABLE_IDS = ["0", "-30", "'-5'", "nan", "inf", "-inf", "1e17", "10**400", "ten years + 1"]


@pytest.mark.parametrize("lifetime", UNUSABLE_LIFETIMES, ids=UNUSABLE_IDS)
def test_an_unusable_lifetime_is_unknown_with_one_warning_never_expired_at_once(
    caplog: pytest.LogCaptureFixture, lifetime: object
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")

    token = parse_token({"access_token": "at", "expires_in": lifetime},
                        default_lifetime=86400, now=NOW)

    assert token.expires_at is None  # used until the vendor rejects it: one login, not one per call
    assert not token.is_expired(NOW)
    assert len(warnings_in(caplog)) == 1
    assert "expires_in" in warnings_in(caplog)[0]


@pytest.mark.parametrize("lifetime", UNUSABLE_LIFETIMES, ids=UNUSABLE_IDS)
def test_an_unusable_lifetime_falls_back_to_a_future_jwt_exp(lifetime: object) -> None:
    jwt = make_jwt({"exp": NOW + 900})

    token = parse_token({"accessToken": jwt, "expiresIn": lifetime}, now=NOW)

    assert token.expires_at == NOW + 900


def test_unusable_lifetimes_as_the_json_parser_reads_them_are_unknown() -> None:
    for text in ('{"access_token": "at", "expires_in": NaN}',
                 '{"access_token": "at", "expires_in": 1e400}',
                 '{"accessToken": "at", "expiresIn": -Infinity}'):
        assert parse_token(json.loads(text), now=NOW).expires_at is None


@pytest.mark.parametrize("exp", [NOW - 1, NOW, 0, -1e300, NOW + MAX_LIFETIME + 10, "1e400",
                                 "NaN"])
def test_a_jwt_exp_already_past_or_absurd_is_unknown_not_a_login_per_call(
    caplog: pytest.LogCaptureFixture, exp: float | str
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    payload = base64.urlsafe_b64encode(f'{{"exp": {exp}}}'.encode()).decode().rstrip("=")
    jwt = f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl"

    token = parse_token({"token": jwt}, default_lifetime=86400, now=NOW)

    assert token.expires_at is None
    assert len(warnings_in(caplog)) == 1 and "exp" in warnings_in(caplog)[0]


def test_a_jwt_exp_in_milliseconds_is_read_as_seconds() -> None:
    jwt = make_jwt({"exp": int((NOW + 600) * 1000)})

    assert parse_token({"token": jwt}, now=NOW).expires_at == NOW + 600


def test_a_refresh_lifetime_that_is_negative_or_absurd_is_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    for lifetime in (-1, math.nan, 1e17):
        token = parse_token({"access_token": "at", "expires_in": 60, "refresh_token": "rt",
                             "refresh_expires_in": lifetime}, now=NOW)
        assert token.refresh_expires_at is None
        assert token.can_refresh(NOW)
    assert len(warnings_in(caplog)) == 3


def jwt_nested(depth: int) -> str:
    payload = base64.urlsafe_b64encode(b"[" * depth + b"]" * depth).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl"


def test_a_jwt_payload_nested_200k_deep_is_a_token_response_error() -> None:
    with pytest.raises(TokenResponseError, match="nested too deeply"):
        parse_token({"token": jwt_nested(200_000)}, default_lifetime=60)


class ExplodingAnswer(Mapping[str, object]):
    """A mapping that fails as it is read: stands for any failure inside the parser."""

    def __getitem__(self, key: str) -> object:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("the answer could not be walked")

    def __len__(self) -> int:
        return 1


def test_any_failure_inside_parse_token_is_a_token_response_error() -> None:
    with pytest.raises(TokenResponseError, match="could not be read"):
        parse_token(ExplodingAnswer())


@pytest.mark.parametrize("char", ["\r", "\n", "\r\n", "\x00", "\t", "\x1f", "\x7f"])
@pytest.mark.parametrize(
    "answer",
    [
        lambda t: ({"access_token": t}, None),
        lambda t: ({"accessToken": t, "expiresIn": 60}, None),
        lambda t: ({"token": t}, None),
        lambda t: ({"access_token": "fine", "refresh_token": t}, None),
        lambda t: ({}, t),
    ],
    ids=["access_token", "accessToken", "token", "refresh_token", "header"],
)
def test_a_token_with_control_characters_is_refused_without_quoting_it(
    char: str, answer: Any
) -> None:
    body, header = answer(f"tok-Secret{char}X-Injected: 1")

    with pytest.raises(TokenResponseError, match="control characters") as refused:
        parse_token(body, header_token=header)

    assert "Secret" not in str(refused.value)


# --- the property -------------------------------------------------------------------------

KNOWN_KEYS = ["token", "access_token", "accessToken", "accesstoken", "ACCESS_TOKEN",
              "expires_in", "expiresIn", "expiresin", "refresh_token", "refreshToken",
              "refresh_expires_in", "token_type", "tokenType", "scope", "success",
              "message", "error"]

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats()  # NaN and Infinity too: Python's json module reads them
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
    "login answer has a token with control characters: Authorization header",
    "login answer could not be read",
    "login answer's JWT payload is nested too deeply",
    "(keys seen: none)",
)


def keys_of(body: object) -> str:
    """The keys parse_token may name: the answer's, and those inside its ``data``."""
    if not isinstance(body, dict):
        return ""
    keys = list(map(str, body))
    for key, value in body.items():
        if key.lower() == "data" and isinstance(value, dict):
            keys += [f"data.{k}" for k in value]
    return ", ".join(keys)


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
        keys = keys_of(body)
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
        assert token.expires_at is None or 0 < token.expires_at - NOW <= MAX_LIFETIME
        for secret in (token.access_token, token.refresh_token or ""):
            assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret)


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
