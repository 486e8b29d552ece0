"""The state of one credential's rate limit, and where it lives: this process, a file, Redis.

One algorithm, written twice: in Python (:func:`take`, :func:`throttle`, used in process
and for the file) and in Lua (:data:`SCRIPT`, run atomically by Redis). The state is ten
numbers, all times in the backend's clock (``time.monotonic()`` in process, ``time.time()``
for a file, Redis's ``TIME`` for Redis, so a fleet needs no synchronised clocks):

- ``tat``: GCRA's theoretical arrival time; a permit taken at ``now`` may go at
  ``max(tat, now) - tolerance`` and moves ``tat`` one interval on. Permits are
  reservations: a taker learns when its permit is due and sleeps until then.
- ``pause``: no permit is due before it (the server's ``Retry-After``). A pause also moves
  ``tat`` to ``pause + tolerance``, so the permits after it are spread at the rate, one
  interval apart, instead of being released at one instant.
- ``tat_rate``: the rate ``tat`` was last moved at. When the rate changes, the debt
  ``tat - now`` is rescaled: so many permits owed, not so many seconds.
- ``rate``, ``peak``, ``since``, ``probe``: the adaptive rate (:func:`adaptive_rate`); zero
  until the first throttle, meaning "no limit": an adaptive limiter costs nothing until then.
- ``sent``, ``sent_at``, ``sent_rate``: the permits taken in the current window, when it
  began, and the rate of the last window: what the credential actually sends.

A backend answers :meth:`Quota.take` with a :class:`Grant`: when the first of ``n`` permits
is due and the interval between them, relative to its own clock, so the caller converts
nothing but a duration.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path
from typing import IO, Protocol

import attrs

from ..errors import TokenStoreError

__all__ = [
    "FileQuota",
    "Grant",
    "LocalQuota",
    "Quota",
    "QuotaState",
    "SCRIPT",
    "RedisQuota",
    "Report",
    "adaptive_rate",
    "script_args",
    "take",
    "throttle",
]

#: Adaptive rate, slow start: from the first estimate (a lower bound, see ratelimit) the
#: rate doubles every this many seconds until the next throttle ...
SLOW_START_DOUBLING = 0.3
#: ... whose rate of the permits then answered, times this, is taken as the peak (later,
#: ``PLATEAU`` times the rate throttled): the rate grows smoothly, so it has crossed the
#: limit by little when the server's burst runs out. It is probed ``PROBE_STEP`` above
#: the plateau after ``SLOW_START_PROBE_TIME`` s. Measured on ``benchmarks/quota.py``
#: (real processes, 400/s): a peak of 0.6 times the rate settled at 63% of the quota, and
#: a probe after 5 s cost one more pause and a lower plateau within the 10 s run.
SLOW_START_BETA = 0.95
SLOW_START_PROBE_TIME = 10.0
#: After a throttle the rate drops to ``BETA * peak`` (multiplicative decrease, shallow:
#: the server's pause has drained what was in flight) and climbs along a cubic to
#: ``PLATEAU * peak`` in ``CUBIC_RECOVERY`` s (a later throttle, on the plateau or above
#: it, makes ``PLATEAU`` times its rate the peak); then it probes above the
#: plateau, slowly: ``PROBE_STEP`` higher after ``PROBE_TIME`` s, and as a cubic, so
#: faster after that (CUBIC, as TCP and botocore's adaptive mode, with a slower probe:
#: each probe that finds the limit costs a pause the server sets, a second or more).
BETA = 0.9
PLATEAU = 0.9
CUBIC_RECOVERY = 1.0
PROBE_STEP = 0.1
PROBE_TIME = 10.0
#: The adaptive rate never climbs above this multiple of the last throttled peak, nor above
#: ``MAX_GROWTH`` times the rate the credential actually sent (measured by the state over
#: windows of ``SEND_WINDOW`` s, pauses left out): a rate that nothing uses is not learned,
#: so a fleet that cannot reach it does not stop being limited.
MAX_GROWTH = 2.0
SEND_WINDOW = 0.5
#: Nor falls below this many permits a second.
MIN_RATE = 0.5
#: The 429s of one episode decrease the rate once: an episode lasts until the pause after
#: its decrease ends, and at least this many seconds (answers to calls already in flight).
EPISODE = 0.5
#: Permits are reserved at most this many seconds ahead; a taker whose permit would be due
#: later learns when to ask again. A reservation is fixed, so a horizon keeps a rising rate
#: (or a pause) from being stuck behind permits handed out at an older rate.
RESERVE_AHEAD = 0.25
#: The slow start doubles the first estimate at most this many times.
SLOW_START_MAX_DOUBLINGS = 12.0
#: A shared state nobody touched for this long is dropped (Redis TTL).
STATE_TTL = 3600.0


@attrs.define(slots=True)
class QuotaState:
    """The numbers one credential's limit keeps (see the module docstring)."""

    tat: float = 0.0
    pause: float = 0.0
    rate: float = 0.0
    peak: float = 0.0
    since: float = 0.0
    tat_rate: float = 0.0
    probe: float = 0.0
    sent: float = 0.0
    sent_at: float = 0.0
    sent_rate: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return attrs.asdict(self)


@attrs.frozen(slots=True)
class Report:
    """What a process saw since it last spoke to the shared state.

    ``pause``: seconds from now during which nothing may be sent (0: none).
    ``throttled``: a 429 was answered (the adaptive rate decreases, once per episode).
    ``estimate``: the process's first throttle: permits a second it saw admitted before it.
    """

    pause: float = 0.0
    throttled: bool = False
    estimate: float = 0.0

    def merge(self, other: Report) -> Report:
        return Report(max(self.pause, other.pause), self.throttled or other.throttled,
                      max(self.estimate, other.estimate))


@attrs.frozen(slots=True)
class Grant:
    """The answer to a take of ``n`` permits, in seconds from the backend's now.

    The first ``count`` takers have a permit: permit ``i`` is due in ``first + i * interval``
    (``interval`` is 0 when there is no rate: adaptive, never throttled). The others ask
    again when the next permit comes within ``RESERVE_AHEAD`` (see :meth:`due`). ``pause``
    is what is left of the pause (<= 0: none), ``rate`` the permits a second now (0: none).
    """

    first: float
    interval: float
    pause: float
    rate: float
    count: int

    def due(self, index: int) -> tuple[float, bool]:
        """Seconds until taker ``index`` may send (True) or must ask again (False)."""
        if index < self.count:
            return self.first + index * self.interval, True
        # When the next permit comes within reach; no later than the first is due, though:
        # the rate may rise by then (slow start) and bring it nearer.
        return self.first + min(self.count * self.interval, RESERVE_AHEAD) - RESERVE_AHEAD, False


NO_REPORT = Report()
#: As for the token file: no symlink followed (the file is truncated and rewritten), no
#: descriptor inherited by a child process.
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def adaptive_rate(state: QuotaState, now: float) -> float:
    """The learned rate at ``now``: 0 (no limit) before any throttle; then a slow start from
    the first estimate; after later throttles the cubic curve of the constants above, ``t``
    counted from the end of the pause that followed the last decrease."""
    if state.rate <= 0:
        return 0.0
    elapsed = now - state.since
    if elapsed <= 0:
        return state.rate
    if state.peak <= 0:
        doublings = min(elapsed / SLOW_START_DOUBLING, SLOW_START_MAX_DOUBLINGS)
        rate = state.rate * math.pow(2.0, doublings)
    else:
        target = PLATEAU * state.peak
        shape = (elapsed - CUBIC_RECOVERY) / (
            CUBIC_RECOVERY if elapsed < CUBIC_RECOVERY else state.probe)
        if elapsed < CUBIC_RECOVERY:
            rate = target + (target - state.rate) * shape**3
        else:
            rate = target * (1 + PROBE_STEP * shape**3)
        rate = min(rate, MAX_GROWTH * state.peak)
    sent = sent_rate(state, now)
    if sent > 0:
        rate = min(rate, MAX_GROWTH * sent)
    return float(max(rate, state.rate))


def throttle(state: QuotaState, now: float, report: Report, adaptive: bool) -> None:
    """Apply what a process saw: extend the pause; on a 429, decrease the adaptive rate
    once per episode (an episode lasts until the pause that followed its decrease ends)."""
    if report.pause > 0:
        state.pause = max(state.pause, now + report.pause)
        state.sent, state.sent_at = 0.0, state.pause  # measure again from the pause's end
    if not adaptive or not report.throttled:
        return
    if state.rate <= 0:  # the first throttle: start from what was admitted before it
        state.rate = max(MIN_RATE, report.estimate)
        state.peak = 0.0
        state.since = max(state.pause, now + EPISODE)
    elif now < state.since:  # the same episode
        if state.peak <= 0 and report.estimate > 0:
            state.rate += report.estimate  # each process of a fleet adds what it saw
    else:
        # The rate throttled: that of the permits answered now, reserved up to the horizon
        # earlier (as far ahead as the state has reserved).
        current = adaptive_rate(state, now - min(max(state.tat - now, 0.0), RESERVE_AHEAD))
        starting = state.peak <= 0
        # Later, on the plateau or probing: the limit is below the rate throttled.
        peak = current * (SLOW_START_BETA if starting else PLATEAU)
        state.peak = max(MIN_RATE, peak)
        state.probe = SLOW_START_PROBE_TIME if starting else PROBE_TIME
        state.rate = max(MIN_RATE, BETA * state.peak)
        state.since = max(state.pause, now + EPISODE)


def sent_rate(state: QuotaState, now: float) -> float:
    """Permits a second taken lately: in the window running now if it is long enough, else
    in the last one (0.0: not measured yet)."""
    elapsed = now - state.sent_at
    if elapsed >= SEND_WINDOW / 4 and state.sent_at > 0:
        return max(state.sent / elapsed, state.sent_rate)
    return state.sent_rate


def _count_sent(state: QuotaState, now: float, count: int) -> None:
    elapsed = now - state.sent_at
    if elapsed >= SEND_WINDOW:
        if state.sent_at > 0:
            state.sent_rate = state.sent / elapsed
        state.sent, state.sent_at = 0.0, now
    state.sent += count


def take(state: QuotaState, now: float, n: int, rate: float, burst: int) -> Grant:
    """Reserve ``n`` permits (GCRA; ``rate`` permits a second, or 0 for the adaptive rate)."""
    if rate <= 0:
        rate = adaptive_rate(state, now)
    if rate <= 0:
        return Grant(state.pause - now, 0.0, state.pause - now, 0.0, n)
    interval = 1.0 / rate
    tolerance = (burst - 1) * interval
    tat = state.tat
    anchor = max(now, state.pause)
    if tat > anchor and state.tat_rate > 0:  # debt taken at another rate: in permits, the same
        tat = anchor + (tat - anchor) * state.tat_rate / rate
    tat = max(tat, now, state.pause + tolerance)
    first = tat - tolerance - now
    count = 0 if first > RESERVE_AHEAD else min(n, int((RESERVE_AHEAD - first) / interval) + 1)
    state.tat = tat + count * interval
    state.tat_rate = rate
    _count_sent(state, now, count)
    return Grant(first, interval, state.pause - now, rate, count)


class Quota(Protocol):
    """Where one credential's state lives; ``take`` also applies a :class:`Report` first."""

    shared: bool

    async def take(self, n: int, report: Report, rate: float, burst: int,
                   adaptive: bool) -> Grant: ...


class LocalQuota:
    """The state in this process (synchronous: no await on the hot path)."""

    shared = False

    def __init__(self) -> None:
        self.state = QuotaState()

    def take_now(self, now: float, n: int, report: Report, rate: float, burst: int,
                 adaptive: bool) -> Grant:
        if report is not NO_REPORT:
            throttle(self.state, now, report, adaptive)
        return take(self.state, now, n, rate, burst)

    async def take(self, n: int, report: Report, rate: float, burst: int,
                   adaptive: bool) -> Grant:
        return self.take_now(time.monotonic(), n, report, rate, burst, adaptive)


class FileQuota:
    """The state of every credential of one token file, in a JSON file beside it, read and
    rewritten under an OS file lock: the limit holds for the processes of one host."""

    shared = True

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key

    async def take(self, n: int, report: Report, rate: float, burst: int,
                   adaptive: bool) -> Grant:
        try:
            return await asyncio.to_thread(self._take, n, report, rate, burst, adaptive)
        except OSError as exc:  # e.g. a symlink where the state file should be
            raise TokenStoreError(
                f"the rate limit's state file {str(self.path)!r} could not be used "
                f"({exc.strerror or type(exc).__name__})"
            ) from None

    def _take(self, n: int, report: Report, rate: float, burst: int, adaptive: bool) -> Grant:
        # Imported here: filelock brings decimal, hmac and secrets along (1.1 MB of memory in
        # every process), and only a FileTokenStore fleet's limiter needs it.
        from filelock import lock_descriptor, unlock_descriptor

        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
        with os.fdopen(fd, "r+") as file:
            lock_descriptor(fd)  # held for microseconds: a read and a write
            try:
                return self._change(file, n, report, rate, burst, adaptive)
            finally:
                unlock_descriptor(fd)

    def _change(self, file: IO[str], n: int, report: Report, rate: float, burst: int,
                adaptive: bool) -> Grant:
        now = time.time()
        states = _read_states(file.read(), now)
        state = QuotaState(**states.get(self.key, {}))
        throttle(state, now, report, adaptive)
        grant = take(state, now, n, rate, burst)
        states[self.key] = state.as_dict()
        file.seek(0)
        file.truncate()
        file.write(json.dumps(states, separators=(",", ":")))
        file.flush()
        return grant


def _read_states(text: str, now: float) -> dict[str, dict[str, float]]:
    """The file's states still in use; an unreadable file reads as empty (it holds no
    secret and nothing that cannot be learned again)."""
    try:
        content = json.loads(text) if text else {}
    except ValueError:
        return {}
    fields = set(attrs.fields_dict(QuotaState))
    states = {}
    for key, value in (content.items() if isinstance(content, dict) else ()):
        if (isinstance(value, dict) and set(value) == fields
                and all(isinstance(v, int | float) and math.isfinite(v) for v in value.values())
                and max(value["tat"], value["pause"], value["since"]) + STATE_TTL > now):
            states[key] = value
    return states


# KEYS[1]: the state hash. ARGV: n, rate (0: adaptive), burst, report pause, report
# throttled (0/1), report estimate, adaptive (0/1), then the constants in the order of
# script_args(). Step by step the same as adaptive_rate(), sent_rate(), throttle() and take()
# above. Numbers cross as "%.17g" strings: Lua would truncate a number reply to an integer,
# and its tostring() keeps 14 digits.
SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local r_pause, r_throttled, r_estimate = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local adaptive = ARGV[7] == '1'
local C = {}
for i, name in ipairs({'DOUBLING', 'MAX_DOUBLINGS', 'SS_BETA', 'SS_PROBE', 'BETA', 'PLATEAU',
    'K', 'PROBE_STEP', 'PROBE', 'MAX_GROWTH', 'SEND_WINDOW', 'MIN_RATE', 'EPISODE', 'AHEAD',
    'TTL'}) do
  C[name] = tonumber(ARGV[7 + i])
end
local FIELDS = {'tat', 'pause', 'rate', 'peak', 'since', 'tat_rate', 'probe', 'sent',
  'sent_at', 'sent_rate'}
local raw = redis.call('HMGET', KEYS[1], unpack(FIELDS))
local S = {}
for i, name in ipairs(FIELDS) do S[name] = tonumber(raw[i]) or 0 end

local function sent_rate(at)
  local elapsed = at - S.sent_at
  if elapsed >= C.SEND_WINDOW / 4 and S.sent_at > 0 then
    return math.max(S.sent / elapsed, S.sent_rate)
  end
  return S.sent_rate
end

local function adaptive_rate(at)
  if S.rate <= 0 then return 0 end
  local elapsed = at - S.since
  if elapsed <= 0 then return S.rate end
  local r
  if S.peak <= 0 then
    r = S.rate * 2 ^ math.min(elapsed / C.DOUBLING, C.MAX_DOUBLINGS)
  else
    local target = C.PLATEAU * S.peak
    if elapsed < C.K then
      local shape = (elapsed - C.K) / C.K
      r = target + (target - S.rate) * shape * shape * shape
    else
      local shape = (elapsed - C.K) / S.probe
      r = target * (1 + C.PROBE_STEP * shape * shape * shape)
    end
    r = math.min(r, C.MAX_GROWTH * S.peak)
  end
  local sent = sent_rate(at)
  if sent > 0 then r = math.min(r, C.MAX_GROWTH * sent) end
  return math.max(r, S.rate)
end

if r_pause > 0 then
  S.pause = math.max(S.pause, now + r_pause)
  S.sent, S.sent_at = 0, S.pause
end
if adaptive and r_throttled then
  if S.rate <= 0 then
    S.rate = math.max(C.MIN_RATE, r_estimate); S.peak = 0
    S.since = math.max(S.pause, now + C.EPISODE)
  elseif now < S.since then
    if S.peak <= 0 and r_estimate > 0 then S.rate = S.rate + r_estimate end
  else
    local current = adaptive_rate(now - math.min(math.max(S.tat - now, 0), C.AHEAD))
    local peak
    if S.peak <= 0 then
      peak = current * C.SS_BETA; S.probe = C.SS_PROBE
    else
      peak = current * C.PLATEAU; S.probe = C.PROBE
    end
    S.peak = math.max(C.MIN_RATE, peak)
    S.rate = math.max(C.MIN_RATE, C.BETA * S.peak)
    S.since = math.max(S.pause, now + C.EPISODE)
  end
end

if rate <= 0 then rate = adaptive_rate(now) end
local first, interval, count = S.pause - now, 0, n
if rate > 0 then
  interval = 1 / rate
  local tolerance = (burst - 1) * interval
  local tat = S.tat
  local anchor = math.max(now, S.pause)
  if tat > anchor and S.tat_rate > 0 then tat = anchor + (tat - anchor) * S.tat_rate / rate end
  tat = math.max(tat, now, S.pause + tolerance)
  first = tat - tolerance - now
  if first > C.AHEAD then count = 0 else
    count = math.min(n, math.floor((C.AHEAD - first) / interval) + 1)
  end
  S.tat, S.tat_rate = tat + count * interval, rate
  local elapsed = now - S.sent_at
  if elapsed >= C.SEND_WINDOW then
    if S.sent_at > 0 then S.sent_rate = S.sent / elapsed end
    S.sent, S.sent_at = 0, now
  end
  S.sent = S.sent + count
end

local f = '%.17g'
local flat = {}
for _, name in ipairs(FIELDS) do
  flat[#flat + 1] = name; flat[#flat + 1] = string.format(f, S[name])
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('PEXPIRE', KEYS[1], math.floor(C.TTL * 1000))
return {string.format(f, first), string.format(f, interval), string.format(f, S.pause - now),
  string.format(f, rate), count, string.format(f, now)}
"""


def script_args(n: int, report: Report, rate: float, burst: int,
                adaptive: bool) -> list[str | int]:
    """The ARGV of :data:`SCRIPT`: the take, the report, then the constants in its order."""
    return [n, repr(float(rate)), burst, repr(float(report.pause)), int(report.throttled),
            repr(float(report.estimate)), int(adaptive), *(repr(float(v)) for v in (
        SLOW_START_DOUBLING, SLOW_START_MAX_DOUBLINGS, SLOW_START_BETA, SLOW_START_PROBE_TIME,
        BETA, PLATEAU, CUBIC_RECOVERY, PROBE_STEP, PROBE_TIME, MAX_GROWTH, SEND_WINDOW,
        MIN_RATE, EPISODE, RESERVE_AHEAD, STATE_TTL))]


class ScriptRunner(Protocol):
    """The store side of :class:`RedisQuota` (``RedisTokenStore.run_script``)."""

    async def run_script(self, script: str, keys: list[str],
                         args: list[str | int]) -> object: ...


class RedisQuota:
    """The state in one Redis hash, changed by one Lua script: one round trip for a batch of
    permits and whatever the process reports, atomically, for the whole fleet. While Redis
    is unreachable (and the store is not strict), the process keeps its own state."""

    shared = True

    def __init__(self, store: ScriptRunner, redis_key: str) -> None:
        self.store = store
        self.redis_key = redis_key
        self.fallback = LocalQuota()

    async def take(self, n: int, report: Report, rate: float, burst: int,
                   adaptive: bool) -> Grant:
        args = script_args(n, report, rate, burst, adaptive)
        reply = await self.store.run_script(SCRIPT, [self.redis_key], args)
        if not isinstance(reply, list):  # None: Redis is unreachable
            return await self.fallback.take(n, report, rate, burst, adaptive)
        first, interval, pause, current = (float(v) for v in reply[:4])
        return Grant(first, interval, pause, current, int(reply[4]))


def file_quota_path(token_path: Path) -> Path:
    """Where a :class:`FileQuota` lives: beside the token file."""
    return token_path.with_name(token_path.name + ".ratelimit")

