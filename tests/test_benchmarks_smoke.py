"""The benchmark command, run with tiny numbers so it cannot rot: not a measurement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.contenders import CONTENDERS

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 5


def test_benchmark_command_writes_every_contender_to_a_table_and_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--n", "20", "--runs", "1",
         "--concurrency", str(CONCURRENCY), "--max-seconds", "5", "--storm-calls", "100",
         "--storm-concurrency", "20", "--expiry-lifetime", "1.5", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text())
    measured = {(row["contender"], row["concurrency"]) for row in results["summary"]}
    assert measured == {(name, CONCURRENCY) for name in CONTENDERS}
    assert all(row["calls_per_second"] > 0 and row["peak_rss_mb"] > 0
               for row in results["summary"])
    cold = results["storms"]["cold"]
    assert cold and all(counts == [1] for storm in cold
                        for counts in storm["logins_per_run"].values())
    assert {e["windows"] for e in results["storms"]["expiry"]} == {
        "default windows", "advisory window closed"}

    table = (tmp_path / "results.md").read_text()
    assert "| Concurrency | Contender | calls/s |" in table
    for contender in CONTENDERS.values():
        assert f"| {CONCURRENCY} | {contender.label} |" in table
