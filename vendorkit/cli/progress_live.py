"""The demo's live progress: one bar per vendor on a terminal, a status line a second else."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

__all__ = ["LiveProgress"]


class LiveProgress:
    """Calls done per vendor, with its retries, the emulator's logins and refreshes, and
    the 429s when the snapshot counts them (``rate_limited``)."""

    def __init__(self, out: Console, vendors: list[tuple[str, int]], started: float) -> None:
        self._out = out
        self._started = started
        self._live = out.is_terminal
        #: Seconds between refreshes: fast on a terminal, a line a second on a pipe.
        self.interval = 0.1 if self._live else 1.0
        self._progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), console=out, auto_refresh=self._live,
            disable=not self._live,
        )
        self._tasks: dict[str, TaskID] = {
            vendor: self._progress.add_task(vendor, total=calls, status="")
            for vendor, calls in vendors
        }
        self._totals = dict(vendors)

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def refresh(self, snapshots: Mapping[str, Mapping[str, int]]) -> None:
        """Show each vendor's figures: done, failed, retries, logins, refreshes."""
        if self._live:
            for vendor, figures in snapshots.items():
                self._progress.update(self._tasks[vendor], completed=figures["done"],
                                      status=_status(figures))
            return
        parts = [f"{vendor} {figures['done']}/{self._totals[vendor]}"
                 for vendor, figures in snapshots.items()]
        self._out.print(f"{self._clock()}  {'  '.join(parts)}", highlight=False)

    def event(self, vendor: str, label: str) -> None:
        """A fault injected into ``vendor``'s emulator, printed above the bars."""
        self._out.print(f"{self._clock()}  {vendor}: {label}", highlight=False, markup=False)

    def _clock(self) -> str:
        return f"{time.perf_counter() - self._started:6.1f} s"


def _status(figures: Mapping[str, int]) -> str:
    failed = f"  [red]{figures['failed']} failed[/]" if figures["failed"] else ""
    throttled = figures.get("rate_limited", 0)
    limited = f"  [yellow]{throttled} x 429[/]" if throttled else ""
    return (f"retries {figures['retries']:>3}  logins {figures['logins']:>2}  "
            f"refreshes {figures['refreshes']:>2}{limited}{failed}")
