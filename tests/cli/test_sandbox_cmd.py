"""``vendorkit sandbox``: the emulators for manual use and other programs' tests."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess

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
