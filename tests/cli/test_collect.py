"""``vendorkit collect``: whole listings to JSON Lines, page by page, resumable after Ctrl-C."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vendorkit.sandbox import SandboxState

if TYPE_CHECKING:
    from tests.cli.conftest import CLI, Sandboxes

USERS, COMPANIES = 2500, 300


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON Lines file, parsed (a torn line fails the test)."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the file ends mid-line"
    return [json.loads(line) for line in text.splitlines()]


def test_collect_cloudcx_users_writes_every_user_once(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "users.jsonl"

    result = cli.run("collect", "cloudcx", "users", "--sandbox", "--out", str(out))

    assert result.returncode == 0, result.stderr
    users = records(out)
    assert len(users) == len({user["id"] for user in users}) == USERS
    assert {"id", "userName", "displayName", "email"} <= set(users[0])  # the vendor's keys
    assert "role" in users[0]  # a key the model does not declare is kept
    assert f"wrote {USERS} users to {out}" in result.stdout
    assert not Path(f"{out}.progress").exists()


def test_collect_wogeez_companies_writes_every_company(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "companies.jsonl"

    result = cli.run("collect", "wogeez", "companies", "--sandbox", "--out", str(out),
                     "--page-size", "40")

    assert result.returncode == 0, result.stderr
    companies = records(out)
    assert len({company["id"] for company in companies}) == len(companies) == COMPANIES
    assert "foundedYear" in companies[0]


def test_collect_with_keywords_keeps_only_matching_users(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "silva.jsonl"

    result = cli.run("collect", "cloudcx", "users", "--keywords", "silva", "--sandbox",
                     "--out", str(out))

    assert result.returncode == 0, result.stderr
    users = records(out)
    assert 0 < len(users) < USERS
    assert all("silva" in (user["userName"] + user["displayName"] + user["email"]).lower()
               for user in users)


def test_interrupted_collect_leaves_whole_pages_and_resume_completes_it(
    cli: CLI, sandbox: Sandboxes, tmp_path: Path
) -> None:
    out = tmp_path / "users.jsonl"
    env = sandbox.env("cloudcx")
    state = sandbox.state("cloudcx")

    def set_latency(seconds: float) -> None:
        def change(target: SandboxState = state) -> None:
            target.faults.latency = seconds

        sandbox.thread.call(change)

    set_latency(0.05)  # 50 pages of 50 users: long enough to interrupt
    process = cli.start("collect", "cloudcx", "users", "--page-size", "50", "--out", str(out),
                        env=env)
    deadline = time.monotonic() + 30
    while (not out.exists() or out.stat().st_size < 20_000) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    set_latency(0)

    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    assert "Traceback" not in stderr
    partial = records(out)
    assert 0 < len(partial) < USERS
    assert len(partial) % 50 == 0  # whole pages only

    other_settings = cli.run("collect", "cloudcx", "users", "--page-size", "100",
                             "--out", str(out), "--resume", env=env)
    not_resumed = cli.run("collect", "cloudcx", "users", "--page-size", "50",
                          "--out", str(out), env=env)
    resumed = cli.run("collect", "cloudcx", "users", "--page-size", "50", "--out", str(out),
                      "--resume", env=env)

    assert other_settings.returncode == 2
    assert "page_size differs" in cli.one_line(other_settings.stderr)
    assert not_resumed.returncode == 2
    assert "pass --resume" in cli.one_line(not_resumed.stderr)
    assert resumed.returncode == 0, resumed.stderr
    users = records(out)
    assert users[: len(partial)] == partial
    assert len(users) == len({user["id"] for user in users}) == USERS
    pages = sandbox.counters("cloudcx")["requests"]
    assert isinstance(pages, dict)
    # Each page asked for once, and perhaps again the one in flight at Ctrl-C.
    assert USERS // 50 <= pages["GET /openapi/v2/user/page"] <= USERS // 50 + 1


def test_resume_of_a_finished_file_is_refused(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "companies.jsonl"
    assert cli.run("collect", "wogeez", "companies", "--sandbox", "--out",
                   str(out)).returncode == 0

    result = cli.run("collect", "wogeez", "companies", "--sandbox", "--out", str(out),
                     "--resume")

    assert result.returncode == 2
    assert "no progress record" in cli.one_line(result.stderr)
    assert len(records(out)) == COMPANIES


def test_collect_refuses_an_unknown_listing(cli: CLI, tmp_path: Path) -> None:
    result = cli.run("collect", "wokelo", "companies", "--sandbox",
                     "--out", str(tmp_path / "x.jsonl"))

    assert result.returncode == 2
    assert "collectable: cloudcx users, wogeez companies" in cli.one_line(result.stderr)
