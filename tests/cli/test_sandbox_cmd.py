"""``vendorkit sandbox``: the emulators for manual use and other programs' tests."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
from typing import Any

import aiohttp
import pytest

from tests.cli.conftest import CLI
from vendorkit.sandbox import DEFAULT_CREDENTIALS, VENDORS


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Lines of stdout up to and including the first that contains ``marker``."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in output:\n" + "\n".join(lines))


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=15)
    return process.returncode, stderr


def test_sandbox_prints_urls_and_credentials_serves_calls_and_stops_on_ctrl_c(cli: CLI) -> None:
    process = cli.start("sandbox")
    try:
        lines = read_until(process, "Ready.")
        urls = dict(re.findall(r"^(\w+)\s+(http://127\.0\.0\.1:\d+)$", "\n".join(lines), re.M))
        exports = dict(line.removeprefix("export ").split("=", 1)
                       for line in lines if line.startswith("export "))

        called = cli.run("call", "cambyopro", "GET", "/api/v1/account", env=exports)
    finally:
        status, stderr = stop(process, signal.SIGINT)

    assert set(urls) == set(VENDORS)
    assert DEFAULT_CREDENTIALS["wokelo"]["password"] in "\n".join(lines)  # test credentials
    assert exports["VENDORKIT_CLOUD4WI_BASE_URL"] == urls["cloud4wi"]
    assert exports["VENDORKIT_WOGEEZ_ISSUER"] == urls["wogeez"] + "/realms/wogeez"
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["clientId"] == DEFAULT_CREDENTIALS["cambyopro"]["client_id"]
    assert status == 0
    assert "stopped" in stderr
    assert "Traceback" not in stderr


def test_sandbox_json_serves_chosen_vendors_on_the_given_port_until_sigterm(cli: CLI) -> None:
    with socket.socket() as probe:  # a port free right now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = cli.start("sandbox", "--json", "--port", str(port), "--vendors", "cloudcx")
    try:
        assert process.stdout is not None
        described = json.loads(process.stdout.readline())
    finally:
        status, stderr = stop(process, signal.SIGTERM)

    assert list(described) == ["cloudcx"]
    assert described["cloudcx"]["base_url"] == f"http://127.0.0.1:{port}"
    assert described["cloudcx"]["credentials"] == DEFAULT_CREDENTIALS["cloudcx"]
    assert described["cloudcx"]["environment"]["VENDORKIT_CLOUDCX_USERNAME"] == "sandbox.admin"
    assert status == 0, stderr


def test_sandbox_on_a_taken_port_is_one_line(cli: CLI) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli.run("sandbox", "--port", str(port), "--vendors", "wogeez")

    assert result.returncode == 1
    line = cli.one_line(result.stderr)
    assert str(port) in line
    assert "address already in use" in line
    assert "Traceback" not in result.stderr


def call_twice(base_url: str, credentials: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
    """Log in to the CloudCX emulator, then ask twice for a page of 100 users."""

    async def run() -> list[tuple[int, dict[str, Any]]]:
        async with aiohttp.ClientSession() as http:
            form = {"grant_type": "password", **{k: credentials[k] for k in (
                "client_id", "client_secret", "username", "password")}}
            async with http.post(f"{base_url}/oauth/token", data=form) as answer:
                token = (await answer.json())["access_token"]
            pages = []
            for _ in range(2):
                async with http.get(f"{base_url}/openapi/v2/user/page?pageSize=100",
                                    headers={"Authorization": f"Bearer {token}"}) as answer:
                    pages.append((answer.status, await answer.json()))
            return pages

    return asyncio.run(run())


def test_sandbox_serves_the_chosen_variants_and_quota(cli: CLI) -> None:
    process = cli.start("sandbox", "--json", "--vendors", "cloudcx,wogeez", "--variant",
                        "cloudcx=capped-page", "--variant", "CloudCX=records-envelope",
                        "--quota", "0.5/1")
    try:
        assert process.stdout is not None
        described = json.loads(process.stdout.readline())
        cloudcx = described["cloudcx"]
        (status, page), (limited, refusal) = call_twice(cloudcx["base_url"],
                                                        cloudcx["credentials"])
    finally:
        code, stderr = stop(process, signal.SIGTERM)

    assert cloudcx["variants"] == ["capped-page", "records-envelope"]
    assert described["wogeez"]["variants"] == []
    assert cloudcx["quota"] == described["wogeez"]["quota"] == "0.5/s, burst 1"
    assert status == 200 and len(page["data"]["records"]) == 50 == page["data"]["size"]
    assert (limited, refusal["retry_after"]) == (429, 2)
    assert code == 0, stderr


def test_sandbox_describes_variants_and_quota_for_a_person(cli: CLI) -> None:
    process = cli.start("sandbox", "--vendors", "cloud4wi", "--variant", "cloud4wi=envelope",
                        "--quota", "400/20")
    try:
        lines = read_until(process, "Ready.")
    finally:
        stop(process, signal.SIGINT)

    assert any(re.fullmatch(r"\s+variants\s+envelope", line) for line in lines), lines
    assert any(re.fullmatch(r"\s+quota\s+400/s, burst 20 per credential", line)
               for line in lines), lines


@pytest.mark.parametrize(("args", "message"), [
    (("--variant", "cloudcx=nope"), "unknown cloudcx variant 'nope'; cloudcx variants: "),
    (("--variant", "capped-page"), "expected VENDOR=VARIANT"),
    (("--variant", "acme=x"), "unknown vendor 'acme'"),
    (("--quota", "fast"), "invalid quota 'fast'"),
    (("--vendors", "cloudcx", "--variant", "wogeez=capped-page"),
     "--variant for wogeez, which --vendors leaves out"),
])
def test_sandbox_refuses_unknown_variants_and_bad_quotas(
    cli: CLI, args: tuple[str, ...], message: str
) -> None:
    result = cli.run("sandbox", *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
