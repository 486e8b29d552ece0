"""The loopback server every contender talks to, in its own process (optionally on its own core).

Two kinds, one interface (:class:`Server`):

- ``nginx`` (preferred): Debian's nginx with ``benchmarks/nginx.conf``, answering fixed
  bodies with no Python at all, so the client under test dominates every figure. Any
  POST to the login route gets the same far-future JWT; the API checks that exact token.
- ``sandbox`` (fallback, and the storms' token-expiry server): vendorkit's Cloud4Wi
  emulator under uvloop, which issues real expiring tokens and counts logins, but costs
  far more per request than nginx, so its throughput figures are server-bound.

Run ``python -m benchmarks.server sandbox`` to start the emulator alone; it prints its
base URL as one JSON line and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

__all__ = ["CID", "Server", "credentials", "nginx_available", "start"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NGINX_CONF = HERE / "nginx.conf"
#: The customer whose organizations every contender fetches: six organizations, about 2.4 kB.
CID = "customer-42"
STARTUP_TIMEOUT = 20.0

ServerKind = Literal["nginx", "sandbox"]


def credentials() -> tuple[str, str]:
    """The sandbox's Cloud4Wi client key and secret (nginx accepts any)."""
    from vendorkit.sandbox.cloud4wi import VENDOR

    return VENDOR.credentials["client_key"], VENDOR.credentials["client_secret"]


def nginx_available() -> bool:
    return _nginx_binary() is not None


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def pinned(command: list[str], core: int | None) -> list[str]:
    """``command`` under ``taskset -c core`` when a core is given."""
    return command if core is None else ["taskset", "-c", str(core), *command]


class Server:
    """A running server process: where it listens and how many logins it has answered."""

    def __init__(
        self,
        kind: ServerKind,
        base_url: str,
        process: subprocess.Popen[bytes],
        *,
        core: int | None,
        workdir: Path | None = None,
    ) -> None:
        self.kind: ServerKind = kind
        self.base_url = base_url
        self.process = process
        self.core = core
        self._workdir = workdir

    def __repr__(self) -> str:
        return f"<Server {self.kind} {self.base_url} core={self.core}>"

    @property
    def description(self) -> str:
        if self.kind == "nginx":
            return "nginx (1 process, fixed JSON bodies, benchmarks/nginx.conf)"
        return "vendorkit sandbox Cloud4Wi emulator (aiohttp under uvloop, 1 process)"

    def logins(self) -> int:
        """Logins answered so far: nginx's login access log, or the sandbox's counters."""
        if self._workdir is not None:
            log = self._workdir / "logins.log"
            if not log.exists():
                return 0
            with log.open("rb") as lines:
                return sum(1 for _ in lines)
        counters = control(self.base_url, "GET", "/_sandbox/counters")
        return int(counters["logins"])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def control(base_url: str, method: str, path: str) -> dict[str, Any]:
    """Call a sandbox control route (no proxy: the server is on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(base_url + path, method=method, data=b"{}"
                                     if method == "POST" else None,
                                     headers={"Content-Type": "application/json"})
    with opener.open(request, timeout=10) as answer:
        value = json.loads(answer.read())
    if not isinstance(value, dict):
        raise RuntimeError(f"{path} answered {value!r}")
    return value


def start(
    kind: ServerKind | Literal["auto"] = "auto",
    *,
    core: int | None = None,
    token_lifetime: float | None = None,
) -> Server:
    """Start a server process (``auto``: nginx if installed, else the sandbox)."""
    if kind == "auto":
        kind = "nginx" if nginx_available() else "sandbox"
    if kind == "nginx":
        return _start_nginx(core)
    return _start_sandbox(core, token_lifetime)


def fixed_jwt(subject: str, lifetime: float = 10 * 365 * 86400) -> str:
    """An unsigned-in-spirit HS256-shaped JWT whose ``exp`` is far away (clients read only exp)."""
    def part(value: object) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + int(lifetime)}
    signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"


def organizations_body(cid: str = CID) -> str:
    """The JSON the sandbox answers for ``cid``, byte for byte, for nginx to return."""
    from vendorkit.sandbox.cloud4wi import seed_organizations

    return json.dumps([org.to_json() for org in seed_organizations(cid)])


def _nginx_literal(text: str) -> str:
    """``text`` made safe inside an nginx single-quoted string (no variables, no quotes)."""
    if "$" in text:
        raise ValueError("a fixed nginx body must not contain '$'")
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_nginx(core: int | None) -> Server:
    binary = _nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx-light)")
    workdir = Path(tempfile.mkdtemp(prefix="vendorkit-bench-nginx-"))
    port = _free_port()
    token = fixed_jwt(credentials()[0])
    fields = {
        "@@PREFIX@@": str(workdir),
        "@@PORT@@": str(port),
        "@@TOKEN@@": token,
        "@@LOGIN_BODY@@": _nginx_literal(json.dumps({"token": token})),
        "@@ORGANIZATIONS_BODY@@": _nginx_literal(organizations_body()),
    }
    config = NGINX_CONF.read_text()
    for name, value in fields.items():
        config = config.replace(name, value)
    (workdir / "nginx.conf").write_text(config)
    process = subprocess.Popen(
        pinned([binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
                "-e", str(workdir / "error.log")], core),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = Server("nginx", f"http://127.0.0.1:{port}", process, core=core, workdir=workdir)
    try:
        _wait_for_port(port, process, workdir / "error.log")
    except BaseException:
        server.close()
        raise
    return server


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"nginx exited with {process.returncode}: {detail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on port {port} within {STARTUP_TIMEOUT} s")


def _start_sandbox(core: int | None, token_lifetime: float | None) -> Server:
    command = [*python(), "-m", "benchmarks.server", "sandbox"]
    if token_lifetime is not None:
        command += ["--token-lifetime", repr(token_lifetime)]
    process = subprocess.Popen(
        pinned(command, core), cwd=ROOT, env=child_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise RuntimeError(f"the sandbox server exited with {process.returncode} before starting")
    base_url = json.loads(line)["base_url"]
    return Server("sandbox", base_url, process, core=core)


def child_env() -> dict[str, str]:
    """The environment for a benchmark process: this repository on the import path, after
    any ``PYTHONPATH`` of the caller's, so that another vendorkit build can be measured:
    ``PYTHONPATH=/elsewhere python -m benchmarks.run``. Children run with ``python -P``
    (no working directory on the path) for the same reason."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    return env


def python() -> list[str]:
    """The command that starts a benchmark process's interpreter."""
    return [sys.executable, "-P"]


async def _serve_sandbox(token_lifetime: float | None) -> None:
    from vendorkit.sandbox import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve("cloud4wi", token_lifetime=token_lifetime) as sandbox:
        print(json.dumps({"base_url": sandbox.base_url}), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("kind", choices=["sandbox"])
    parser.add_argument("--token-lifetime", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_sandbox(args.token_lifetime))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve_sandbox(args.token_lifetime))


if __name__ == "__main__":
    main()
