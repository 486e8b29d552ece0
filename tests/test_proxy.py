"""Proxies: ``HTTP(S)_PROXY`` / ``NO_PROXY`` honoured by default, and an explicit ``proxy=``.

Every test goes through a real forward proxy, tinyproxy, started on a free 127.0.0.1 port
with its own configuration; its log says which requests went through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import FAST_RETRY
from tests.toy import Toy, oauth2_grant, serve
from vendorkit import (
    APIError,
    ConfigurationError,
    ConnectError,
    RetryPolicy,
    SessionManager,
    WokeloClient,
)
from vendorkit.sandbox import serve as serve_sandbox
from vendorkit.testing import SandboxFactory

if TYPE_CHECKING:
    from tests.test_transport import ThrowawayCA

TINYPROXY = shutil.which("tinyproxy")
pytestmark = [
    pytest.mark.skipif(
        TINYPROXY is None,
        reason="tinyproxy is not installed (apt-get install -y tinyproxy): no proxy to test "
               "through",
    ),
]

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_REQUEST_LINE = re.compile(r"Request \(file descriptor \d+\): (\S+) (\S+) HTTP/")


class Tinyproxy:
    """A running tinyproxy: its URL, and the requests its log shows went through it."""

    def __init__(self, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.log = log

    def requests(self) -> list[str]:
        """``"METHOD target"`` for every request forwarded so far (CONNECT for tunnels)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [f"{method} {target}" for method, target in _REQUEST_LINE.findall(text)]

    def paths(self, method: str) -> list[str]:
        """The paths of the ``method`` requests forwarded (query strings left out)."""
        return [re.sub(r"^\w+://[^/]+|\?.*$", "", line.split(" ", 1)[1])
                for line in self.requests() if line.startswith(method + " ")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def run_tinyproxy(directory: Path, *extra: str) -> Iterator[Tinyproxy]:
    """tinyproxy in the foreground on a free port, with ``extra`` configuration lines."""
    assert TINYPROXY is not None
    for _ in range(3):  # a free port may be taken between the probe and tinyproxy's bind
        port = _free_port()
        log = directory / f"tinyproxy-{port}.log"
        config = directory / f"tinyproxy-{port}.conf"
        config.write_text("\n".join([
            f"Port {port}", "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 30",
            "MaxClients 200", "LogLevel Connect", f'LogFile "{log}"', *extra,
        ]) + "\n")
        process = subprocess.Popen(
            [TINYPROXY, "-d", "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while process.poll() is None and not _listening(port):
                if time.monotonic() > deadline:
                    pytest.fail(f"tinyproxy did not listen on 127.0.0.1:{port} within 10 s")
                time.sleep(0.02)
            if process.poll() is None:
                yield Tinyproxy(port, log)
                return
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
    pytest.fail("tinyproxy exited at start three times (see its configuration above)")


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    with run_tinyproxy(tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def throwaway_ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    from tests.test_transport import make_throwaway_ca  # skips if cryptography is missing

    return make_throwaway_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(autouse=True)
def no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test states the proxy variables it means; the machine's are set aside."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# --- from the environment -------------------------------------------------------------


async def test_login_calls_and_refresh_go_through_the_proxy_named_by_http_proxy(
    proxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch, vendorkit_sandbox: SandboxFactory
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    async with vendorkit_sandbox("wokelo", token_lifetime=1, retry=FAST_RETRY) as (client,
                                                                                   sandbox):
        await client.search_companies("a")
        await asyncio.sleep(1.1)  # the access token lived one second
        await client.search_companies("b")  # the expired token is refreshed first

    counters = sandbox.state.counters
    assert (counters.logins, counters.refreshes) == (1, 1)
    assert proxy.paths("POST") == ["/auth/token/", "/auth/token/"]  # the login, the refresh
    assert proxy.paths("GET") == ["/api/enterprise/company/search"] * 2


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "example.com, 127.0.0.1", "*"])
async def test_no_proxy_sends_the_hosts_it_names_straight_to_the_server(
    proxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch, vendorkit_sandbox: SandboxFactory,
    no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    async with vendorkit_sandbox("wokelo", retry=FAST_RETRY) as (client, sandbox):
        await client.search_companies("a")
        assert sandbox.state.counters.logins == 1
    assert proxy.requests() == []

    monkeypatch.delenv("NO_PROXY")  # the same proxy, live, takes the next client's calls
    async with vendorkit_sandbox("wokelo", retry=FAST_RETRY) as (client, _):
        await client.search_companies("a")
    assert proxy.paths("GET") == ["/api/enterprise/company/search"]


async def test_no_proxy_with_a_port_spares_only_that_port(
    proxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch, vendorkit_sandbox: SandboxFactory
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with serve_sandbox("wokelo") as other:
        monkeypatch.setenv("NO_PROXY", other.base_url.removeprefix("http://"))
        async with vendorkit_sandbox("wokelo", retry=FAST_RETRY) as (client, _):
            await client.search_companies("a")
        async with WokeloClient(**other.client_kwargs, retry=FAST_RETRY) as spared:
            await spared.search_companies("b")

    assert proxy.paths("GET") == ["/api/enterprise/company/search"]  # the first one only
    assert all("?query=b" not in line for line in proxy.requests())


async def test_trust_env_false_ignores_the_proxy_variables(
    proxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch, vendorkit_sandbox: SandboxFactory
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    async with vendorkit_sandbox("wokelo", trust_env=False, retry=FAST_RETRY) as (client, _):
        await client.search_companies("a")

    assert proxy.requests() == []


async def test_https_calls_tunnel_through_the_proxy_named_by_https_proxy(
    proxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch, throwaway_ca: ThrowawayCA
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not for https: never used

    async with (
        serve_sandbox("wokelo", ssl_context=throwaway_ca.server_context) as sandbox,
        WokeloClient(**sandbox.client_kwargs, ssl=throwaway_ca.bundle, retry=FAST_RETRY) as client,
    ):
        found = await client.search_companies("a")

    assert found.data
    port = sandbox.base_url.rsplit(":", 1)[1]
    tunnels = [line for line in proxy.requests() if line.startswith("CONNECT ")]
    assert tunnels and set(tunnels) == {f"CONNECT 127.0.0.1:{port}"}
    assert len(tunnels) == len(proxy.requests())  # nothing went through it in clear


# --- proxy= ---------------------------------------------------------------------------


@pytest.fixture
async def short_lived_toy() -> AsyncIterator[Toy]:
    async with serve(token_lifetime=1) as toy:
        yield toy


def _manager(toy: Toy, **options: object) -> SessionManager:
    options.setdefault("retry", FAST_RETRY)
    return SessionManager(toy.base_url, oauth2_grant(toy), **options)  # type: ignore[arg-type]


async def test_an_explicit_proxy_carries_login_calls_refresh_and_revocation(
    proxy: Tinyproxy, short_lived_toy: Toy
) -> None:
    toy = short_lived_toy
    async with _manager(toy, proxy=proxy.url) as manager:
        first = (await manager.request("GET", "/data")).json()
        await asyncio.sleep(1.1)
        second = (await manager.request("GET", "/data")).json()

    assert (first["generation"], second["generation"]) == (1, 2)
    assert (toy.counters.logins, toy.counters.refreshes, toy.counters.revocations) == (1, 1, 1)
    assert "tinyproxy" in first["headers"].get("Via", "")  # the toy saw the proxy's hop
    assert proxy.paths("POST") == ["/oauth/token", "/oauth/token", "/oauth/revoke"]
    assert proxy.paths("GET") == ["/data", "/data"]


async def test_an_explicit_proxy_is_used_even_for_hosts_no_proxy_names(
    proxy: Tinyproxy, toy: Toy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "*")

    async with _manager(toy, proxy=proxy.url) as manager:
        await manager.request("GET", "/data")

    assert proxy.paths("GET") == ["/data"]


async def test_proxy_credentials_in_the_url_reach_the_proxy(
    tmp_path: Path, toy: Toy
) -> None:
    with run_tinyproxy(tmp_path, "BasicAuth vk proxy-pw-Qe7s") as guarded:
        port = guarded.port
        async with _manager(toy, proxy=f"http://vk:proxy-pw-Qe7s@127.0.0.1:{port}") as manager:
            response = await manager.request("GET", "/data")
        async with _manager(toy, proxy=guarded.url, retry=RetryPolicy.never()) as refused:
            with pytest.raises(APIError) as caught:
                await refused.request("GET", "/data")

    assert response.json()["ok"] is True
    assert caught.value.status == 407  # without them the proxy refuses the login
    assert toy.counters.logins == 1  # the refused client's login never got through


async def test_an_unreachable_proxy_is_a_connect_error_that_never_quotes_its_password(
    toy: Toy,
) -> None:
    dead = _free_port()
    async with _manager(toy, proxy=f"http://vk:proxy-pw-Zt4u@127.0.0.1:{dead}",
                        retry=RetryPolicy.never()) as manager:
        with pytest.raises(ConnectError) as caught:
            await manager.request("GET", "/data")

    assert "could not connect to the proxy" in str(caught.value)
    assert "proxy-pw-Zt4u" not in str(caught.value)
    assert "proxy-pw-Zt4u" not in repr(manager)
    assert toy.counters.logins == 0


async def test_a_proxy_url_of_another_scheme_is_a_configuration_error(toy: Toy) -> None:
    with pytest.raises(ConfigurationError, match="socks5 URL") as caught:
        _manager(toy, proxy="socks5://vk:proxy-pw-Lm2d@127.0.0.1:1080")
    assert "proxy-pw-Lm2d" not in str(caught.value)

