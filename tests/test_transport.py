"""HTTPTransport over TLS: CA bundles given as ``ssl=<path>`` or ``SSL_CERT_FILE``.

The Wokelo sandbox is served over https with a certificate from a CA made for the test
(a throwaway CA no system trusts), so every answer below is decided by a real handshake.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from vendorkit import ConfigurationError, ConnectError, RetryPolicy, WokeloClient
from vendorkit.sandbox import RunningSandbox, serve

x509 = pytest.importorskip("cryptography.x509", reason="the throwaway CA is made with cryptography")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402


@attrs.frozen
class ThrowawayCA:
    """A CA made for one test run: its PEM bundle, and a server context it signed."""

    bundle: Path
    server_context: ssl.SSLContext


def make_throwaway_ca(directory: Path) -> ThrowawayCA:
    """A CA, and a certificate it signs for 127.0.0.1 and localhost (strict-X.509 ready)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vendorkit throwaway CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    bundle, cert_file, key_file = (directory / name for name in ("ca.pem", "cert.pem", "key.pem"))
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    return ThrowawayCA(bundle, server_context)


@pytest.fixture(scope="module")
def throwaway_ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return make_throwaway_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
async def https_wokelo(throwaway_ca: ThrowawayCA) -> AsyncIterator[RunningSandbox]:
    """The Wokelo sandbox on https://127.0.0.1, its certificate signed by the throwaway CA."""
    async with serve("wokelo", ssl_context=throwaway_ca.server_context) as sandbox:
        assert sandbox.base_url.startswith("https://127.0.0.1:")
        yield sandbox


@pytest.fixture(autouse=True)
def no_ambient_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test states the SSL_CERT_FILE it means (the machine's may name another CA)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)


async def _search(sandbox: RunningSandbox, **options: object) -> int:
    """Log in and make one call; the number of companies found."""
    async with WokeloClient(**sandbox.client_kwargs, retry=RetryPolicy.never(),
                            **options) as client:  # type: ignore[arg-type]
        return len((await client.search_companies("a")).data)


@pytest.mark.parametrize("as_type", [str, Path], ids=["str", "PathLike"])
async def test_a_ca_bundle_path_trusts_the_server_it_signed(
    https_wokelo: RunningSandbox, throwaway_ca: ThrowawayCA, as_type: type[str] | type[Path]
) -> None:
    found = await _search(https_wokelo, ssl=as_type(throwaway_ca.bundle))

    assert found > 0
    assert https_wokelo.state.counters.logins == 1  # the login went over TLS too


async def test_the_system_trust_store_refuses_a_certificate_from_an_unknown_ca(
    https_wokelo: RunningSandbox,
) -> None:
    with pytest.raises(ConnectError) as caught:
        await _search(https_wokelo)

    assert "TLS handshake failed" in str(caught.value)
    assert "SSL_CERT_FILE" in str(caught.value)  # the message names the fixes
    assert caught.value.retryable is False
    assert https_wokelo.state.counters.logins == 0


async def test_ssl_cert_file_is_trusted_when_ssl_is_left_true(
    https_wokelo: RunningSandbox, throwaway_ca: ThrowawayCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(throwaway_ca.bundle))

    assert await _search(https_wokelo) > 0


async def test_trust_env_false_ignores_ssl_cert_file(
    https_wokelo: RunningSandbox, throwaway_ca: ThrowawayCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(throwaway_ca.bundle))

    with pytest.raises(ConnectError, match="TLS handshake failed"):
        await _search(https_wokelo, trust_env=False)


async def test_ssl_cert_file_naming_no_file_leaves_the_system_trust_store(
    https_wokelo: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))

    with pytest.raises(ConnectError, match="TLS handshake failed"):
        await _search(https_wokelo)


async def test_an_explicit_ssl_context_still_wins_over_ssl_cert_file(
    https_wokelo: RunningSandbox, throwaway_ca: ThrowawayCA, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = make_throwaway_ca(tmp_path)  # SSL_CERT_FILE names a CA that did not sign it
    monkeypatch.setenv("SSL_CERT_FILE", str(other.bundle))
    context = ssl.create_default_context(cafile=throwaway_ca.bundle)

    assert await _search(https_wokelo, ssl=context) > 0
    with pytest.raises(ConnectError, match="TLS handshake failed"):
        await _search(https_wokelo)


def test_a_missing_ca_bundle_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"

    with pytest.raises(ConfigurationError, match=r"nowhere\.pem"):
        WokeloClient("id", "secret", "user", "password", ssl=str(missing))


def test_a_file_that_is_no_pem_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")

    with pytest.raises(ConfigurationError, match="not a usable CA bundle"):
        WokeloClient("id", "secret", "user", "password", ssl=junk)


def test_ssl_of_another_type_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ssl must be"):
        WokeloClient("id", "secret", "user", "password", ssl=3)  # type: ignore[arg-type]
