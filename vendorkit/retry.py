"""``RetryPolicy``: the one place a retry is decided, and the only importer of ``backoff``.

Retried: connection errors, timeouts, and the statuses in ``statuses`` (429, 502, 503,
504), with exponential backoff and full jitter, bounded by ``max_attempts`` and
``max_time``. A server's ``Retry-After`` (seconds or an HTTP date) replaces the backoff,
capped at ``retry_after_cap``.

A request that may have reached the server is not retried unless it is idempotent:
GET, HEAD, OPTIONS, PUT and DELETE are; POST and PATCH only when the caller says
``idempotent=True``. A connection that was never made, and a 429 (the server refused
to process it), are safe to retry whatever the method.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

import attrs
import backoff

from ._constants import (
    RETRY_AFTER_CAP,
    RETRY_BASE_DELAY,
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_DELAY,
    RETRY_MAX_TIME,
    RETRY_STATUSES,
)
from .errors import ConfigurationError, TransportError

__all__ = ["RetryPolicy", "RetryState", "parse_retry_after", "set_testing"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

_TESTING = False


def set_testing(enabled: bool = True) -> None:
    """Make every retry sleep zero seconds, for test suites (stamina does the same).

    A module flag is naughty but better than threading a test switch through every client.
    """
    global _TESTING
    _TESTING = enabled


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(0 if _TESTING else seconds)


def _positive(name: str) -> Callable[[Any, Any, float], None]:
    def check(_: Any, __: Any, value: float) -> None:
        if value < 0:
            raise ConfigurationError(f"RetryPolicy.{name} must not be negative")

    return check


@attrs.frozen(slots=True)
class RetryPolicy:
    """When and how long to wait before trying a request again."""

    max_attempts: int = attrs.field(default=RETRY_MAX_ATTEMPTS)
    max_time: float = attrs.field(default=RETRY_MAX_TIME, validator=_positive("max_time"))
    base_delay: float = attrs.field(default=RETRY_BASE_DELAY, validator=_positive("base_delay"))
    max_delay: float = attrs.field(default=RETRY_MAX_DELAY, validator=_positive("max_delay"))
    retry_after_cap: float = attrs.field(
        default=RETRY_AFTER_CAP, validator=_positive("retry_after_cap")
    )
    statuses: frozenset[int] = RETRY_STATUSES
    #: Awaited to wait between attempts; replace it to observe or skip waits.
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=_sleep, repr=False, eq=False
    )

    @max_attempts.validator
    def _check_attempts(self, _: Any, value: int) -> None:
        if value < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be at least 1")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def start(self, method: str, idempotent: bool | None = None) -> RetryState:
        """The retry state of one call."""
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        return RetryState(self, idempotent)


class RetryState:
    """Attempts and elapsed time of one call; answers "wait how long, or give up?"."""

    __slots__ = ("_idempotent", "_policy", "_started", "_waits", "attempt")

    def __init__(self, policy: RetryPolicy, idempotent: bool) -> None:
        self._policy = policy
        self._idempotent = idempotent
        self._started = time.monotonic()
        self._waits: Generator[float, Any, None] | None = None
        self.attempt = 1

    def _next_backoff(self) -> float:
        if self._waits is None:
            policy = self._policy
            self._waits = backoff.expo(base=2, factor=policy.base_delay, max_value=policy.max_delay)
            next(self._waits)  # backoff's generators yield once before the first value
        return backoff.full_jitter(next(self._waits))

    def _allow(self, delay: float) -> float | None:
        policy = self._policy
        if self.attempt >= policy.max_attempts:
            return None
        if time.monotonic() - self._started + delay > policy.max_time:
            return None
        self.attempt += 1
        return delay

    def after_error(self, error: TransportError) -> float | None:
        """Seconds to wait before retrying after a transport error, or None to give up."""
        if not error.retryable or (error.request_sent and not self._idempotent):
            return None
        return self._allow(self._next_backoff())

    def after_status(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying after an error status, or None to give up."""
        policy = self._policy
        if status not in policy.statuses:
            return None
        if not self._idempotent and status != 429:
            return None
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if retry_after is not None:
            return self._allow(min(retry_after, policy.retry_after_cap))
        return self._allow(self._next_backoff())

    async def sleep(self, seconds: float) -> None:
        await self._policy.sleep(seconds)
