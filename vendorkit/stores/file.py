"""``FileTokenStore``: tokens shared by the processes of one host, in one JSON file.

The CLI keeps its tokens here so that repeated ``vendorkit call`` commands reuse a token.
One file may hold the tokens of several credentials. Writes go to a temporary file that
replaces the old one (``os.replace``), so a reader never sees half a file; the file is
created with mode 0600. Logins are single flight across processes through an OS lock
(``flock``) on ``<path>.lock``, which the kernel releases if its holder dies.

As with every shared store, a client's ``aclose()`` leaves the token in the file for the
other processes, and ``logout()`` revokes it and removes it for all of them.

Tokens are secrets at rest: the file holds them, base64-encoded only, unless a ``cipher``
is given; keys hold a hash of the credential's identity, never a secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from .._constants import STORE_POLL_INTERVAL, STORE_WAIT_TIMEOUT
from ..errors import ConfigurationError, ResponseParseError, TokenStoreError
from ..token import Token
from .base import Cipher, dump_token, load_token, same_token

__all__ = ["FileTokenStore"]

logger = logging.getLogger("vendorkit")

_VERSION = 1
Entries = dict[str, dict[str, Any]]


class _Hold:
    """The lock file a task holds, so that its own writes do not wait for that lock."""

    __slots__ = ("active", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.active = True


_HELD: contextvars.ContextVar[_Hold | None] = contextvars.ContextVar(
    "vendorkit_file_store_lock", default=None
)


def _expiry(token: Token) -> float | None:
    """When the entry is useless: the access token's expiry, or the refresh token's if later."""
    if token.expires_at is None:
        return None
    if token.refresh_token is not None:
        if token.refresh_expires_at is None:
            return None
        return max(token.expires_at, token.refresh_expires_at)
    return token.expires_at


class FileTokenStore:
    """Tokens in a JSON file shared by the processes of one host (mode 0600, atomic writes)."""

    shared = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cipher: Cipher | None = None,
        wait_timeout: float = STORE_WAIT_TIMEOUT,
        poll_interval: float = STORE_POLL_INTERVAL,
    ) -> None:
        if not str(path):
            raise ConfigurationError("FileTokenStore path is required")
        self.path = Path(path).expanduser()
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._cipher = cipher
        self._wait_timeout = wait_timeout
        self._poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"<FileTokenStore {str(self.path)!r}>"

    # --- TokenStore -------------------------------------------------------------------

    async def get(self, key: str) -> Token | None:
        entry = (await asyncio.to_thread(self._read)).get(key)
        return None if entry is None else self._decode(entry)

    async def set(self, key: str, token: Token) -> None:
        entry = {
            "token": base64.b64encode(dump_token(token, self._cipher)).decode(),
            "expires": _expiry(token),
        }

        def write(entries: Entries) -> bool:
            entries[key] = entry
            return True

        await self._update(write)

    async def delete(self, key: str, *, only_if: Token | None = None) -> bool:
        def remove(entries: Entries) -> bool:
            entry = entries.get(key)
            if entry is None:
                return False
            if only_if is not None and not same_token(self._decode(entry), only_if):
                return False
            del entries[key]
            return True

        return await self._update(remove)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """The login lock. One lock file per store file: logins for different credentials
        in the same file take turns (they are rare, and a file is local)."""
        async with self._flock():
            yield

    async def aclose(self) -> None:
        """Nothing to release: the file stays, with its tokens, for the other processes."""

    # --- the file ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _flock(self) -> AsyncIterator[None]:
        """An exclusive ``flock`` on the lock file, polled so a cancelled waiter leaves
        no thread blocked behind it; re-entered without waiting by the task holding it."""
        held = _HELD.get()
        if held is not None and held.active and held.path == self.lock_path:
            yield
            return
        await asyncio.to_thread(self._make_parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._wait_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if loop.time() >= deadline:
                        raise TokenStoreError(
                            f"another process held the token lock {str(self.lock_path)!r} "
                            f"for over {self._wait_timeout:g} s; its login is stuck"
                        ) from None
                    await asyncio.sleep(self._poll_interval)
            hold = _Hold(self.lock_path)
            reset = _HELD.set(hold)
            try:
                yield
            finally:
                hold.active = False
                _HELD.reset(reset)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    async def _update(self, change: Callable[[Entries], bool]) -> bool:
        """Read, change and atomically rewrite the file under the lock (expired entries,
        never read back, are dropped on the way)."""
        async with self._flock():
            return await asyncio.to_thread(self._rewrite, change)

    def _rewrite(self, change: Callable[[Entries], bool]) -> bool:
        entries = self._read()
        changed = change(entries)
        if changed:
            self._write(entries)
        return changed

    def _read(self) -> Entries:
        """The live entries; a missing or unreadable file reads as empty."""
        try:
            content = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("vendorkit: ignoring unreadable token file %s (%s)",
                           self.path, type(exc).__name__)
            return {}
        tokens = content.get("tokens") if isinstance(content, dict) else None
        if not isinstance(tokens, dict):
            return {}
        now = time.time()
        return {
            k: v for k, v in tokens.items()
            if isinstance(v, dict) and (not isinstance(v.get("expires"), int | float)
                                        or v["expires"] > now)
        }

    def _write(self, entries: Entries) -> None:
        self._make_parent()
        data = json.dumps({"version": _VERSION, "tokens": entries}, separators=(",", ":"))
        # mkstemp creates the file with mode 0600 before anything is written to it.
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp",
                                   dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _make_parent(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _decode(self, entry: dict[str, Any]) -> Token | None:
        try:
            return load_token(base64.b64decode(str(entry.get("token")), validate=True),
                              self._cipher)
        except (ResponseParseError, ValueError) as exc:  # binascii.Error is a ValueError
            logger.warning("vendorkit: ignoring the token stored in %s: %s", self.path, exc)
            return None
