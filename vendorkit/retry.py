"""``RetryPolicy``: the one place a retry is decided, and the only importer of ``backoff``.

Retried: connection errors, timeouts, and the statuses in ``statuses`` (429, 502, 503,
504), with exponential backoff and full jitter, bounded by ``max_attempts`` and
``max_time``. A server's ``Retry-After`` (seconds or an HTTP date) replaces the backoff,
capped at ``retry_after_cap``.

A 429 is not a failure but "slow down": waiting for it is bounded by time alone,
``max_throttle_wait`` (5 minutes by default), not by the attempt count, so no call is lost
to a rate limit while the server keeps saying when to come back. Its ``Retry-After`` is
obeyed as given (not capped: sooner would only earn another 429); one that would pass the
budget gives up at once.

A request that may have reached the server is not retried unless it is idempotent:
GET, HEAD, OPTIONS, TRACE, PUT and DELETE are; POST and PATCH only when the caller says
``idempotent=True``. A connection that was never made, and a 429 (the server refused
to process it), are safe to retry whatever the method.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from typing import Any

import attrs
import backoff

from ._constants import (
    RETRY_AFTER_CAP,
    RETRY_BASE_DELAY,
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_DELAY,
    RETRY_MAX_THROTTLE_WAIT,
    RETRY_MAX_TIME,
    RETRY_STATUSES,
)
from .errors import ConfigurationError, TransportError

__all__ = ["RetryPolicy", "RetryState", "is_testing", "parse_retry_after", "set_testing"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

_TESTING = False


@contextlib.contextmanager
def _restoring(previous: bool) -> Iterator[None]:
    global _TESTING
    try:
        yield
    finally:
        _TESTING = previous


def set_testing(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Make every retry sleep zero seconds, for test suites (stamina does the same).

    Takes effect at once; used as ``with set_testing():`` it also restores the previous
    mode on exit. A module flag is naughty but better than threading a test switch through
    every client.
    """
    global _TESTING
    previous, _TESTING = _TESTING, enabled
    return _restoring(previous)


def is_testing() -> bool:
    """Whether retry sleeps are zero seconds (see :func:`set_testing`)."""
    return _TESTING


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
    #: Seconds a call may spend waiting out 429s (Retry-After, or backoff without one).
    max_throttle_wait: float = attrs.field(
        default=RETRY_MAX_THROTTLE_WAIT, validator=_positive("max_throttle_wait")
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
        """One attempt, no retries (a 429 included)."""
        return cls(max_attempts=1, max_throttle_wait=0)

    def start(self, method: str, idempotent: bool | None = None) -> RetryState:
        """The retry state of one call."""
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        return RetryState(self, idempotent)


class RetryState:
    """Attempts and elapsed time of one call; answers "wait how long, or give up?"."""

    __slots__ = ("_idempotent", "_policy", "_started", "_throttled", "_waits", "attempt")

    def __init__(self, policy: RetryPolicy, idempotent: bool) -> None:
        self._policy = policy
        self._idempotent = idempotent
        self._started = time.monotonic()
        self._waits: Generator[float, Any, None] | None = None
        self._throttled = 0.0  # seconds of 429 waits granted so far
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
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if status == 429:  # refused, not processed: safe to send again whatever the method
            # The server's own wait, uncapped: coming back sooner only earns another 429.
            return self._allow_throttled(
                self._next_backoff() if retry_after is None else retry_after
            )
        if not self._idempotent:
            return None
        if retry_after is not None:
            return self._allow(min(retry_after, policy.retry_after_cap))
        return self._allow(self._next_backoff())

    def _allow_throttled(self, delay: float) -> float | None:
        """A 429's wait: granted while the call's time waiting out 429s (planned waits, or
        the wall clock if more, e.g. while a rate limiter held it) stays in budget."""
        budget = self._policy.max_throttle_wait
        spent = max(self._throttled, time.monotonic() - self._started)
        if budget == 0 or spent + delay > budget:
            return None
        self._throttled += delay
        self.attempt += 1
        return delay

    async def sleep(self, seconds: float) -> None:
        await self._policy.sleep(seconds)
