"""``vendorkit token``, ``call`` and ``logout``: credentials from the environment or a
config file, JSON out, a token cache shared by commands, one-line errors, no secrets."""

from __future__ import annotations

import json
import socket
import stat
from typing import TYPE_CHECKING

from vendorkit.sandbox import DEFAULT_CREDENTIALS

if TYPE_CHECKING:
    from tests.cli.conftest import CLI, Sandboxes

ORGANIZATIONS = "/v2/customers/organizations/cid-1"


def test_token_with_sandbox_describes_the_token_without_the_secret(cli: CLI) -> None:
    result = cli.run("token", "cambyopro", "--sandbox")

    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["vendor"] == "cambyopro"
    assert described["token_type"] == "Bearer"
    assert 86_000 < described["expires_in"] <= 86_400
    assert described["expires_at"].endswith("Z")
    assert "access_token" not in described
    assert "atk_" not in result.stdout + result.stderr  # CambyoPro's tokens start with atk_


def test_token_show_secret_prints_the_token(cli: CLI) -> None:
    result = cli.run("token", "cambyopro", "--sandbox", "--show-secret")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["access_token"].startswith("atk_")


def test_call_with_sandbox_prints_the_answer_as_json(cli: CLI) -> None:
    result = cli.run("call", "cloudcx", "GET", "/openapi/v2/user/page", "--sandbox",
                     "--param", "pageIndex=3", "-p", "pageSize=7")

    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)["data"]
    assert (page["pageIndex"], page["pageSize"], len(page["list"])) == (3, 7, 7)


def test_call_with_environment_variables_reuses_the_cached_token(
    cli: CLI, sandbox: Sandboxes
) -> None:
    env = sandbox.env("cloud4wi")

    first = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=env)
    second = cli.run("call", "cloud4wi", "get", ORGANIZATIONS, env=env)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert json.loads(first.stdout)[0]["cid"] == "cid-1"
    counters = sandbox.counters("cloud4wi")
    assert counters["logins"] == 1  # the second command used the first one's token
    assert counters["logouts"] == 0  # a cached token is kept, not revoked, on exit
    assert stat.S_IMODE(cli.token_cache.stat().st_mode) == 0o600
    assert DEFAULT_CREDENTIALS["cloud4wi"]["client_secret"] not in cli.token_cache.read_text()


def test_logout_revokes_the_cached_token(cli: CLI, sandbox: Sandboxes) -> None:
    env = sandbox.env("cloud4wi")
    assert cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=env).returncode == 0

    logout = cli.run("logout", "cloud4wi", env=env)
    again = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=env)

    assert logout.returncode == 0, logout.stderr
    assert json.loads(logout.stdout) == {"vendor": "cloud4wi", "revoked": True}
    assert again.returncode == 0, again.stderr
    counters = sandbox.counters("cloud4wi")
    assert (counters["logouts"], counters["logins"]) == (1, 2)


def test_no_cache_neither_reads_nor_writes_the_token_cache(
    cli: CLI, sandbox: Sandboxes
) -> None:
    env = sandbox.env("cloud4wi")

    for _ in range(2):
        assert cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, "--no-cache",
                       env=env).returncode == 0

    assert not cli.token_cache.exists()
    counters = sandbox.counters("cloud4wi")
    assert (counters["logins"], counters["logouts"]) == (2, 2)  # each logged in and out


def write_config(cli: CLI, text: str) -> None:
    cli.config_file.parent.mkdir(parents=True)
    cli.config_file.write_text(text)
    cli.config_file.chmod(0o600)  # as a config file holding secrets should be


def wogeez_table(sandbox: Sandboxes, name: str, password: str) -> str:
    env = sandbox.env("wogeez", password=password)
    fields = {variable.removeprefix("VENDORKIT_WOGEEZ_").lower(): value
              for variable, value in env.items()}
    return f"[{name}]\n" + "".join(f'{key} = "{value}"\n' for key, value in fields.items())


def test_call_reads_the_profile_chosen_with_profile(cli: CLI, sandbox: Sandboxes) -> None:
    password = DEFAULT_CREDENTIALS["wogeez"]["password"]
    write_config(cli, wogeez_table(sandbox, "wogeez", "not-the-password")
                 + wogeez_table(sandbox, "wogeez.staging", password))

    default = cli.run("call", "wogeez", "GET", "/companies", "--no-cache")
    staging = cli.run("call", "wogeez", "GET", "/companies", "--param", "size=3",
                      "--profile", "staging")

    assert default.returncode == 1  # the default profile's password is wrong
    assert "authentication failed" in cli.one_line(default.stderr)
    assert staging.returncode == 0, staging.stderr
    assert len(json.loads(staging.stdout)["content"]) == 3


def test_environment_variables_win_over_the_config_file(cli: CLI, sandbox: Sandboxes) -> None:
    password = DEFAULT_CREDENTIALS["wogeez"]["password"]
    write_config(cli, wogeez_table(sandbox, "wogeez", "not-the-password"))

    result = cli.run("call", "wogeez", "GET", "/companies", "--no-cache",
                     env={"VENDORKIT_WOGEEZ_PASSWORD": password})

    assert result.returncode == 0, result.stderr


def test_unknown_profile_is_one_line_naming_the_table(cli: CLI, sandbox: Sandboxes) -> None:
    write_config(cli, wogeez_table(sandbox, "wogeez", "x"))

    result = cli.run("token", "wogeez", "--profile", "prod")

    assert result.returncode == 2
    assert "no [wogeez.prod] table" in cli.one_line(result.stderr)


def test_missing_variable_is_one_line_naming_it(cli: CLI) -> None:
    result = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS,
                     env={"VENDORKIT_CLOUD4WI_CLIENT_KEY": "ck-sandbox"})

    assert result.returncode == 2
    line = cli.one_line(result.stderr)
    assert "VENDORKIT_CLOUD4WI_CLIENT_SECRET" in line
    assert "VENDORKIT_CLOUD4WI_CLIENT_KEY" not in line
    assert result.stdout == ""


def test_debug_adds_the_traceback(cli: CLI) -> None:
    result = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, "--debug")

    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "VENDORKIT_CLOUD4WI_CLIENT_KEY" in result.stderr.splitlines()[-1]


def test_bad_credentials_are_one_line_without_the_secret(cli: CLI, sandbox: Sandboxes) -> None:
    secret = "wrong-secret-5e1f0c2d9a"
    env = sandbox.env("wokelo", client_secret=secret)

    result = cli.run("token", "wokelo", "--show-secret", env=env)

    assert result.returncode == 1
    line = cli.one_line(result.stderr)
    assert line.startswith("vendorkit: error: authentication failed")
    assert "check the credentials" in line
    assert secret not in result.stdout + result.stderr
    assert DEFAULT_CREDENTIALS["wokelo"]["password"] not in result.stdout + result.stderr


def test_unreachable_host_is_one_line(cli: CLI) -> None:
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = cli.run("call", "cambyopro", "GET", "/api/v1/account", env={
        "VENDORKIT_CAMBYOPRO_BASE_URL": f"http://127.0.0.1:{port}",
        "VENDORKIT_CAMBYOPRO_CLIENT_ID": "client", "VENDORKIT_CAMBYOPRO_CLIENT_SECRET": "s3cr3t-x",
    })

    assert result.returncode == 1
    line = cli.one_line(result.stderr)
    assert line.startswith("vendorkit: error: cannot reach host")
    assert f"127.0.0.1:{port}" in line
    assert "s3cr3t-x" not in line


def test_rate_limit_is_one_line_with_the_wait(cli: CLI, sandbox: Sandboxes) -> None:
    # Longer than the client's whole 429 budget (5 min): it gives up at once and says so.
    state = sandbox.state("cambyopro")
    sandbox.thread.call(lambda: state.faults.fail_next(1, 429, retry_after="900"))

    result = cli.run("call", "cambyopro", "GET", "/api/v1/account", "--no-cache",
                     env=sandbox.env("cambyopro"))

    assert result.returncode == 1
    line = cli.one_line(result.stderr)
    assert line.startswith("vendorkit: error: rate limited")
    assert line.endswith("retry after 900 s")


def test_invalid_json_body_is_a_usage_error(cli: CLI) -> None:
    result = cli.run("call", "wokelo", "POST", "/api/enterprise/company/enrich/", "--sandbox",
                     "--json", "{company:")

    assert result.returncode == 2
    assert "is not valid JSON" in cli.one_line(result.stderr)


def test_call_posts_a_json_body(cli: CLI) -> None:
    result = cli.run("call", "wokelo", "POST", "/api/enterprise/company/enrich/", "--sandbox",
                     "--json", '{"company": "Acme AI"}')

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] in ("PENDING", "PROCESSING", "COMPLETED")
