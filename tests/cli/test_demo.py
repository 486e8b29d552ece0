"""``vendorkit demo``: thousands of calls to every emulated vendor, and an honest verdict."""

from __future__ import annotations

from tests.cli.conftest import CLI
from vendorkit.cli.demo_report import VendorResult, login_bound
from vendorkit.sandbox import VENDORS


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The summary table's cells by vendor (the plain, ASCII-boxed table of a pipe)."""
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and cells[0] in (*VENDORS, "all"):
            rows[cells[0]] = cells
    return rows


def test_demo_runs_every_vendor_with_faults_and_passes(cli: CLI) -> None:
    result = cli.run("demo", "--calls", "200", "--concurrency", "50")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == {*VENDORS, "all"}
    for vendor in VENDORS:
        _, calls, ok, failed, retries, logins, refreshes, _, logouts, *_ = rows[vendor]
        assert (calls, ok, failed) == ("200", "200", "0")
        assert int(retries) >= 1 + 2 + 1  # a 429, two 503 bursts, a 503 at the re-login
        assert 2 <= int(logins) + int(refreshes) <= 10  # the revocation forces one more
        assert logouts in (("1", "expired") if vendor in ("cloud4wi", "wogeez") else ("n/a",))
    assert rows["all"][1:4] == ["1,000", "1,000", "0"]
    assert "PASS: all 1,000 calls succeeded" in result.stdout
    assert "every token revoked" in result.stdout
    assert "elapsed" in result.stdout


def test_demo_without_faults_retries_nothing(cli: CLI) -> None:
    result = cli.run("demo", "--calls", "100", "--no-faults", "--vendors", "cloudcx,wogeez")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == {"cloudcx", "wogeez", "all"}
    assert [rows[v][4] for v in ("cloudcx", "wogeez")] == ["0", "0"]  # retries
    assert [rows[v][7] for v in ("cloudcx", "wogeez")] == ["0", "0"]  # re-logins


def test_demo_refuses_an_unknown_vendor(cli: CLI) -> None:
    result = cli.run("demo", "--vendors", "acme")

    assert result.returncode == 2
    assert "unknown vendor acme" in result.stderr
    assert "Traceback" not in result.stderr


def result(**figures: object) -> VendorResult:
    defaults: dict[str, object] = dict(
        vendor="wokelo", calls=100, ok=100, failed=0, retries=0, logins=1, refreshes=2,
        relogins_after_rejection=0, logouts=None, logout_refused=False, latencies=[0.1],
        seconds=4.0, revocations=1, token_lifetime=3.0, errors=[])
    return VendorResult(**(defaults | figures))  # type: ignore[arg-type]


def test_login_bound_allows_one_renewal_per_half_lifetime_and_one_per_revocation() -> None:
    assert login_bound(4.0, 3.0, revocations=1) == 1 + 3 + 1 + 1
    assert login_bound(4.0, 3600.0, revocations=0) == 1 + 1 + 0 + 1  # renews at 59 min


def test_verdict_fails_a_login_storm_a_failed_call_and_a_missing_logout() -> None:
    assert result().problems() == []
    assert "login storm" in result(logins=40).problems()[0]
    assert "3 of 100 calls failed" in result(ok=97, failed=3).problems()[0]
    assert result(logouts=0).problems() == ["did not log out"]
    assert result(logouts=0, logout_refused=True).problems() == []  # the token had expired
