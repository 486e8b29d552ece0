"""``FileTokenStore``: tokens shared by the processes of one host, in one JSON file.

The CLI keeps its tokens here so that repeated ``vendorkit call`` commands reuse a token.
One file may hold the tokens of several credentials. Writes go to a temporary file that
replaces the old one (``os.replace``), so a reader never sees half a file; the file is
created with mode 0600. Logins are single flight across processes through an OS lock on
``<path>.lock`` (``flock`` on POSIX, ``LockFileEx`` on Windows, both through ``filelock``),
which the system releases if its holder dies.

The files are private to their user. The token and lock files are opened without following
a symbolic link (a link is a :class:`TokenStoreError`: it could point the write elsewhere).
On POSIX, the directory must belong to the user (or root) and not be writable by others:
one of the user's own is fixed to 0700 with a warning, any other is refused (a sticky
shared directory such as ``/tmp`` included); a token file other users can read is
tightened to 0600, with one warning.

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
import errno
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from filelock import lock_descriptor, unlock_descriptor

from .._constants import STORE_POLL_INTERVAL, STORE_WAIT_TIMEOUT
from ..errors import ConfigurationError, ResponseParseError, TokenStoreError
from ..token import Token
from .base import Cipher, dump_token, load_token, same_token
from .quota import FileQuota, file_quota_path

__all__ = ["FileTokenStore"]

logger = logging.getLogger("vendorkit")

_VERSION = 1
Entries = dict[str, dict[str, Any]]

_POSIX = os.name == "posix"
#: Open flags that every token or lock file gets: no link followed, no inheriting child,
#: no newline translation (the last two where the platform has them).
_OPEN_FLAGS = (getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))
#: Token files already warned about, so that a process says it once.
_WARNED: set[Path] = set()
_CHECKS = threading.Lock()


def _open(path: Path, flags: int) -> int:
    """A descriptor on the regular file ``path``, opened without following a symbolic link:
    a :class:`TokenStoreError` if it is a link (the target is neither read nor created)."""
    if not _POSIX and path.is_symlink():  # no O_NOFOLLOW there: the best that can be done
        raise _link_error(path)
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, 0o600)
    except OSError as exc:
        # ELOOP on Linux and macOS; other systems report a refused link differently.
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise _link_error(path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TokenStoreError(f"token store file {str(path)!r} is not a regular file")
    return fd


def _link_error(path: Path) -> TokenStoreError:
    return TokenStoreError(
        f"token store file {str(path)!r} is a symbolic link; vendorkit does not follow links "
        "for its token files, as one could point its writes elsewhere (remove the link)"
    )


def _check_directory(directory: Path) -> None:
    """Refuse a directory another user controls; fix one of the user's own that others
    can write into (they could swap the token file) to 0700, with a warning."""
    info = os.stat(directory)
    mode, uid = stat.S_IMODE(info.st_mode), os.getuid()
    if info.st_uid not in (uid, 0):
        raise TokenStoreError(
            f"token directory {str(directory)!r} belongs to another user (uid {info.st_uid}); "
            "keep tokens in a directory of your own"
        )
    if not mode & 0o022:
        return
    if info.st_uid != uid or mode & stat.S_ISVTX:
        raise TokenStoreError(
            f"token directory {str(directory)!r} is writable by other users (mode {mode:04o}); "
            "keep tokens in a private directory of your own"
        )
    os.chmod(directory, 0o700)
    logger.warning("vendorkit: token directory %s was writable by other users (mode %04o); "
                   "its mode is now 0700", directory, mode)


def _check_file(path: Path, fd: int) -> None:
    """Tighten a token file other users can read or write to 0600 (when it is the user's
    own), and say so once."""
    info = os.fstat(fd)
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    fixed = info.st_uid == os.getuid()
    if fixed:
        os.fchmod(fd, 0o600)
    with _CHECKS:
        if path in _WARNED:
            return
        _WARNED.add(path)
    logger.warning(
        "vendorkit: token file %s was open to other users (mode %04o); %s. The tokens in it "
        "may have been read: a logout revokes them", path, mode,
        "its mode is now 0600" if fixed else "it is not yours to fix: chmod 600 it",
    )


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
        self._directory_checked = False

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
        """An exclusive OS lock on the lock file, polled so a cancelled waiter leaves no
        thread blocked behind it; re-entered without waiting by the task holding it."""
        held = _HELD.get()
        if held is not None and held.active and held.path == self.lock_path:
            yield
            return
        await asyncio.to_thread(self._prepare_directory, create=True)
        # Opened on the loop (a local file), so a cancellation cannot leak the descriptor.
        fd = _open(self.lock_path, os.O_RDWR | os.O_CREAT)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._wait_timeout
            while not lock_descriptor(fd, blocking=False):
                if loop.time() >= deadline:
                    raise TokenStoreError(
                        f"another process held the token lock {str(self.lock_path)!r} "
                        f"for over {self._wait_timeout:g} s; its login is stuck"
                    )
                await asyncio.sleep(self._poll_interval)
            hold = _Hold(self.lock_path)
            reset = _HELD.set(hold)
            try:
                yield
            finally:
                hold.active = False
                _HELD.reset(reset)
                unlock_descriptor(fd)
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
        """The live entries; a missing or unreadable file reads as empty (a linked one, or
        one in a directory others control, is a :class:`TokenStoreError`)."""
        if not self._prepare_directory(create=False):
            return {}
        try:
            fd = _open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            logger.warning("vendorkit: ignoring unreadable token file %s (%s)",
                           self.path, type(exc).__name__)
            return {}
        try:
            with os.fdopen(fd, "rb") as file:
                if _POSIX:
                    _check_file(self.path, fd)
                content = json.loads(file.read())
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
        self._prepare_directory(create=True)
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

    def _prepare_directory(self, *, create: bool) -> bool:
        """Whether the directory exists (made 0700 when ``create``), checked once per store
        (on POSIX) before the first file in it is opened."""
        directory = self.path.parent
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif not directory.is_dir():
            return False
        if _POSIX and not self._directory_checked:
            with _CHECKS:
                _check_directory(directory)
            self._directory_checked = True
        return True

    def _decode(self, entry: dict[str, Any]) -> Token | None:
        try:
            return load_token(base64.b64decode(str(entry.get("token")), validate=True),
                              self._cipher)
        except (ResponseParseError, ValueError) as exc:  # binascii.Error is a ValueError
            logger.warning("vendorkit: ignoring the token stored in %s: %s", self.path, exc)
            return None

    def rate_limit_state(self, key: str) -> FileQuota:
        """Where :mod:`vendorkit.ratelimit` keeps ``key``'s limit: a file beside this one
        (``<path>.ratelimit``), so that the limit holds for the processes of this host."""
        return FileQuota(file_quota_path(self.path), key)
