"""No secret leaks: every client and the CLI, with DEBUG logging, through logins, refreshes,
re-auths, failures and logouts; then every log line, repr, exception text and line of CLI
output is searched for every credential and every token the sandbox issued.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vendorkit
from tests.conftest import metric_points
from vendorkit.events import EVENT_KINDS, Event
from vendorkit.sandbox import DEFAULT_CREDENTIALS, VENDORS, SandboxThread
from vendorkit.vendors import CLIENTS

from .support import (
    PROBES,
    SECRET_FIELDS,
    Lab,
    issued_secrets,
    issued_tokens,
    leaks,
    sleep_until,
    until,
)

CLI_PACKAGE = Path(vendorkit.__file__).parent / "cli"


class Evidence:
    """Everything a secret could leak into, gathered as text."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *values: object) -> None:
        self.texts.extend(repr(v) if not isinstance(v, str) else v for v in values)

    def error(self, exc: BaseException) -> None:
        self.add(str(exc), repr(exc), "".join(traceback.format_exception(exc)))
        self.add(str(getattr(exc, "body_excerpt", "")))

    def text(self) -> str:
        return "\n".join(self.texts)


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, vendorkit's, aiohttp's and asyncio's alike."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    return "\n".join(handler.format(record) for record in caplog.records)


async def _ordeal(
    lab: Lab, vendor: str, evidence: Evidence, log: pytest.LogCaptureFixture, *, api_key: bool
) -> Any:
    """Drive one client through everything that touches a secret; returns its sandbox."""
    sandbox = await lab.sandbox(vendor, token_lifetime=1.5)
    probe = PROBES[vendor]
    events: list[Event] = []
    hooks = {kind: [events.append] for kind in EVENT_KINDS}
    if api_key:
        client = lab.api_key_client(sandbox, event_hooks=hooks)
    else:
        client = lab.client(sandbox, event_hooks=hooks)
    faults = sandbox.state.faults
    # Error bodies below quote back what their request carried, as careless servers do.
    # The secrets this client holds: CloudCX's emulator knows an API key and a password grant.
    credentials = [
        v for k, v in sandbox.credentials.items()
        if k in SECRET_FIELDS and (k == "api_key") == api_key
    ]

    token = await client.login()
    evidence.add(client, client.session, client.session.auth, token, client.stats)
    assert await probe.call(client)

    faults.fail_next(2, 503)  # retried, logged
    assert await probe.call(client)

    echo = {"message": f"bad token {token.access_token}", "detail": " ".join(credentials)}
    faults.fail_next(1, 400, body=json.dumps(echo))
    with pytest.raises(vendorkit.APIError) as api_error:
        await probe.call(client)
    evidence.error(api_error.value)

    faults.malformed_next(1, kind="html")
    with pytest.raises(vendorkit.ResponseParseError) as parse_error:
        await probe.call(client)
    evidence.error(parse_error.value)

    sandbox.state.revoke_all_tokens()  # a rejection, a re-login, a replay
    assert await probe.call(client)

    # A renewal that fails (logged as a warning) while the token is still good, then works.
    current = client.token
    assert current is not None
    if current.expires_at is not None:  # an API key never expires, nor is renewed
        assert current.lifetime is not None
        sent = [*credentials, current.refresh_token or ""]
        refusal = {"error": "server_error", "error_description": " ".join(sent)}
        faults.fail_next(10, 500, target="auth", body=json.dumps(refusal))
        await sleep_until(current.expires_at - current.lifetime / 2 + 0.05)
        assert await probe.call(client)  # starts the background renewal, which fails
        await until(lambda: any("refresh failed" in r.getMessage() for r in log.records))
        faults.clear()
        await sleep_until(current.expires_at - 0.1)
        assert await probe.call(client)  # mandatory window: renewed now
        evidence.add(client.token)

        # A login the server refuses, quoting the secret.
        refused = {"error": "invalid_client", "error_description": " ".join(credentials)}
        faults.fail_next(1, 401, target="auth", body=json.dumps(refused))
        with pytest.raises(vendorkit.AuthenticationError) as auth_error:
            await client.login()
        evidence.error(auth_error.value)

    evidence.add(client, client.session, client.session.auth, client.token, client.stats)
    await client.logout()
    await client.aclose()
    evidence.add(*events)
    return sandbox


@pytest.mark.parametrize("vendor", [*VENDORS, "cloudcx-api-key"])
async def test_no_client_puts_a_secret_in_logs_reprs_errors_spans_or_metrics(
    lab: Lab, vendor: str, debug_log: pytest.LogCaptureFixture, otel: tuple[Any, Any]
) -> None:
    evidence = Evidence()
    name, _, mode = vendor.partition("-")
    sandbox = await _ordeal(lab, name, evidence, debug_log, api_key=mode == "api-key")
    exporter, reader = otel
    spans = exporter.get_finished_spans()
    assert any(span.name.startswith("vendorkit.login") for span in spans) or mode
    evidence.add(*(span.to_json() for span in spans))  # attributes, events, child spans
    evidence.add(*(point.attributes for points in metric_points(reader).values()
                   for point in points))  # metric labels
    evidence.add(*(vars(record) for record in debug_log.records))  # log ``extra`` fields

    secrets = issued_secrets([sandbox])
    logs = _log_text(debug_log)
    # Login, re-login after the revocation, renewal; an API key is the only "token" otherwise.
    assert len(issued_tokens(sandbox.state)) >= (1 if mode else 3)
    assert re.search(r"GET /\S+ -> 200", logs)  # requests were logged at DEBUG
    assert not leaks(logs, secrets)
    assert not leaks(evidence.text(), secrets)


# --- the CLI --------------------------------------------------------------------------------

#: One authenticated request per vendor, as ``vendorkit call`` arguments.
CLI_CALLS = {
    "cloud4wi": ("GET", "/v2/customers/organizations/cid-1"),
    "wokelo": ("GET", "/api/enterprise/company/search", "-p", "query=a"),
    "cloudcx": ("GET", "/openapi/v2/user/page", "-p", "pageSize=5"),
    "cambyopro": ("GET", "/api/v1/account"),
    "wogeez": ("GET", "/companies", "-p", "size=5"),
}
#: A JWT, or an opaque token (the sandbox's are 64 url-safe characters or more).
TOKEN_SHAPES = re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}|[\w-]{60,}")


def _token_shaped(text: str) -> list[str]:
    """Token-like strings in ``text`` (a table's ``-----`` border is not one)."""
    found = TOKEN_SHAPES.findall(text)
    return [f"{m[:6]}...({len(m)} chars)" for m in found if sum(c.isalnum() for c in m) >= 20]


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vendorkit.cli", *args, "--debug",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode() + stderr.decode()


def _cli_environment(tmp_path: Path) -> dict[str, str]:
    """No config file and a token cache of its own: the run touches nothing of the user's."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.mark.skipif(not CLI_PACKAGE.joinpath("__main__.py").exists(),
                    reason="vendorkit.cli is not written yet")
async def test_cli_sandbox_commands_print_no_credential_and_nothing_shaped_like_a_token(
    tmp_path: Path,
) -> None:
    env = _cli_environment(tmp_path)
    # Every vendor's token and call commands run in the next test, against known tokens.
    commands = [
        ("demo", "--calls", "100", "--concurrency", "20"),
        ("token", "wogeez", "--sandbox"),
        ("call", "cloud4wi", *CLI_CALLS["cloud4wi"], "--sandbox"),
    ]
    runs = await asyncio.gather(*(_cli(*command, env=env) for command in commands))

    credentials = {
        value for creds in DEFAULT_CREDENTIALS.values()
        for field, value in creds.items() if field in SECRET_FIELDS
    }
    for command, (status, output) in zip(commands, runs, strict=True):
        assert status == 0, (command, output[-2000:])
        assert "DEBUG" in output  # --debug really logged
        assert not leaks(output, credentials), command
        assert _token_shaped(output) == [], command


@pytest.mark.skipif(not CLI_PACKAGE.joinpath("__main__.py").exists(),
                    reason="vendorkit.cli is not written yet")
def test_cli_against_a_configured_vendor_prints_no_token_the_server_issued(
    tmp_path: Path,
) -> None:
    with SandboxThread(VENDORS, token_lifetime=30.5) as thread:
        env = _cli_environment(tmp_path)
        for vendor, running in thread.sandboxes.items():
            prefix = f"VENDORKIT_{CLIENTS[vendor].env_name}_"
            env |= {prefix + name.upper(): value for name, value in running.client_kwargs.items()}
        commands = [
            *(("token", vendor) for vendor in VENDORS),
            *(("call", vendor, *CLI_CALLS[vendor]) for vendor in VENDORS),
            *(("logout", vendor) for vendor in ("cloud4wi", "wogeez")),  # those with a logout
        ]

        async def in_turn(vendor: str) -> list[tuple[int, str]]:
            # token, call, logout: one after the other, sharing the token cache.
            return [await _cli(*command, env=env) for command in commands if command[1] == vendor]

        async def run_all() -> list[tuple[int, str]]:
            per_vendor = await asyncio.gather(*(in_turn(vendor) for vendor in VENDORS))
            by_command = dict(zip(
                [c for v in VENDORS for c in commands if c[1] == v],
                [run for runs in per_vendor for run in runs],
                strict=True,
            ))
            return [by_command[command] for command in commands]

        runs = asyncio.run(run_all())
        secrets = thread.call(lambda: issued_secrets(thread.sandboxes.values()))

    assert len(secrets) > 5
    for command, (status, output) in zip(commands, runs, strict=True):
        assert status == 0, (command, output[-2000:])
        assert not leaks(output, secrets), command
