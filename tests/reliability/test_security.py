"""Transport security: certificates are verified by default, and credentials never cross
the network in clear unless the caller says so.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import vendorkit
from vendorkit import ConfigurationError
from vendorkit.sandbox import DEFAULT_CREDENTIALS, SandboxState, serve_app
from vendorkit.sandbox._core import vendor_spec

from .support import FAST_RETRY, PROBES, VENDORS, client_class


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), made with the openssl CLI."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


@contextlib.asynccontextmanager
async def serve_tls(vendor: str, cert: Path, key: Path) -> AsyncIterator[tuple[SandboxState, Any]]:
    """``vendor``'s emulator behind HTTPS on 127.0.0.1; yields its state and client kwargs."""
    spec = vendor_spec(vendor)
    state = SandboxState(
        vendor=vendor, credentials=dict(spec.credentials), token_lifetime=60.0,
        token_style=spec.token_style, token_prefix=spec.token_prefix,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with serve_app(spec.make_app(state), ssl_context=context) as base_url:
        yield state, spec.client_kwargs(base_url, dict(spec.credentials))


@pytest.mark.parametrize("vendor", VENDORS)
async def test_untrusted_certificate_is_refused_by_default_with_connect_error(
    vendor: str, certificate: tuple[Path, Path]
) -> None:
    async with (
        serve_tls(vendor, *certificate) as (state, kwargs),
        client_class(vendor)(**kwargs, retry=FAST_RETRY) as client,
    ):
        with pytest.raises(vendorkit.ConnectError) as caught:
            await PROBES[vendor].call(client)

    assert "certificate" in str(caught.value).lower()
    assert not caught.value.request_sent
    assert not caught.value.retryable  # waiting will not make the certificate trusted
    assert client.stats.retries == 0
    assert sum(state.counters.requests.values()) == 0  # no request got past the handshake
    assert state.counters.logins == 0


@pytest.mark.parametrize("vendor", VENDORS)
async def test_certificate_trusted_through_an_ssl_context_is_accepted(
    vendor: str, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    async with (
        serve_tls(vendor, *certificate) as (state, kwargs),
        client_class(vendor)(**kwargs, ssl=trusting, retry=FAST_RETRY) as client,
    ):
        assert await PROBES[vendor].call(client)

    assert state.counters.logins == 1
    assert state.counters.requests[PROBES[vendor].route] == 1


# --- plain http -----------------------------------------------------------------------------

REMOTE = "http://192.0.2.10"  # TEST-NET-1: never routed, and never contacted here


def _arguments(vendor: str, url: str) -> dict[str, Any]:
    creds = {k: v for k, v in DEFAULT_CREDENTIALS[vendor].items() if k != "api_key"}
    if vendor == "wogeez":
        return {**creds, "issuer": f"{url}/realms/wogeez", "api_base_url": url}
    return {**creds, "base_url": url}


def _url_arguments(vendor: str) -> tuple[str, ...]:
    return ("issuer", "api_base_url") if vendor == "wogeez" else ("base_url",)


@pytest.mark.parametrize(
    ("vendor", "argument"), [(v, a) for v in VENDORS for a in _url_arguments(v)]
)
def test_plain_http_to_a_remote_host_is_refused_at_construction(
    vendor: str, argument: str
) -> None:
    arguments = _arguments(vendor, "https://127.0.0.1:9") | {
        argument: REMOTE + ("/realms/wogeez" if argument == "issuer" else "")
    }
    with pytest.raises(ConfigurationError) as caught:
        client_class(vendor)(**arguments)

    message = str(caught.value)
    assert message.startswith(f"{argument} ")
    assert "allow_insecure_http=True" in message  # says how to opt in


@pytest.mark.parametrize("vendor", VENDORS)
async def test_plain_http_to_a_remote_host_is_accepted_with_allow_insecure_http(
    vendor: str,
) -> None:
    client = client_class(vendor)(**_arguments(vendor, REMOTE), allow_insecure_http=True)
    async with client:  # built and closed without a single request
        assert client.session.base_url == REMOTE
        assert client.stats.requests == 0


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
async def test_plain_http_to_loopback_needs_no_opt_in(vendor: str, url: str) -> None:
    async with client_class(vendor)(**_arguments(vendor, url)) as client:
        assert client.session.base_url == url


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("url", ["https://vendor.example.test@192.0.2.10", "http://evil.localhost:9"])
def test_a_base_url_with_userinfo_or_a_lookalike_loopback_name_is_refused_by_every_client(
    vendor: str, url: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        client_class(vendor)(**_arguments(vendor, url))

    assert url not in str(caught.value)  # named by its argument, never quoted
    assert str(caught.value).split(" ")[0] in ("base_url", "issuer", "api_base_url")


@pytest.mark.parametrize("cid", [".", ".."])
async def test_an_id_of_dot_or_dot_dot_is_refused_before_anything_is_sent(cid: str) -> None:
    async with client_class("cloud4wi")(**_arguments("cloud4wi", "http://127.0.0.1:9")) as client:
        with pytest.raises(ConfigurationError, match=r"^cid "):
            await client.get_organizations(cid)
        assert client.stats.requests == 0
