"""Progress of ``vendorkit collect`` on stderr: a live bar on a terminal, else a line a second.

Beside the items, the sending rate: requests a second as sent, the credential's limit
(configured, or learned from throttling), a pause a throttle set, and the 429s so far.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..events import Stats
from ..ratelimit import RateLimiter

__all__ = ["PageProgress", "RateStatus"]

#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL = 1.0
#: Seconds between two refreshes of the rate on a terminal.
LIVE_INTERVAL = 0.25


class RateStatus:
    """``"48.0 req/s  limit 50/s  paused 0.8 s  3 x 429"``: how fast a client sends, and why
    not faster. The rate sent is measured over the last second or more."""

    def __init__(self, stats: Stats, limiter: RateLimiter | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stats = stats
        self._limiter = limiter
        self._clock = clock
        self._since, self._requests = clock(), stats.requests
        self._sent: float | None = None

    def __call__(self) -> str:
        now, requests = self._clock(), self._stats.requests
        elapsed = now - self._since
        if elapsed >= 1.0 or (self._sent is None and elapsed >= 0.1):
            self._sent = (requests - self._requests) / elapsed
            if elapsed >= 1.0:
                self._since, self._requests = now, requests
        parts = [] if self._sent is None else [f"{self._sent:.1f} req/s"]
        limiter = self._limiter
        if limiter is not None and limiter.rate is not None:
            learned = "" if limiter.limit is not None else "learned "
            parts.append(f"{learned}limit {_figure(limiter.rate)}/s")
        if limiter is not None and limiter.paused_for > 0:
            parts.append(f"paused {limiter.paused_for:.1f} s")
        if self._stats.rate_limited:
            parts.append(f"{self._stats.rate_limited} x 429")
        return "  ".join(parts)


def _figure(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


class PageProgress:
    """Items written so far, out of the listing's total once the first page tells it,
    refreshed while it runs (``async with``) even when no page comes (a pause)."""

    def __init__(self, label: str, completed: int, total: int | None,
                 status: Callable[[], str] | None = None) -> None:
        self._label = label
        self._completed = completed
        self._total = total
        self._status = status
        self._console = Console(file=sys.stderr)
        self._bar: Progress | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._last_line = 0.0
        if self._console.is_terminal:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[status]}"),
                                 console=self._console, transient=False)
            self._task = self._bar.add_task(label, completed=completed, total=total,
                                            status="")

    async def __aenter__(self) -> PageProgress:
        if self._bar is not None:
            self._bar.start()
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def update(self, completed: int, total: int | None) -> None:
        self._completed, self._total = completed, total
        self.refresh(final=completed == total)

    def refresh(self, *, final: bool = False) -> None:
        """Show the figures now on a terminal; on a pipe, when a second has passed."""
        if self._bar is not None:
            self._bar.update(self._task, completed=self._completed, total=self._total,
                             status=self._status() if self._status else "")
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_INTERVAL or final:
            self._last_line = now
            of = f"/{self._total}" if self._total is not None else ""
            status = self._status() if self._status else ""
            print(f"{self._label}: {self._completed}{of}" + (f"  {status}" if status else ""),
                  file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Stop refreshing and the live bar (idempotent), so that what follows prints below."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._bar is not None:
            self._bar.stop()

    async def _tick(self) -> None:
        interval = PLAIN_INTERVAL if self._bar is None else LIVE_INTERVAL
        while True:
            await asyncio.sleep(interval)
            self.refresh()
