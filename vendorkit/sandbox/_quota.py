"""A per-credential request quota: GCRA (the generic cell rate algorithm), off by default.

GCRA keeps one number per credential, the theoretical arrival time (TAT) of its next
request. A request at ``now`` is allowed when ``TAT - burst * interval <= now - interval``,
that is when at most ``burst`` requests are "ahead" of the steady rate; it then moves the
TAT one interval on. A refused request learns exactly when it would be allowed, which the
emulator sends back as ``Retry-After`` (whole seconds, rounded up).
"""

from __future__ import annotations

import math
import time

import attrs


@attrs.frozen
class Quota:
    """``rate`` requests per ``per`` seconds for each credential, ``burst`` of them at once."""

    rate: float = attrs.field()
    burst: int = attrs.field(default=1)
    per: float = attrs.field(default=1.0)

    @rate.validator
    def _positive_rate(self, _: object, value: float) -> None:
        if not value > 0:
            raise ValueError(f"quota rate must be more than 0, got {value}")

    @burst.validator
    def _positive_burst(self, _: object, value: int) -> None:
        if value < 1:
            raise ValueError(f"quota burst must be at least 1, got {value}")

    @per.validator
    def _positive_per(self, _: object, value: float) -> None:
        if not value > 0:
            raise ValueError(f"quota period must be more than 0, got {value}")

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady rate."""
        return self.per / self.rate

    @classmethod
    def parse(cls, text: str) -> Quota:
        """``"RATE"`` or ``"RATE/BURST"`` requests per second, e.g. ``"400/20"``."""
        rate, _, burst = text.strip().partition("/")
        try:
            return cls(float(rate), int(burst) if burst else 1)
        except ValueError as exc:
            reason = str(exc) if "quota" in str(exc) else "expected RATE or RATE/BURST, e.g. 400/20"
            raise ValueError(f"invalid quota {text!r}: {reason}") from None

    def __str__(self) -> str:
        per = "s" if self.per == 1 else f"{self.per:g} s"
        return f"{self.rate:g}/{per}, burst {self.burst}"


@attrs.define
class Limiter:
    """The GCRA state of one emulator: a TAT per credential."""

    quota: Quota
    _tat: dict[str, float] = attrs.field(factory=dict, init=False)

    def wait(self, credential: str, now: float | None = None) -> float:
        """0.0 and a permit taken, or the seconds until ``credential`` may call again."""
        now = time.monotonic() if now is None else now
        interval = self.quota.interval
        tat = max(self._tat.get(credential, now), now)
        allowed_at = tat + interval - self.quota.burst * interval
        if now < allowed_at:
            return allowed_at - now
        self._tat[credential] = tat + interval
        return 0.0


def retry_after(wait: float) -> int:
    """A wait as ``Retry-After`` says it: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))
