"""The session's settings as values: ``Timeouts``, ``Limits`` and ``RefreshWindows``.

Each validates itself when built (a :class:`ConfigurationError` naming the setting, as
``RetryPolicy`` does), so the ``SessionManager`` only composes them, as httpx composes
its ``Timeout`` and ``Limits``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import attrs

from ._constants import (
    ADVISORY_REFRESH_FRACTION,
    ADVISORY_REFRESH_SECONDS,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_LOGOUT_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TIMEOUT,
    MANDATORY_REFRESH_FRACTION,
    MANDATORY_REFRESH_SECONDS,
)
from .errors import ConfigurationError
from .token import Token

__all__ = ["Limits", "RefreshWindows", "Timeouts"]

_INF = math.inf


def _seconds(optional: bool) -> Any:
    """A validator: a positive, finite number of seconds (None too when ``optional``)."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 < value < _INF):  # NaN fails both comparisons
            raise ConfigurationError(
                f"{attribute.alias} must be a positive number of seconds, got {value!r}"
            )

    return check


@attrs.frozen(slots=True)
class Timeouts:
    """How long a request, its connect and ``aclose()``'s logout may take (seconds).

    ``total=None`` or ``connect=None`` means no limit; the names are the ``SessionManager``
    arguments (``timeout=``, ``connect_timeout=``, ``logout_timeout=``) so errors name them.
    """

    total: float | None = attrs.field(
        default=DEFAULT_TIMEOUT, validator=_seconds(True), alias="timeout"
    )
    connect: float | None = attrs.field(
        default=DEFAULT_CONNECT_TIMEOUT, validator=_seconds(True), alias="connect_timeout"
    )
    logout: float = attrs.field(
        default=DEFAULT_LOGOUT_TIMEOUT, validator=_seconds(False), alias="logout_timeout"
    )


def _whole(minimum: int, optional: bool, hint: str) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigurationError(f"{attribute.name} must be a whole number >= {minimum}{hint}")

    return check


@attrs.frozen(slots=True)
class Limits:
    """Connections in the pool, and API calls in flight at once."""

    #: Pooled connections for API calls (0: no limit); aiohttp's own default. The pool
    #: holds one more, for logins and logouts (see ``pool_size``).
    max_connections: int = attrs.field(
        default=DEFAULT_MAX_CONNECTIONS, validator=_whole(0, False, " (0: no limit)")
    )
    #: API calls in flight at once; None: one per pooled connection.
    max_concurrency: int | None = attrs.field(
        default=None, validator=_whole(1, True, ", or None (the pool size)")
    )
    #: Bytes of one answer's body read at most (checked on Content-Length and while
    #: reading): a hostile or broken server cannot exhaust memory. Use ``client.stream``
    #: (or raise this) for larger exports.
    max_body_size: int = attrs.field(default=DEFAULT_MAX_BODY_SIZE, validator=_whole(1, False, ""))

    @property
    def concurrency(self) -> int:
        """The effective cap on API calls in flight (0: none)."""
        return self.max_connections if self.max_concurrency is None else self.max_concurrency

    @property
    def pool_size(self) -> int:
        """Connections aiohttp may open (0: no limit): one more than the API calls can
        hold, so a login or logout never queues behind the calls that wait for it."""
        return self.max_connections + 1 if self.max_connections else 0


def _fraction(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigurationError(f"RefreshWindows.{attribute.name} must be between 0 and 1")


def _window(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < _INF:
        raise ConfigurationError(f"RefreshWindows.{attribute.name} must be >= 0 seconds")


@attrs.frozen(slots=True)
class RefreshWindows:
    """When to renew a token, as botocore does: both windows scale with the lifetime, so
    a 3 s token is renewed once, not in a loop.

    - advisory: the last min(``advisory_seconds``, ``advisory_fraction`` of the lifetime):
      one background task renews while calls go on with the still-valid token;
    - mandatory: the last min(``mandatory_seconds``, ``mandatory_fraction``): calls wait.
    """

    advisory_seconds: float = attrs.field(default=ADVISORY_REFRESH_SECONDS, validator=_window)
    mandatory_seconds: float = attrs.field(default=MANDATORY_REFRESH_SECONDS, validator=_window)
    advisory_fraction: float = attrs.field(default=ADVISORY_REFRESH_FRACTION, validator=_fraction)
    mandatory_fraction: float = attrs.field(
        default=MANDATORY_REFRESH_FRACTION, validator=_fraction
    )

    def deadlines(self, token: Token) -> tuple[float, float]:
        """(advisory_at, mandatory_at): the UNIX times the two windows open for ``token``."""
        if token.expires_at is None:
            return _INF, _INF
        lifetime = token.lifetime
        if lifetime is None or lifetime <= 0:
            lifetime = max(token.expires_at - time.time(), 0.0)
        advisory = min(self.advisory_seconds, lifetime * self.advisory_fraction)
        mandatory = min(self.mandatory_seconds, lifetime * self.mandatory_fraction)
        return token.expires_at - advisory, token.expires_at - mandatory
