"""Bad configuration fails at construction, as a ConfigurationError naming the argument.

A collector left running for days must not discover a typo on its first call at 3 a.m.:
every client checks its arguments when it is built, before any network traffic.
"""

from __future__ import annotations

from typing import Any

import pytest

from vendorkit import ConfigurationError, VendorClient
from vendorkit.sandbox import DEFAULT_CREDENTIALS

from .support import client_class

LOCAL = "https://127.0.0.1:9"  # never contacted: construction does no I/O
SECRET = "s3cr3t-value-that-must-not-be-echoed"


def _arguments(config: str) -> dict[str, Any]:
    """Valid constructor arguments of one client configuration."""
    vendor, _, mode = config.partition("-")
    creds = dict(DEFAULT_CREDENTIALS[vendor])
    if vendor == "cloudcx":
        if mode == "api-key":
            return {"base_url": LOCAL, "api_key": creds["api_key"]}
        del creds["api_key"]
    if vendor == "wogeez":
        return {**creds, "issuer": f"{LOCAL}/realms/wogeez", "api_base_url": LOCAL}
    return {**creds, "base_url": LOCAL}


CONFIGS = ("cloud4wi", "wokelo", "cloudcx", "cloudcx-api-key", "cambyopro", "wogeez")
URL_ARGUMENTS = {"wogeez": ("issuer", "api_base_url")}


def _build(config: str, **overrides: Any) -> VendorClient:
    arguments = _arguments(config) | overrides
    return client_class(config.partition("-")[0])(**arguments)


def _cases(kind: str) -> list[tuple[str, str]]:
    cases = []
    for config in CONFIGS:
        urls = URL_ARGUMENTS.get(config, ("base_url",))
        names = urls if kind == "url" else [n for n in _arguments(config) if n not in urls]
        cases += [(config, name) for name in names]
    return cases


async def test_valid_arguments_build_every_client_without_touching_the_network() -> None:
    for config in CONFIGS:
        async with _build(config) as client:
            assert client.stats.as_dict() == dict.fromkeys(client.stats.as_dict(), 0)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
@pytest.mark.parametrize(("config", "argument"), _cases("credential"))
def test_empty_or_whitespace_credential_is_refused_naming_it(
    config: str, argument: str, blank: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"\b{argument}\b"):
        _build(config, **{argument: blank})


def test_wogeez_optional_client_secret_when_given_must_not_be_blank() -> None:
    with pytest.raises(ConfigurationError, match=r"\bclient_secret\b"):
        _build("wogeez", client_secret=" ")


@pytest.mark.parametrize(("config", "argument"), _cases("url"))
@pytest.mark.parametrize("url", ["api.example.test", "//api.example.test/v1", "ftp://h", ""])
def test_base_url_without_an_http_scheme_is_refused_naming_it(
    config: str, argument: str, url: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _build(config, **{argument: url})
    assert str(caught.value).startswith(f"{argument} ")


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("option", ["timeout", "connect_timeout", "logout_timeout"])
@pytest.mark.parametrize("value", [-1, -0.5, 0, float("nan")])
def test_negative_or_zero_timeout_is_refused_naming_it(
    config: str, option: str, value: float
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _build(config, **{option: value})
    assert str(caught.value).startswith(f"{option} ")


@pytest.mark.parametrize("config", CONFIGS)
def test_errors_name_the_argument_but_never_echo_a_secret_value(config: str) -> None:
    secret_argument = next(
        n for n in ("client_secret", "password", "api_key") if n in _arguments(config)
    )
    for bad in ({"timeout": -1}, _bad_url(config)):
        with pytest.raises(ConfigurationError) as caught:
            _build(config, **{secret_argument: SECRET}, **bad)
        assert SECRET not in str(caught.value)


def _bad_url(config: str) -> dict[str, str]:
    return {URL_ARGUMENTS.get(config, ("base_url",))[-1]: "no-scheme.example.test"}


def test_cloudcx_needs_exactly_one_way_in() -> None:
    both = _arguments("cloudcx") | {"api_key": DEFAULT_CREDENTIALS["cloudcx"]["api_key"]}
    with pytest.raises(ConfigurationError, match="exactly one"):
        client_class("cloudcx")(**both)
    with pytest.raises(ConfigurationError, match="api_key"):
        client_class("cloudcx")(base_url=LOCAL)
