"""Fixtures for the ``vendorkit`` command's tests: run it in a subprocess, serve emulators.

Every command runs as ``python -m vendorkit.cli`` with an environment holding no
``VENDORKIT_*`` variable and a temporary HOME, so neither real credentials nor the
developer's config file or token cache can leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from vendorkit.sandbox import SandboxState, SandboxThread

#: Longest any single command may take in these tests.
TIMEOUT = 60


class CLI:
    """Runs the command with a clean environment rooted in a temporary directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VENDORKIT_")}
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
                        XDG_CACHE_HOME=str(home / "cache"), COLUMNS="200")
        self.env.pop("PYTHONWARNINGS", None)

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "vendorkit" / "config.toml"

    @property
    def token_cache(self) -> Path:
        return self.home / "cache" / "vendorkit" / "tokens.json"

    @staticmethod
    def one_line(text: str) -> str:
        """The single line ``text`` must be (an error message), or a failed assertion."""
        lines = text.strip().splitlines()
        assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
        return lines[0]

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "vendorkit.cli", *args]

    def run(self, *args: str, env: Mapping[str, str] | None = None,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run to completion; stdout and stderr captured as text."""
        return subprocess.run(self.command(*args), env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start in the background (the caller waits for it, or kills it)."""
        return subprocess.Popen(self.command(*args), env={**self.env, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    home = tmp_path / "home"
    home.mkdir()
    return CLI(home)


class Sandboxes:
    """Emulators on a background thread: their clients' variables, state and counters."""

    def __init__(self, thread: SandboxThread) -> None:
        self.thread = thread

    def env(self, vendor: str, **overrides: str) -> dict[str, str]:
        """``VENDORKIT_<VENDOR>_<FIELD>`` variables for the emulator, some overridden."""
        running = self.thread.sandboxes[vendor]
        variables = {f"VENDORKIT_{vendor.upper()}_{name.upper()}": value
                     for name, value in running.client_kwargs.items()}
        return variables | {f"VENDORKIT_{vendor.upper()}_{name.upper()}": value
                            for name, value in overrides.items()}

    def state(self, vendor: str) -> SandboxState:
        return self.thread.sandboxes[vendor].state

    def counters(self, vendor: str) -> dict[str, object]:
        """A snapshot taken on the emulators' own loop."""
        return self.thread.call(self.state(vendor).counters.snapshot)

    def reset(self) -> None:
        def reset() -> None:
            for running in self.thread.sandboxes.values():
                running.state.faults.clear()
                running.state.counters.reset()

        self.thread.call(reset)


@pytest.fixture(scope="module")
def sandbox_thread() -> Iterator[SandboxThread]:
    """All five emulators on a background thread, shared by a module's tests."""
    with SandboxThread() as running:
        yield running


@pytest.fixture
def sandbox(sandbox_thread: SandboxThread) -> Iterator[Sandboxes]:
    """The shared emulators, with counters, faults and latency reset after each test."""
    sandboxes = Sandboxes(sandbox_thread)
    yield sandboxes
    sandboxes.reset()

