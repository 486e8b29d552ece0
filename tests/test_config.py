"""The session's settings as values: each validates itself, naming the argument; equal
settings are equal values with a readable repr; the refresh windows scale with a token's
lifetime."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vendorkit import ConfigurationError, Limits, RefreshWindows, Timeouts, Token


def test_settings_are_values_with_defaults_equality_and_a_readable_repr() -> None:
    assert Timeouts() == Timeouts(timeout=30.0, connect_timeout=10.0, logout_timeout=5.0)
    assert Timeouts(timeout=None) != Timeouts()
    assert repr(Timeouts(timeout=120)) == "Timeouts(total=120, connect=10.0, logout=5.0)"
    assert Limits() == Limits(max_connections=100, max_concurrency=None)
    assert "max_concurrency=10" in repr(Limits(max_concurrency=10))
    assert RefreshWindows() == RefreshWindows(advisory_seconds=60.0, mandatory_seconds=10.0)
    assert hash(RefreshWindows()) == hash(RefreshWindows())  # frozen: usable as a key


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: Timeouts(timeout=0), "timeout"),
        (lambda: Timeouts(timeout=-1), "timeout"),
        (lambda: Timeouts(timeout=math.nan), "timeout"),
        (lambda: Timeouts(connect_timeout=math.inf), "connect_timeout"),
        (lambda: Timeouts(connect_timeout=True), "connect_timeout"),
        (lambda: Timeouts(logout_timeout=None), "logout_timeout"),
        (lambda: Timeouts(timeout="30"), "timeout"),
        (lambda: Limits(max_connections=-1), "max_connections"),
        (lambda: Limits(max_connections=2.5), "max_connections"),
        (lambda: Limits(max_concurrency=0), "max_concurrency"),
        (lambda: Limits(max_body_size=0), "max_body_size"),
        (lambda: RefreshWindows(advisory_fraction=1.5), "advisory_fraction"),
        (lambda: RefreshWindows(mandatory_fraction=-0.1), "mandatory_fraction"),
        (lambda: RefreshWindows(advisory_seconds=-1), "advisory_seconds"),
        (lambda: RefreshWindows(mandatory_seconds=math.inf), "mandatory_seconds"),
        (lambda: RefreshWindows(mandatory_seconds=math.nan), "mandatory_seconds"),
    ],
)
def test_a_bad_setting_is_a_configuration_error_naming_it(make: Any, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        make()


def test_the_pool_holds_one_connection_more_than_the_calls_in_flight() -> None:
    assert (Limits().concurrency, Limits().pool_size) == (100, 101)
    assert (Limits(max_connections=10, max_concurrency=4).concurrency,
            Limits(max_connections=10, max_concurrency=4).pool_size) == (4, 11)
    assert (Limits(max_connections=0).concurrency, Limits(max_connections=0).pool_size) == (0, 0)


@pytest.mark.parametrize(
    ("lifetime", "advisory", "mandatory"),
    [
        (3600.0, 60.0, 10.0),  # a long token: the windows' seconds
        (3.0, 1.5, 0.75),  # a short one: its fractions, so it is renewed once, not in a loop
        (30.0, 15.0, 7.5),
    ],
)
def test_the_refresh_windows_scale_with_the_tokens_lifetime(
    lifetime: float, advisory: float, mandatory: float
) -> None:
    token = Token("t", issued_at=1_000.0, expires_at=1_000.0 + lifetime)

    advisory_at, mandatory_at = RefreshWindows().deadlines(token)

    assert advisory_at == pytest.approx(token.expires_at - advisory)  # type: ignore[operator]
    assert mandatory_at == pytest.approx(token.expires_at - mandatory)  # type: ignore[operator]


def test_a_token_with_no_expiry_is_never_renewed_for_age() -> None:
    assert RefreshWindows().deadlines(Token("t")) == (math.inf, math.inf)
