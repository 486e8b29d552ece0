"""Where the CLI finds credentials: ``VENDORKIT_<VENDOR>_<FIELD>`` variables and a TOML file.

The file (``$XDG_CONFIG_HOME/vendorkit/config.toml``, by default
``~/.config/vendorkit/config.toml``) holds one table per vendor and profile::

    [cloud4wi]                 # the "default" profile
    client_key = "..."
    client_secret = "..."

    [cloud4wi.staging]         # --profile staging
    client_key = "..."
    client_secret = "..."
    base_url = "https://staging.example.com"

Keys are the client constructor's argument names. Environment variables win over the
file, field by field, so one variable can point a configured profile elsewhere.

A file that other users can change, or read while it holds a secret (``client_secret``,
``password``, ``api_key``), draws one warning per process (POSIX only); it is left as it
is, being the user's own file to ``chmod 600``.
"""

from __future__ import annotations

import inspect
import logging
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

from ..client import VendorClient
from ..errors import ConfigurationError
from ..vendors import CLIENTS

__all__ = ["DEFAULT_PROFILE", "client_arguments", "config_path", "token_cache_path"]

DEFAULT_PROFILE = "default"
#: The constructor arguments that are secrets: a file holding one must be private.
SECRET_FIELDS = frozenset({"client_secret", "password", "api_key"})

logger = logging.getLogger("vendorkit")
_warned: set[Path] = set()


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/vendorkit/config.toml``, else ``~/.config/vendorkit/config.toml``."""
    return _xdg_dir("XDG_CONFIG_HOME", ".config", environ) / "vendorkit" / "config.toml"


def token_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/vendorkit/tokens.json``, else ``~/.cache/vendorkit/tokens.json``."""
    return _xdg_dir("XDG_CACHE_HOME", ".cache", environ) / "vendorkit" / "tokens.json"


def _xdg_dir(variable: str, fallback: str, environ: Mapping[str, str] | None) -> Path:
    environ = os.environ if environ is None else environ
    value = environ.get(variable, "")
    if value and Path(value).is_absolute():  # the XDG spec: relative values are ignored
        return Path(value)
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / fallback


def client_arguments(
    vendor: str, *, profile: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The constructor arguments of ``vendor``'s client, from the config file then the
    environment; a :class:`ConfigurationError` naming whatever required field is missing."""
    environ = os.environ if environ is None else environ
    cls = CLIENTS[vendor]
    variables = cls.env_variables()  # {"VENDORKIT_CLOUD4WI_CLIENT_KEY": "client_key", ...}
    path = config_path(environ)
    chosen = profile or environ.get("VENDORKIT_PROFILE") or DEFAULT_PROFILE
    arguments = _profile_table(path, vendor, chosen, set(variables.values()))
    for variable, name in variables.items():
        value = environ.get(variable)
        if value:
            arguments[name] = value
    missing = [v for v, name in variables.items() if name in _required(cls) and
               name not in arguments]
    if missing:
        where = _table_name(vendor, chosen)
        raise ConfigurationError(
            f"{vendor}: missing {', '.join(missing)} (set the variable, add the field to "
            f"{where} in {path}, or try --sandbox)"
        )
    return arguments


def _required(cls: type[VendorClient]) -> set[str]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in parameters if p.name != "self" and p.default is p.empty
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _table_name(vendor: str, profile: str) -> str:
    return f"[{vendor}]" if profile == DEFAULT_PROFILE else f"[{vendor}.{profile}]"


def _profile_table(path: Path, vendor: str, profile: str, fields: set[str]) -> dict[str, str]:
    """The fields of ``[vendor]`` ({} when absent) or of ``[vendor.profile]`` (required)."""
    document = _read(path)
    table: object = document.get(vendor, {})
    if profile != DEFAULT_PROFILE:
        table = table.get(profile) if isinstance(table, dict) else None
        if table is None:
            raise ConfigurationError(
                f"profile {profile!r}: no {_table_name(vendor, profile)} table in {path}"
            )
    name = _table_name(vendor, profile)
    if not isinstance(table, dict):
        raise ConfigurationError(f"{name} in {path} must be a table")
    arguments: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict) and profile == DEFAULT_PROFILE:
            continue  # another profile's table
        if key not in fields:
            raise ConfigurationError(
                f"unknown key {key!r} in {name} of {path}; expected one of "
                f"{', '.join(sorted(fields))}"
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"{key} in {name} of {path} must be a string")
        arguments[key] = value
    return arguments


def _read(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
            _check_private(path, os.fstat(file.fileno()), document)
            return document
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None


def _check_private(path: Path, info: os.stat_result, document: dict[str, object]) -> None:
    """Warn, once per process, when other users can read a file that holds a secret, or
    change a file (its ``base_url`` decides where the credentials go)."""
    mode = stat.S_IMODE(info.st_mode)
    if os.name != "posix" or path in _warned:
        return
    if mode & 0o022:
        risk = "others could change where your credentials are sent"
    elif mode & 0o044 and _holds_secret(document):
        risk = "it holds secrets"
    else:
        return
    _warned.add(path)
    logger.warning("vendorkit: %s is open to other users (mode %04o) and %s; run: chmod 600 %s",
                   path, mode, risk, path)


def _holds_secret(table: dict[str, object]) -> bool:
    """Whether a table, or a table inside it, has a non-empty secret field."""
    return any(
        _holds_secret(value) if isinstance(value, dict) else bool(value) and key in SECRET_FIELDS
        for key, value in table.items()
    )
