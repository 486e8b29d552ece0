"""``vendorkit demo``: thousands of calls to every emulated vendor, and an honest verdict."""

from __future__ import annotations

import re

from tests.cli.conftest import CLI
from vendorkit.cli.demo import choose_variants
from vendorkit.cli.demo_report import VendorResult, login_bound
from vendorkit.sandbox import VENDORS, variants_of


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
        _, calls, ok, failed, retries, _, logins, refreshes, _, logouts, *_ = rows[vendor]
        assert (calls, ok, failed) == ("200", "200", "0")
        assert int(retries) >= 1 + 2 + 1  # a 429, two 503 bursts, a 503 at the re-login
        assert 2 <= int(logins) + int(refreshes) <= 10  # the revocation forces one more
        assert logouts in (("1", "expired") if vendor in ("cloud4wi", "wogeez") else ("n/a",))
    assert rows["all"][1:4] == ["1,000", "1,000", "0"]
    assert "PASS: all 1,000 calls succeeded" in result.stdout
    assert "every token revoked" in result.stdout
    assert "elapsed" in result.stdout


def test_demo_without_faults_retries_nothing(cli: CLI) -> None:
    result = cli.run("demo", "--calls", "100", "--no-faults", "--no-quota",
                     "--vendors", "cloudcx,wogeez")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == {"cloudcx", "wogeez", "all"}
    assert [rows[v][4] for v in ("cloudcx", "wogeez")] == ["0", "0"]  # retries
    assert [rows[v][5] for v in ("cloudcx", "wogeez")] == ["0", "0"]  # 429s
    assert [rows[v][8] for v in ("cloudcx", "wogeez")] == ["0", "0"]  # re-logins


def test_demo_with_a_quota_counts_the_429s_in_its_table(cli: CLI) -> None:
    # One call at a time: each 429 is followed by a wait of Retry-After (1 s), after which
    # the quota has a permit again, so no call can run out of attempts.
    result = cli.run("demo", "--calls", "6", "--concurrency", "1", "--no-faults",
                     "--quota", "100", "--vendors", "cambyopro")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "a quota of 100/s, burst 1 per credential" in result.stdout
    _, calls, ok, failed, retries, limited, *_ = table_rows(result.stdout)["cambyopro"]
    assert (calls, ok, failed) == ("6", "6", "0")
    assert 1 <= int(limited) <= 5
    assert int(retries) >= int(limited)  # every 429 was retried
    assert table_rows(result.stdout)["all"][5] == limited


def test_demo_variants_prints_the_seed_and_the_choice_and_repeats_it(cli: CLI) -> None:
    args = ("demo", "--calls", "20", "--concurrency", "5", "--no-faults", "--variants")
    seeded = [cli.run(*args, "--seed", "7") for _ in range(2)]
    unseeded = cli.run(*args, "--vendors", "cloudcx")

    lines = [next(line for line in run.stdout.splitlines() if line.startswith("variants ("))
             for run in seeded]
    chosen = ", ".join(f"{v}={name}" for v, name in choose_variants(list(VENDORS), 7).items())
    assert lines[0] == lines[1] == (
        f"variants (seed 7; repeat with --variants --seed 7): {chosen}")
    assert all(name in variants_of(vendor)
               for vendor, name in choose_variants(list(VENDORS), 7).items())
    seed = re.search(r"variants \(seed (\d+);", unseeded.stdout)
    assert seed is not None, unseeded.stdout
    assert f"cloudcx={choose_variants(['cloudcx'], int(seed.group(1)))['cloudcx']}" in (
        unseeded.stdout)
    for run in (*seeded, unseeded):
        assert "Traceback" not in run.stderr
        assert "elapsed" in run.stdout  # the run went to the end, pass or fail


def test_demo_refuses_an_unknown_vendor(cli: CLI) -> None:
    result = cli.run("demo", "--vendors", "acme")

    assert result.returncode == 2
    assert "unknown vendor acme" in result.stderr
    assert "Traceback" not in result.stderr


def result(**figures: object) -> VendorResult:
    defaults: dict[str, object] = dict(
        vendor="wokelo", calls=100, ok=100, failed=0, retries=0, rate_limited=0, logins=1,
        refreshes=2,
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
