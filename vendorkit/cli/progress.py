"""Progress of ``vendorkit collect`` on stderr: a live bar on a terminal, else a line a second."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["PageProgress"]

#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL = 1.0


class PageProgress:
    """Items written so far, out of the listing's total once the first page tells it."""

    def __init__(self, label: str, completed: int, total: int | None) -> None:
        self._label = label
        self._completed = completed
        self._total = total
        self._console = Console(file=sys.stderr)
        self._bar: Progress | None = None
        self._last_line = 0.0
        if self._console.is_terminal:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self._console, transient=False)
            self._task = self._bar.add_task(label, completed=completed, total=total)

    def __enter__(self) -> PageProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def update(self, completed: int, total: int | None) -> None:
        self._completed, self._total = completed, total
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, total=total)
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_INTERVAL or completed == total:
            self._last_line = now
            of = f"/{total}" if total is not None else ""
            print(f"{self._label}: {completed}{of}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Stop the live bar (idempotent), so that what follows prints below it."""
        if self._bar is not None:
            self._bar.stop()
