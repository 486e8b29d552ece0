"""The soak benchmark, small: zero failed calls, no login storm, no fd or memory growth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def test_short_soak_with_short_tokens_and_injected_503s_fails_no_call_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [sys.executable, str(SOAK), "--calls", "3000", "--concurrency", "100",
         "--token-lifetime", "0.5", "--error-rate", "0.01", "--sample-interval", "0.25",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((tmp_path / "soak.json").read_text())["result"]
    assert (tmp_path / "soak.md").read_text().startswith("# vendorkit soak")

    assert result["calls"] == 3000
    assert result["failures"] == 0, result["failures_by_error"]
    server = result["server"]
    assert server["faults"] >= 20  # the 503s really were injected (1% of 3,000+)...
    assert result["client"]["retries"] >= server["faults"]  # ...and every one retried
    renewals = result["renewals"]
    # 0.5 s tokens were renewed during the run, about once per half-life: no login storm.
    assert 2 <= renewals["logins_plus_refreshes"] <= 2 * renewals["expected_at_half_life"] + 3
    resources = result["resources"]
    assert len(result["samples"]) >= 2
    assert resources["fds"]["growth"] <= 5
    assert resources["rss_mb"]["growth"] <= 15
