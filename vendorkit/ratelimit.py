"""Rate limits: a permit before each attempt, per credential, shared by a fleet through the store.

What a client gets, by ``rate_limit=``:

- ``RateLimit(rate, per=1.0, burst=None)``: at most ``rate`` requests per ``per`` seconds
  for the credential, ``burst`` of them at once (default 1: evenly spaced).
- ``None`` (the default): adaptive. Nothing is limited, and nothing is spent (no await, no
  lock, no clock) until the server first throttles; from then on the limiter sends at a
  rate it learns from the throttling.
- ``False``: no limiter at all; 429s are left to the retry policy alone.

Where the limit holds is where the token store's state is shared: with a
``RedisTokenStore``, the whole fleet (one Lua script, atomic, one round trip for each batch
of permits a process takes at once); with a ``FileTokenStore``, the processes of one host
(a state file beside the token file, under an OS file lock); otherwise this process (every client
of the same credential in it shares one state). See :mod:`vendorkit.stores.quota`.

The algorithm
-------------
Permits follow GCRA (the generic cell rate algorithm): one number, the theoretical arrival
time ``tat``; a permit is due at ``max(tat, now) - (burst - 1) * interval`` and moves ``tat``
one interval on. A permit is a reservation, made at most ``RESERVE_AHEAD`` (0.25 s) before
it is due: the taker sleeps until then, with no queue and no polling; a taker further back
asks again when its turn comes within reach, so a rate that rises, or a pause that begins,
is never stuck behind reservations made before. A process asks for the permits of all its
callers waiting at that moment in one round trip.

Throttle signals are shared. A 429 with ``Retry-After`` (or ``RateLimit-Reset`` /
``X-RateLimit-Reset``), or any answer with ``X-RateLimit-Remaining: 0`` (or
``RateLimit-Remaining: 0``) and a reset, sets a pause in the shared state: no permit is due
before it, in this process or, through the store, in the fleet. A pause moves ``tat`` past
its end, so the calls that resume are spread at the rate, one interval apart; when there is
no rate to spread them by (adaptive, never throttled), each waiter resumes at a random
instant of a short window after the pause (``RESUME_SPREAD``). A permit reserved before a
pause began is not used: its holder takes a new one. Nor is a permit its holder wakes for
too late (the process stalled: the permits due meanwhile would all go at once); it takes a
new one, once. A configured limiter spends half the burst it is given and leaves the
other half to the server, for the jitter between the two; and a call that must wait for a
login takes its permit after it.

The adaptive rate (TCP's slow start and CUBIC, as botocore's ``adaptive`` retry mode, but
one rate for the credential, shared by the fleet; constants in :mod:`vendorkit.stores.quota`):

1. Until the first 429 the limiter is idle; each process only counts its successes.
2. At a process's first 429 it reports the successes it saw per second (over the time since
   its first one, at least ``ESTIMATE_WINDOW``, 0.25 s, so that a burst the server allows
   does not read as a rate); the fleet's rate starts at the sum of those reports, a lower
   bound, and doubles every 0.3 s once the pause is over.
3. The next 429 ends the slow start: the peak is taken as 0.95 times the rate of the
   permits then answered (those reserved up to 0.25 s before). The slow start grows the
   rate smoothly, so it crosses the limit by little before the server's burst runs out.
4. After every throttle the rate drops to 0.9 times the peak, climbs back along a cubic to
   a plateau at 0.9 times the peak in 1 s, then probes above it: 10% higher after 10 s
   (each probe that finds the limit costs a pause the server sets, a whole second or
   more, so probing is slow). A later throttle, on the plateau or probing, makes 0.9
   times its rate the peak. The decrease is shallower than TCP's half: the server's
   pause has already drained what was in flight, and a second of it costs more than any
   overshoot.
5. The 429s of one episode, until its pause ends and at least 0.5 s, decrease once: the
   answers to calls already in flight say nothing new.
6. The rate never exceeds twice the peak, nor twice what the credential actually sent
   lately: a rate nobody uses is not learned (a slow fleet would otherwise "learn" an
   absurd rate and then burst into the server's limit).

Why not aiolimiter or pyrate-limiter: aiolimiter's bucket has its burst tied to its rate,
cannot change rate at run time (the adaptive rate does) and knows no pause; pyrate-limiter's
Redis bucket keeps a sorted set of timestamps (O(limit) memory and work per permit) and
polls when full. One GCRA state of ten numbers, in Python for the process and the file and
in one Lua script for Redis (tested step for step against the Python), gives all three
stores the same semantics, a changing rate and shared pauses.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .errors import ConfigurationError
from .retry import parse_retry_after
from .stores.quota import NO_REPORT, Grant, LocalQuota, Quota, Report, adaptive_rate, throttle

__all__ = ["RateLimit", "RateLimiter", "build_limiter", "throttle_delay"]

#: A pause longer than this is cut to it (a server's mistake must not stop a fleet for days).
MAX_PAUSE = 600.0
#: Without a rate to spread them by, calls resume over this share of the pause (capped).
RESUME_SPREAD = 0.25
RESUME_SPREAD_MAX = 2.0
#: A permit used later than this many intervals after it was due (or half the burst's
#: tolerance, if more) is given up and taken anew: see ``RateLimiter.acquire``.
LATE_INTERVALS = 4.0
#: The window a process's first estimate is measured over, at least.
ESTIMATE_WINDOW = 0.25
#: A reset header above this is a Unix time, not a number of seconds (above 1e12: in ms).
_EPOCH = 1e9


def _positive(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, __: Any, value: Any) -> None:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value <= 0):
            raise ConfigurationError(f"RateLimit.{name} must be a positive number, got {value!r}")

    return check


def _burst(_: Any, __: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ConfigurationError(f"RateLimit.burst must be a whole number >= 1, got {value!r}")


@attrs.frozen(slots=True)
class RateLimit:
    """At most ``rate`` requests per ``per`` seconds for one credential, ``burst`` at once.

    ``RateLimit(400, burst=20)``, the quota as the vendor documents it: 400 a second; of
    the burst, the limiter spends 10 back to back after a quiet spell and leaves 10 to the
    server, for the jitter between here and there. ``burst=None`` means 1: permits evenly
    spaced, the safest against any quota.
    """

    rate: float = attrs.field(validator=_positive("rate"))
    per: float = attrs.field(default=1.0, validator=_positive("per"))
    burst: int | None = attrs.field(default=None, validator=_burst)

    @property
    def per_second(self) -> float:
        return self.rate / self.per


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def _reset_delay(headers: Mapping[str, str]) -> float | None:
    value = _header(headers, "ratelimit-reset", "x-ratelimit-reset")
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    if seconds > _EPOCH:  # a Unix time (GitHub's style), in ms above 1e12
        seconds = (seconds / 1000 if seconds > _EPOCH * 1000 else seconds) - time.time()
    return max(seconds, 0.0)


def throttle_delay(status: int, headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks every call of the credential to wait, or None.

    A 429's ``Retry-After`` (seconds or an HTTP date), else its ``RateLimit-Reset`` /
    ``X-RateLimit-Reset`` (seconds, or a Unix time); for any status, a
    ``(X-)RateLimit-Remaining: 0`` with such a reset. ``headers``: aiohttp's
    case-insensitive headers, or a mapping with lower-case names.
    """
    if status == 429:
        seconds = parse_retry_after(headers.get("retry-after"))
        return seconds if seconds is not None else _reset_delay(headers)
    remaining = _header(headers, "ratelimit-remaining", "x-ratelimit-remaining")
    if remaining is not None and remaining.strip() == "0":
        return _reset_delay(headers)
    return None


# Without a shared store, every client of one credential in this process shares one state.
_LOCAL: weakref.WeakValueDictionary[str, LocalQuota] = weakref.WeakValueDictionary()


def build_limiter(config: RateLimit | bool | None, store: object, key: str) -> RateLimiter | None:
    """The limiter a client's ``rate_limit=`` asks for, on the credential ``key`` of ``store``:
    None for ``False``; adaptive for ``None`` or ``True``; else the configured limit. Shared
    through the store when it offers ``rate_limit_state(key)`` (the Redis and file stores)."""
    if config is False:
        return None
    if config is None or config is True:
        limit = None
    elif isinstance(config, RateLimit):
        limit = config
    else:
        raise ConfigurationError(
            "rate_limit must be a vendorkit.RateLimit, None (adaptive, the default) or False "
            f"(off), got {type(config).__name__}"
        )
    make = getattr(store, "rate_limit_state", None)
    if callable(make):
        quota: Quota = make(key)
    else:
        quota = _LOCAL.get(key) or _LOCAL.setdefault(key, LocalQuota())
    return RateLimiter(quota, limit)


class RateLimiter:
    """Permits for one credential. The request pipeline calls, for each attempt::

        if limiter.engaged:
            waited = await limiter.acquire()
        ... send ...
        limiter.on_response(status, headers)

    ``engaged`` is False only while an adaptive limiter has never been throttled: then
    neither call does more than count (``acquire()`` would return 0.0 at once).
    """

    def __init__(self, quota: Quota, limit: RateLimit | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quota = quota
        self.limit = limit
        self._clock = clock
        self._adaptive = limit is None
        self._rate = limit.per_second if limit is not None else 0.0
        #: The burst the server allows beyond its rate: the limiter spends half of it, the
        #: other half absorbs the jitter between here and the server (a burst spent to the
        #: last request leaves a packet that arrives early nowhere to go).
        self._server_burst = (limit.burst or 1) if limit is not None else 1
        self._burst = max(1, self._server_burst // 2)
        self._local = quota if isinstance(quota, LocalQuota) else None
        #: False: adaptive and never throttled, acquire() is a no-op. A shared adaptive
        #: limiter starts engaged, to learn from the store whether the fleet is throttled.
        self.engaged = limit is not None or quota.shared or (
            self._local is not None and self._local.state.rate > 0)
        #: Seconds callers of acquire() spent waiting, in all.
        self.waited = 0.0
        #: Throttle signals seen: 429s and answers with no requests remaining.
        self.throttles = 0
        self._pause = 0.0  # when this process knows the pause ends (its clock)
        self._shared_rate = self._rate  # the rate the shared state answered last
        self._interval = 0.0  # between two permits, as the state answered last
        self._ok = 0  # successful answers before the first throttle, for the estimate
        self._first_ok = 0.0
        self._estimated = False
        self._report = NO_REPORT  # what the shared state has not been told yet
        self._waiting: list[asyncio.Future[tuple[float, bool]]] = []
        self._pump: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        what = "adaptive" if self.limit is None else f"{self.limit.rate:g}/{self.limit.per:g}s"
        return f"<RateLimiter {what} {type(self.quota).__name__}>"

    # --- stats ----------------------------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """Permits a second now; None while nothing limits them (adaptive, not throttled)."""
        if self._local is not None and self._adaptive:
            rate = adaptive_rate(self._local.state, self._clock())
        else:
            rate = self._shared_rate
        return rate or None

    @property
    def paused_for(self) -> float:
        """Seconds left of the pause a throttle set (0.0: none)."""
        pause = self._paused_until()
        return 0.0 if pause == 0.0 else max(0.0, pause - self._clock())

    def _paused_until(self) -> float:
        return self._local.state.pause if self._local is not None else self._pause

    # --- the pipeline's calls -------------------------------------------------------------

    async def acquire(self) -> float:
        """Wait for a permit; the seconds waited. Cancelling the wait gives the permit up."""
        if not self.engaged:
            return 0.0
        clock = self._clock
        started = clock()
        punctual = True  # a permit used too late is given up, once per call
        while True:
            known = self._paused_until()
            asked = clock()
            due, granted = self._take_local() if self._local is not None else (
                await self._take_shared())
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            if not granted:
                continue  # its permit was too far ahead to reserve: ask again, now nearer
            if punctual and clock() - max(due, asked) > self._lateness():
                # This process stalled (a busy CPU, a long callback) past its permit: the
                # permits due meanwhile would all go at once, a burst the server never
                # granted. Give this one up; the slot stays unused and the next is later.
                punctual = False
                continue
            pause = self._paused_until()
            now = clock()
            if pause <= now:
                break
            if pause <= known:
                # The state granted a permit inside a pause this process knew of: it has not
                # heard of the pause (Redis was down). Sit the pause out here, spread.
                left = pause - now
                await asyncio.sleep(left + random.uniform(0.0, self._spread(left)))
            # Else a pause began after the permit was granted: the permit is void; take a
            # new one, which the state schedules after the pause, spread.
        waited = clock() - started
        self.waited += waited
        return waited

    def on_response(self, status: int, headers: Mapping[str, str],
                    now: float | None = None) -> None:
        """Learn from an answer: a 429 or a ``RateLimit-Remaining: 0`` pauses the credential."""
        if status != 429:
            remaining = headers.get("ratelimit-remaining") or headers.get(
                "x-ratelimit-remaining")
            if remaining is None or remaining.strip() != "0":
                if not self.engaged:
                    self._ok += 1
                    if self._ok == 1:
                        self._first_ok = self._clock()
                return
        delay = throttle_delay(status, headers)
        throttled = status == 429
        if delay is None and not throttled:
            return
        self.throttles += 1
        now = self._clock() if now is None else now
        pause = min(delay or 0.0, MAX_PAUSE)
        estimate = 0.0
        if throttled and self._adaptive and not self._estimated:
            self._estimated = True
            window = max(now - self._first_ok if self._ok else 0.0, ESTIMATE_WINDOW)
            estimate = self._ok / window
        if pause > 0:
            self._pause = max(self._pause, now + pause)
        report = Report(pause, throttled, estimate)
        self.engaged = True
        if self._local is not None:
            throttle(self._local.state, now, report, self._adaptive)
        else:
            self._report = self._report.merge(report)
            self._kick()

    # --- permits ------------------------------------------------------------------------

    def _take_local(self) -> tuple[float, bool]:
        assert self._local is not None
        now = self._clock()
        grant = self._local.take_now(now, 1, NO_REPORT, self._rate, self._burst,
                                     self._adaptive)
        return self._due(grant, now, 0)

    def _due(self, grant: Grant, now: float, index: int) -> tuple[float, bool]:
        """When taker ``index`` of ``grant`` may send (True) or ask again (False), in this
        process's clock."""
        wait, granted = grant.due(index)
        self._interval = grant.interval
        if granted and grant.interval == 0.0 and wait > 0:  # a pause with no rate: spread
            wait += random.uniform(0.0, self._spread(wait))
        return now + wait, granted

    def _lateness(self) -> float:
        """How late a permit may be used: half the server's burst (the half the limiter
        leaves unspent), and at least ``LATE_INTERVALS`` intervals. Unlimited while no rate
        spaces the permits."""
        interval = self._interval
        if interval <= 0.0:
            return math.inf
        return max((self._server_burst - 1) * interval / 2, LATE_INTERVALS * interval)

    @staticmethod
    def _spread(pause: float) -> float:
        """The window over which calls resume after ``pause`` s when no rate spaces them."""
        return min(RESUME_SPREAD * pause, RESUME_SPREAD_MAX)

    async def _take_shared(self) -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: what waited on the old one is gone
            self._loop, self._waiting, self._pump = loop, [], None
        due: asyncio.Future[tuple[float, bool]] = loop.create_future()
        self._waiting.append(due)
        self._kick()
        return await due

    def _kick(self) -> None:
        """Start the task that talks to the shared state, unless it is running."""
        if self._pump is not None and not self._pump.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside a loop: the next acquire() carries the report
            return
        if self._loop is not loop:
            self._loop, self._waiting = loop, []
        self._pump = loop.create_task(self._run_pump())

    async def _run_pump(self) -> None:
        """One round trip at a time: each takes the permits of every caller that arrived
        meanwhile, and carries what this process saw, so a busy process batches for free."""
        while self._waiting or self._report is not NO_REPORT:
            batch = [due for due in self._waiting if not due.done()]
            self._waiting = []
            report, self._report = self._report, NO_REPORT
            try:
                grant = await self.quota.take(len(batch), report, self._rate, self._burst,
                                              self._adaptive)
            except Exception as exc:
                for due in batch:
                    if not due.done():
                        due.set_exception(exc)
                continue
            except BaseException:  # cancelled with its loop: the callers go with it
                for due in batch:
                    due.cancel()
                raise
            now = self._clock()
            self._learn(grant, now)
            for index, due in enumerate(batch):
                if not due.done():
                    due.set_result(self._due(grant, now, index))

    def _learn(self, grant: Grant, now: float) -> None:
        if grant.pause > 0:
            self._pause = max(self._pause, now + grant.pause)
        self._shared_rate = grant.rate
        if self._adaptive and grant.rate <= 0 and grant.pause <= 0 and not self.throttles:
            self.engaged = False  # the fleet is not throttled: the free fast path
