"""The CLI's own files: a config file others can read or change, and a token cache others
could tamper with, are each said once on stderr (or refused), never with a secret."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.cli.conftest import CLI, Sandboxes

ORGANIZATIONS = "/v2/customers/organizations/cid-1"


def write_config(cli: CLI, fields: dict[str, str], mode: int) -> None:
    cli.config_file.parent.mkdir(parents=True)
    cli.config_file.write_text(
        "[cloud4wi]\n" + "".join(f'{key} = "{value}"\n' for key, value in fields.items()))
    cli.config_file.chmod(mode)


def cloud4wi_fields(sandbox: Sandboxes) -> dict[str, str]:
    return {variable.removeprefix("VENDORKIT_CLOUD4WI_").lower(): value
            for variable, value in sandbox.env("cloud4wi").items()}


def test_a_config_file_others_can_read_is_said_once_without_its_secret(
    cli: CLI, sandbox: Sandboxes
) -> None:
    fields = cloud4wi_fields(sandbox)
    write_config(cli, fields, 0o644)

    result = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS)

    assert result.returncode == 0, result.stderr
    line = cli.one_line(result.stderr)
    assert line.startswith(f"vendorkit: {cli.config_file} is open to other users (mode 0644)")
    assert "holds secrets" in line and f"chmod 600 {cli.config_file}" in line
    assert fields["client_secret"] not in result.stderr + result.stdout
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o644  # the user's file to fix


def test_a_config_file_others_can_change_is_said_even_without_a_secret(
    cli: CLI, sandbox: Sandboxes
) -> None:
    fields = cloud4wi_fields(sandbox)
    write_config(cli, {"base_url": fields["base_url"]}, 0o664)

    result = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=sandbox.env("cloud4wi"))

    assert result.returncode == 0, result.stderr
    assert "could change where your credentials are sent" in cli.one_line(result.stderr)


def test_a_private_config_file_or_a_public_one_without_secrets_draws_no_warning(
    cli: CLI, sandbox: Sandboxes
) -> None:
    fields = cloud4wi_fields(sandbox)
    write_config(cli, fields, 0o600)
    private = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS)
    cli.config_file.write_text(f'[cloud4wi]\nbase_url = "{fields["base_url"]}"\n')
    cli.config_file.chmod(0o644)
    public = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=sandbox.env("cloud4wi"))

    assert private.returncode == public.returncode == 0, private.stderr + public.stderr
    assert private.stderr == public.stderr == ""


def test_a_world_writable_token_cache_directory_is_made_private_with_one_warning(
    cli: CLI, sandbox: Sandboxes
) -> None:
    directory = cli.token_cache.parent
    directory.mkdir(parents=True)
    directory.chmod(0o777)

    first = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=sandbox.env("cloud4wi"))
    second = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=sandbox.env("cloud4wi"))

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "was writable by other users (mode 0777); its mode is now 0700" in (
        cli.one_line(first.stderr))
    assert second.stderr == ""
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert sandbox.counters("cloud4wi")["logins"] == 1  # the cache still works


def test_a_symlinked_token_lock_fails_the_call_in_one_line_and_creates_nothing(
    cli: CLI, sandbox: Sandboxes
) -> None:
    lock = cli.token_cache.with_name("tokens.json.lock")
    lock.parent.mkdir(parents=True, mode=0o700)
    target = cli.home / "victim"
    lock.symlink_to(target)

    result = cli.run("call", "cloud4wi", "GET", ORGANIZATIONS, env=sandbox.env("cloud4wi"))

    assert result.returncode == 1
    line = cli.one_line(result.stderr)
    assert line.startswith("vendorkit: error: token store file")
    assert "is a symbolic link" in line
    assert not target.exists() and not cli.token_cache.exists()
    assert sandbox.counters("cloud4wi")["logins"] == 0  # refused before any login
