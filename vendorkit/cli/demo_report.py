"""The demo's summary table and verdict: every call succeeded, no login storm, logged out."""

from __future__ import annotations

import math

import attrs
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .._constants import ADVISORY_REFRESH_FRACTION, ADVISORY_REFRESH_SECONDS

__all__ = ["Report", "VendorResult", "login_bound", "print_report"]

#: Token renewals allowed beyond the expected ones before the verdict calls it a storm.
SLACK = 1

#: The summary's columns (rows on a narrow terminal), headed to wrap into narrow columns.
COLUMNS = ("vendor", "calls", "ok", "failed", "retries", "429", "logins", "refreshes",
           "re-logins\nafter\nrejection", "logouts", "p50\nms", "p99\nms", "calls\n/s")

FOOTNOTES = (
    "logins, refreshes, logouts: the emulators' own counters (what the server saw).",
    "retries: attempts the client repeated after a 429, 503 or dropped connection.",
    "429: the emulators' 429 answers, from the quota (--quota) and the injected faults.",
    "re-logins after rejection (*): the client's logins because the server refused a token "
    "(401/403) or a refresh token; usually one per vendor for the mass revocation (none when "
    "a scheduled login was already under way).",
    "logouts: n/a where the vendor documents no logout (Wokelo, CloudCX, CambyoPro): the "
    "client drops the token; expired: the token had expired by the logout, nothing to revoke.",
    "p50/p99: each call from start to typed result, retries and re-logins included. The "
    "emulators share this process and event loop, so latency and calls/s measure client "
    "and server together.",
)


def login_bound(seconds: float, token_lifetime: float, revocations: int) -> int:
    """Most logins + refreshes a vendor may need: the first login, one renewal each time
    a token reaches its advisory refresh window, one per revocation, plus a little slack."""
    renew_after = token_lifetime - min(ADVISORY_REFRESH_SECONDS,
                                       token_lifetime * ADVISORY_REFRESH_FRACTION)
    return 1 + math.ceil(seconds / max(renew_after, 0.001)) + revocations + SLACK


@attrs.frozen
class VendorResult:
    """One vendor's figures after the run and the logout."""

    vendor: str
    calls: int
    ok: int
    failed: int
    retries: int
    rate_limited: int  # 429s the emulator answered (its counter)
    logins: int
    refreshes: int
    relogins_after_rejection: int
    logouts: int | None  # None: the vendor has no logout to count
    logout_refused: bool  # the logout came after the token had expired: nothing to revoke
    latencies: list[float]  # seconds, sorted
    seconds: float
    revocations: int
    token_lifetime: float
    errors: list[tuple[str, int]]

    @property
    def bound(self) -> int:
        return login_bound(self.seconds, self.token_lifetime, self.revocations)

    def percentile(self, share: float) -> float:
        """Milliseconds below which ``share`` of the calls finished (nearest rank)."""
        if not self.latencies:
            return 0.0
        rank = max(0, math.ceil(share * len(self.latencies)) - 1)
        return self.latencies[rank] * 1000

    def problems(self) -> list[str]:
        """What keeps this vendor from passing; empty when it passes."""
        found = []
        if self.failed or self.ok != self.calls:
            found.append(f"{self.failed} of {self.calls} calls failed")
        renewals = self.logins + self.refreshes
        if self.logins < 1 or renewals > self.bound:
            found.append(f"{self.logins} logins + {self.refreshes} refreshes, expected 1 to "
                         f"{self.bound}: a login storm")
        if self.logouts is not None and self.logouts < 1 and not self.logout_refused:
            found.append("did not log out")
        return found


@attrs.frozen
class Report:
    results: list[VendorResult]
    elapsed: float
    token_lifetime: float
    faults: bool

    @property
    def passed(self) -> bool:
        return not any(result.problems() for result in self.results)


def _row(result: VendorResult) -> list[str]:
    rate = result.calls / result.seconds if result.seconds > 0 else 0.0
    return [result.vendor, f"{result.calls:,}", f"{result.ok:,}", f"{result.failed:,}",
            f"{result.retries:,}", f"{result.rate_limited:,}", str(result.logins),
            str(result.refreshes),
            str(result.relogins_after_rejection), _logouts(result),
            f"{result.percentile(0.5):.0f}", f"{result.percentile(0.99):.0f}", f"{rate:,.0f}"]


def _total_row(report: Report) -> list[str]:
    results = report.results
    calls = sum(r.calls for r in results)
    return ["all", f"{calls:,}", f"{sum(r.ok for r in results):,}",
            f"{sum(r.failed for r in results):,}", f"{sum(r.retries for r in results):,}",
            f"{sum(r.rate_limited for r in results):,}", str(sum(r.logins for r in results)),
            str(sum(r.refreshes for r in results)),
            str(sum(r.relogins_after_rejection for r in results)),
            str(sum(r.logouts or 0 for r in results)), "", "",
            f"{calls / report.elapsed:,.0f}" if report.elapsed else ""]


def summary_table(out: Console, report: Report) -> Table:
    """A row per vendor; on a terminal too narrow for that, a column per vendor."""
    rows = [_row(result) for result in report.results] + [_total_row(report)]
    style = box.SIMPLE_HEAVY if out.is_terminal else box.ASCII
    table = Table(box=style, title="vendorkit demo", title_justify="left")
    for name in COLUMNS:
        table.add_column(name, justify="left" if name == "vendor" else "right", no_wrap=True)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*rows[-1])
    if Measurement.get(out, out.options.update(max_width=1000), table).maximum <= out.width:
        return table
    turned = Table(box=style, title="vendorkit demo", title_justify="left",
                   padding=(0, 1), collapse_padding=True)
    turned.add_column("", no_wrap=True)
    for row in rows:
        turned.add_column(row[0], justify="right", no_wrap=True)
    for index, name in enumerate(COLUMNS[1:], start=1):
        label = name.replace("\n/", "/").replace("\n", " ").replace(" after rejection", "*")
        turned.add_row(label,
                       *(row[index] for row in rows))
    return turned


def _logouts(result: VendorResult) -> str:
    if result.logouts is None:
        return "n/a"
    if result.logouts == 0 and result.logout_refused:
        return "expired"
    return str(result.logouts)


def print_report(out: Console, report: Report) -> None:
    """The table, its footnotes, the failures if any, and one verdict line."""
    results = report.results
    calls = sum(r.calls for r in results)
    table = summary_table(out, report)
    out.print()
    out.print(table)
    for note in FOOTNOTES:
        out.print(f"  {note}", highlight=False)
    for result in results:
        for message, count in result.errors:
            out.print(f"  {result.vendor}: {count} x {message}", highlight=False, markup=False)
    out.print()
    problems = [f"{r.vendor}: {p}" for r in results for p in r.problems()]
    bounds = ", ".join(f"{r.vendor} {r.logins + r.refreshes}/{r.bound}" for r in results)
    if problems:
        out.print(Text.assemble(("FAIL", "bold red"), f": {'; '.join(problems)}"))
    else:
        logged_out = [r.vendor for r in results if r.logouts]
        out.print(Text.assemble(
            ("PASS", "bold green"),
            f": all {calls:,} calls succeeded; logins + refreshes within bounds ({bounds}); "
            f"logged out of {', '.join(logged_out) or 'none'}"))
    out.print(f"elapsed {report.elapsed:.1f} s", highlight=False)
