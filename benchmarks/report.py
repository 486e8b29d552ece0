"""From samples to figures: medians, ratios to the floor, the targets, the Markdown tables."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from benchmarks.contenders import CONTENDERS

__all__ = ["evaluate_targets", "render_markdown", "summarize"]

#: The issue's targets, for vendorkit's typed call against its floor on the same loop.
THROUGHPUT_RATIO = 0.90
AUTHLIB_MULTIPLE = 10.0
CPU_OVER_FLOOR_US = 10.0
RSS_RATIO = 1.15
STORM_TIME_RATIO = 1.10


def summarize(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (contender, concurrency): medians over rounds, and ratios to the floor
    taken round by round (the floor measured minutes apart would be a weaker comparison)."""
    ok = [s for s in samples if "error" not in s]
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    by_round = {(s["contender"], s["concurrency"], s["round"]): s for s in ok}
    for sample in ok:
        by_key[sample["contender"], sample["concurrency"]].append(sample)
    rows = []
    order = list(CONTENDERS)
    for (name, concurrency), group in sorted(
        by_key.items(), key=lambda item: (item[0][1], order.index(item[0][0]))
    ):
        contender = CONTENDERS[name]
        ratios, cpu_over, rss_ratios, vs_aiohttp = [], [], [], []
        for sample in group:
            floor = by_round.get((contender.floor, concurrency, sample["round"]))
            if floor is not None:
                ratios.append(sample["calls_per_second"] / floor["calls_per_second"])
                cpu_over.append(sample["cpu_us_per_call"] - floor["cpu_us_per_call"])
                rss_ratios.append(sample["peak_rss_mb"] / floor["peak_rss_mb"])
            raw = by_round.get(("aiohttp", concurrency, sample["round"]))
            if raw is not None:
                vs_aiohttp.append(sample["calls_per_second"] / raw["calls_per_second"])
        rows.append({
            "contender": name,
            "label": contender.label,
            "loop": contender.loop,
            "floor": contender.floor,
            "concurrency": concurrency,
            "runs": len(group),
            "n": min(s["n"] for s in group),
            "calls_per_second": _median([s["calls_per_second"] for s in group]),
            "cpu_us_per_call": _median([s["cpu_us_per_call"] for s in group]),
            "peak_rss_mb": _median([s["peak_rss_mb"] for s in group]),
            "ratio_to_floor": _median(ratios),
            "ratio_to_aiohttp": _median(vs_aiohttp),
            "cpu_us_over_floor": _median(cpu_over),
            "rss_ratio_to_floor": _median(rss_ratios),
        })
    return rows


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _row(summary: list[dict[str, Any]], name: str, concurrency: int) -> dict[str, Any] | None:
    return next((r for r in summary
                 if r["contender"] == name and r["concurrency"] == concurrency), None)


def _target(what: str, measured: str, met: bool) -> dict[str, Any]:
    return {"target": what, "measured": measured, "met": met}


def evaluate_targets(
    summary: list[dict[str, Any]], storms: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Each of the issue's targets that this run measured, and whether it was met."""
    targets = []
    pairs = (("vendorkit", "aiohttp"), ("vendorkit-uvloop", "aiohttp-uvloop"))
    for concurrency in (100, 1000):
        for name, floor in pairs:
            row = _row(summary, name, concurrency)
            if row is not None and row["ratio_to_floor"] is not None:
                ratio = row["ratio_to_floor"]
                targets.append(_target(
                    f"{name} >= {THROUGHPUT_RATIO:.2f}x {floor} throughput, "
                    f"concurrency {concurrency}", f"{ratio:.2f}x", ratio >= THROUGHPUT_RATIO))
        row, authlib = _row(summary, "vendorkit", concurrency), _row(summary, "authlib",
                                                                     concurrency)
        if row is not None and authlib is not None:
            multiple = row["calls_per_second"] / authlib["calls_per_second"]
            targets.append(_target(
                f"vendorkit >= {AUTHLIB_MULTIPLE:.0f}x authlib throughput, "
                f"concurrency {concurrency}", f"{multiple:.1f}x",
                multiple >= AUTHLIB_MULTIPLE))
    for row in summary:
        if row["contender"] in ("vendorkit", "vendorkit-uvloop") and \
                row["cpu_us_over_floor"] is not None:
            over = row["cpu_us_over_floor"]
            targets.append(_target(
                f"{row['contender']} CPU per call <= {row['floor']} + "
                f"{CPU_OVER_FLOOR_US:.0f} us, concurrency {row['concurrency']}",
                f"{over:+.1f} us", over <= CPU_OVER_FLOOR_US))
    for name in ("vendorkit", "vendorkit-uvloop"):
        row = _row(summary, name, 1000)
        if row is not None and row["rss_ratio_to_floor"] is not None:
            ratio = row["rss_ratio_to_floor"]
            targets.append(_target(
                f"{name} peak RSS within {RSS_RATIO - 1:.0%} of {row['floor']}'s, "
                "concurrency 1000", f"{ratio - 1:+.1%}", ratio <= RSS_RATIO))
    if storms:
        for cold in storms.get("cold", []):
            ratio, logins = cold["ratio"], cold["logins_per_run"]
            targets.append(_target(
                f"cold storm ({cold['server']}): {cold['calls']:,} calls -> 1 login, time "
                f"<= {STORM_TIME_RATIO:.2f}x raw aiohttp holding a token (request() path)",
                f"logins {sorted({n for counts in logins.values() for n in counts})}, "
                f"{ratio['vendorkit-request']:.2f}x (typed: {ratio['vendorkit']:.2f}x)",
                cold["met"]))
        for expiry in storms.get("expiry", []):
            if not expiry.get("target", True):
                continue
            targets.append(_target(
                f"expiry at concurrency {expiry['concurrency']} ({expiry['windows']}): "
                "1 refresh, no token wait > one login round trip",
                f"{expiry['server_logins']} login(s), max wait "
                f"{expiry['max_token_wait_ms']:.1f} ms vs login "
                f"{_ms(expiry['login_round_trip_ms'])}", expiry["met"]))
    return targets


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def render_markdown(results: dict[str, Any]) -> str:
    """results.md: setup, the throughput table, the storms, the targets."""
    meta = results["meta"]
    server = meta["server"]
    pinning = (f"server pinned to core {server['core']}, each client to core "
               f"{meta['client_core']} (`taskset`)" if meta["client_core"] is not None
               else "not pinned")
    lines = [
        "# vendorkit benchmark results",
        "",
        f"- Run: `{meta['command']}` on {meta['date']} ({meta['seconds']} s)",
        f"- Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, "
        f"Python {meta['python']}; 1-minute load average {meta['load_average']['start']:.2f} "
        f"at the start, {meta['load_average']['end']:.2f} at the end",
        f"- Server: {server['description']}; {pinning}",
        f"- Work: {meta['n']:,} authenticated GETs of the Cloud4Wi organizations endpoint "
        f"per measurement, each body decoded from JSON; median of {meta['runs']} run(s), each "
        "in a fresh process; every client pooled to 100 keep-alive connections.",
        f"- A measurement stops early after {meta['max_seconds']:g} s (`n` shows the calls "
        "made); figures are rates, so they compare across `n`.",
        "- `x floor`: throughput over raw aiohttp's on the same event loop, in the same "
        "round (median of the rounds). CPU is the client process's user+system time.",
        "",
        "| Concurrency | Contender | calls/s | x floor | CPU us/call | CPU over floor "
        "| Peak RSS MB | RSS vs floor | n |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["summary"]:
        lines.append(
            f"| {row['concurrency']:,} | {row['label']} "
            f"| {_fmt(row['calls_per_second'], '{:,.0f}')} "
            f"| {_fmt(row['ratio_to_floor'], '{:.2f}x')} "
            f"| {_fmt(row['cpu_us_per_call'], '{:.1f}')} "
            f"| {_fmt(row['cpu_us_over_floor'], '{:+.1f}')} "
            f"| {_fmt(row['peak_rss_mb'], '{:.1f}')} "
            f"| {_fmt(row['rss_ratio_to_floor'] and row['rss_ratio_to_floor'] - 1, '{:+.1%}')} "
            f"| {row['n']:,} |"
        )
    storms = results.get("storms")
    if storms and "error" not in storms:
        lines += ["", "## Token storms", "",
                  "| Cold storm | Server | Logins per run | raw aiohttp, token held "
                  "| vendorkit request(), no token | vendorkit typed, no token |",
                  "|---|---|---:|---:|---:|---:|"]
        for cold in storms["cold"]:
            medians, ratio = cold["median_seconds"], cold["ratio"]
            logins = sorted({n for counts in cold["logins_per_run"].values() for n in counts})
            lines.append(
                f"| {cold['calls']:,} concurrent calls | {cold['server']} "
                f"| {', '.join(map(str, logins))} "
                f"| {medians['aiohttp'] * 1000:.0f} ms "
                f"| {medians['vendorkit-request'] * 1000:.0f} ms "
                f"({ratio['vendorkit-request']:.2f}x) "
                f"| {medians['vendorkit'] * 1000:.0f} ms ({ratio['vendorkit']:.2f}x) |")
        lines += ["", "| Expiry under load | Calls | Logins (server) | Rejected | Calls "
                  "that waited | Max token wait | Login round trip | New token, after its "
                  "window opened | p99 latency |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for expiry in storms["expiry"]:
            note = "" if expiry.get("target", True) else " (not a target)"
            lines.append(
                f"| concurrency {expiry['concurrency']:,}, {expiry['windows']}{note} "
                f"| {expiry['calls']:,} | {expiry['server_logins']} | {expiry['rejected']} "
                f"| {expiry['calls_that_waited']:,} | {expiry['max_token_wait_ms']:.1f} ms "
                f"| {_ms(expiry['login_round_trip_ms'])} | {_ms(expiry['renewed_at_ms'])} "
                f"| {expiry['p99_latency_ms']:.1f} ms |")
    elif storms:
        lines += ["", f"Token storms failed: {storms['error']}"]
    lines += ["", "## Targets", "", "| Target | Measured | Met |", "|---|---:|:---:|"]
    for target in results["targets"]:
        lines.append(f"| {target['target']} | {target['measured']} "
                     f"| {'yes' if target['met'] else '**no**'} |")
    return "\n".join(lines) + "\n"
