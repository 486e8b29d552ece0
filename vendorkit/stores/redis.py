"""``RedisTokenStore``: one token per credential for a fleet of processes on many hosts.

What a fleet sharing one store gets, and which call does what:

- A process that finds a valid token in Redis uses it: no login.
- Logins and refreshes are single flight across the fleet. The process that takes the
  Redis lock (``SET NX PX`` with its own owner value, renewed while it works, released by
  a compare-and-delete script so that only its owner can release it) logs in or
  refreshes; the others poll for the lock and then use the token it wrote. If the holder
  dies, its lock expires after ``lock_ttl`` and another process takes over.
- The access and refresh tokens are one value, written in one step, so a rotated refresh
  token is never stored apart from its access token.
- A token the vendor rejects is removed only while it is still the stored one, so a slow
  process never wipes a fresher token.
- ``aclose()`` of a client leaves the token in Redis for the rest of the fleet;
  ``logout()`` revokes it at the vendor and removes it from Redis for every process.
- If Redis is unreachable, the store logs one warning and serves from this process's
  memory, with an in-process single flight, trying Redis again every ``retry_pause``
  seconds; with ``strict=True`` it raises :class:`~vendorkit.errors.TokenStoreError`.
  Redis refusing for a while (READONLY in a failover, OOM, BUSY) counts as unreachable;
  any other refusal (a script error, a key of another type, an ACL) raises
  ``TokenStoreError`` at once: that is a bug or a misconfiguration, not an outage.
- Keys expire with their token, a TTL clamped to ten years whatever the token claims.

Tokens are secrets at rest. Keys hold a hash of the credential's identity, never a
secret; the value is the serialised token, encrypted if a ``cipher`` is given, beside a
SHA-256 fingerprint of the access token (for compare-and-delete). Keep Redis reachable
by the fleet only, and use ``rediss://`` with a password between hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import random
import re
import socket
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from .._constants import (
    STORE_LOCK_TTL,
    STORE_POLL_INTERVAL,
    STORE_REDIS_TIMEOUT,
    STORE_RETRY_PAUSE,
    STORE_WAIT_TIMEOUT,
)
from ..errors import ConfigurationError, ResponseParseError, TokenStoreError
from ..token import MAX_LIFETIME, Token
from .base import Cipher, dump_token, load_token
from .memory import MemoryTokenStore
from .quota import RedisQuota

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import (
        ClusterDownError,
        OutOfMemoryError,
        ReadOnlyError,
        RedisError,
        ResponseError,
        TryAgainError,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "RedisTokenStore needs redis-py: pip install 'vendorkit[redis]'"
    ) from exc

__all__ = ["RedisTokenStore"]

logger = logging.getLogger("vendorkit")

T = TypeVar("T")

# Replace the token and its fingerprint in one step; TTL in ms, 0 for none. A TTL Redis
# refuses removes the token too: a script stops at an error but keeps what it wrote, and a
# token left without its TTL would outlive its expiry.
_SET = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'fp', ARGV[2])
if tonumber(ARGV[3]) > 0 then
  local set = redis.pcall('PEXPIRE', KEYS[1], ARGV[3])
  if type(set) == 'table' and set.err then redis.call('DEL', KEYS[1]); return set end
end
return 1
"""
# Delete the token only while its fingerprint is ARGV[1].
_DELETE_IF = """
if redis.call('HGET', KEYS[1], 'fp') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Release, or extend by ARGV[2] ms, the lock only while ARGV[1] owns it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class _Unavailable(Exception):
    """Redis did not answer; the caller serves from the in-process fallback."""


def fingerprint(token: Token) -> str:
    """SHA-256 of the access token: compares tokens without storing one in clear."""
    return hashlib.sha256(token.access_token.encode()).hexdigest()


#: The longest TTL given to Redis, whatever a token claims (NaN, inf, 1e17 s included).
MAX_TTL_MS = int(MAX_LIFETIME * 1000)


def ttl_ms(token: Token, now: float) -> int | None:
    """How long Redis keeps ``token``: its remaining lifetime, or the refresh token's if
    that is later (so a process starting after expiry refreshes instead of logging in);
    None (no TTL) when nothing about it expires. Clamped to 1 ms .. ``MAX_TTL_MS``."""
    if token.expires_at is None:
        return None
    until = token.expires_at
    if token.refresh_token is not None:
        if token.refresh_expires_at is None:
            return None  # a refresh token of unknown lifetime: kept until replaced
        until = max(until, token.refresh_expires_at)
    remaining = (until - now) * 1000
    if math.isnan(remaining) or remaining >= MAX_TTL_MS:
        return MAX_TTL_MS
    return math.ceil(remaining) if remaining > 1 else 1


def _passing(exc: ResponseError) -> bool:
    """Whether Redis refused for a while (a failover, a full memory, a busy script): an
    outage for the fallback. Any other refusal (a script error, a key of the wrong type,
    an ACL) is a bug or a misconfiguration that the fallback would only hide."""
    transient = (ReadOnlyError, OutOfMemoryError, TryAgainError, ClusterDownError)
    return isinstance(exc, transient) or str(exc).startswith(("BUSY", "MISCONF"))


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def redact_url(url: str) -> str:
    """The URL with its password (in the authority or the query) replaced by ``***``."""
    password = urlsplit(url).password
    if password:
        url = url.replace(f":{password}@", ":***@", 1)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)


async def _close_with_loop(client: aioredis.Redis) -> AsyncGenerator[None, None]:
    """Closes ``client`` when its event loop shuts down, as the session manager does for
    its aiohttp session, so a forgotten ``aclose()`` leaks no connection."""
    try:
        yield
    finally:
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()


class _Connection:
    """A redis-py client, its scripts and its guardian, for one event loop."""

    __slots__ = ("client", "delete_if", "guardian", "loop", "release", "renew", "set")

    def __init__(self, url: str, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        # One immediate retry heals a pooled connection Redis closed; no backoff, so an
        # unreachable Redis is noticed at once and the fallback takes over.
        self.client = aioredis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self.set = self.client.register_script(_SET)
        self.delete_if = self.client.register_script(_DELETE_IF)
        self.release = self.client.register_script(_RELEASE)
        self.renew = self.client.register_script(_RENEW)
        self.guardian = _close_with_loop(self.client)
        with contextlib.suppress(StopIteration):  # run to its yield; the loop finalises it
            self.guardian.asend(None).send(None)


class RedisTokenStore:
    """Tokens in Redis, shared by every process that uses the same URL and namespace.

    Pass it to any client as ``token_store=``; see the module docstring for what the
    fleet gets. ``cipher`` encrypts tokens at rest (any object with ``encrypt(bytes)``
    and ``decrypt(bytes)``, e.g. ``cryptography.fernet.Fernet``). A client never closes a
    store it was given: ``await store.aclose()`` after the clients that use it.
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "vendorkit",
        cipher: Cipher | None = None,
        strict: bool = False,
        lock_ttl: float = STORE_LOCK_TTL,
        wait_timeout: float = STORE_WAIT_TIMEOUT,
        poll_interval: float = STORE_POLL_INTERVAL,
        timeout: float = STORE_REDIS_TIMEOUT,
        retry_pause: float = STORE_RETRY_PAUSE,
    ) -> None:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(
                "RedisTokenStore url must be a redis://, rediss:// or unix:// URL"
            )
        if not namespace or not isinstance(namespace, str):
            raise ConfigurationError("RedisTokenStore namespace must be a non-empty string")
        for name, value in (("lock_ttl", lock_ttl), ("wait_timeout", wait_timeout),
                            ("poll_interval", poll_interval), ("timeout", timeout)):
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"RedisTokenStore {name} must be a positive number")
        if wait_timeout <= lock_ttl:
            raise ConfigurationError(
                "RedisTokenStore wait_timeout must be longer than lock_ttl, so that waiters "
                "outlive the lock of a process that died holding it"
            )
        self.url = redact_url(url)
        self.namespace = namespace
        self._url = url
        self._cipher = cipher
        self._strict = strict
        self._lock_ttl_ms = max(1, int(lock_ttl * 1000))
        self._wait_timeout = wait_timeout
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._retry_pause = retry_pause
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._connection: _Connection | None = None
        self._fallback = MemoryTokenStore()
        self._local_locks: dict[str, asyncio.Lock] = {}
        self._local_loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0  # monotonic time before which Redis is not tried again
        self._outage = False  # a warning was logged and Redis has not answered since

    def __repr__(self) -> str:
        return f"<RedisTokenStore {self.url} namespace={self.namespace!r}>"

    def redis_key(self, key: str) -> str:
        """The Redis key of a store key (the lock is this plus ``:lock``)."""
        return key if key.startswith(self.namespace + ":") else f"{self.namespace}:{key}"

    # --- TokenStore -------------------------------------------------------------------

    async def get(self, key: str) -> Token | None:
        rkey = self.redis_key(key)
        try:
            data = await self._run(lambda c: c.client.hget(rkey, "token"))
        except _Unavailable:
            return await self._fallback.get(key)
        token = None if data is None else self._decode(data)
        if token is None:
            await self._fallback.delete(key)
        else:
            await self._fallback.set(key, token)
        return token

    async def set(self, key: str, token: Token) -> None:
        await self._fallback.set(key, token)
        blob = dump_token(token, self._cipher)
        ttl = ttl_ms(token, time.time()) or 0
        rkey = self.redis_key(key)
        with contextlib.suppress(_Unavailable):
            await self._run(lambda c: c.set(keys=[rkey], args=[blob, fingerprint(token), ttl]))

    async def delete(self, key: str, *, only_if: Token | None = None) -> bool:
        removed_here = await self._fallback.delete(key, only_if=only_if)
        rkey = self.redis_key(key)
        try:
            if only_if is None:
                removed = await self._run(lambda c: c.client.delete(rkey))
            else:
                digest = fingerprint(only_if)
                removed = await self._run(lambda c: c.delete_if(keys=[rkey], args=[digest]))
        except _Unavailable:
            return removed_here
        return bool(removed)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """The fleet-wide login lock for ``key``; in-process only while Redis is down."""
        lock_key = self.redis_key(key) + ":lock"
        owner = f"{self._owner}:{uuid.uuid4().hex}"
        try:
            await self._acquire(lock_key, owner)
        except _Unavailable:
            async with self._local_lock(key):
                yield
            return
        keeper = asyncio.get_running_loop().create_task(self._keep(lock_key, owner))
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])
            with contextlib.suppress(_Unavailable, TokenStoreError):
                await self._run(lambda c: c.release(keys=[lock_key], args=[owner]))

    async def aclose(self) -> None:
        """Close the connections. The tokens stay in Redis for the other processes."""
        connection, self._connection = self._connection, None
        if connection is not None and connection.loop is asyncio.get_running_loop():
            await connection.guardian.aclose()

    # --- the lock ---------------------------------------------------------------------

    async def _acquire(self, lock_key: str, owner: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_timeout
        ttl = self._lock_ttl_ms
        while not await self._run(lambda c: c.client.set(lock_key, owner, nx=True, px=ttl)):
            if loop.time() >= deadline:
                holder = await self._run(lambda c: c.client.get(lock_key))
                who = _text(holder).rpartition(":")[0] or "?"
                raise TokenStoreError(
                    f"another process ({who}) held the token lock of {self.url} for over "
                    f"{self._wait_timeout:g} s; its login or refresh is stuck"
                )
            await asyncio.sleep(self._poll_interval * random.uniform(0.5, 1.5))

    async def _keep(self, lock_key: str, owner: str) -> None:
        """Renews the lock while its holder works, so that only a dead holder's expires."""
        ttl = self._lock_ttl_ms
        try:
            while True:
                await asyncio.sleep(ttl / 3000)
                if not await self._run(lambda c: c.renew(keys=[lock_key], args=[owner, ttl])):
                    logger.warning("vendorkit: lost the token lock of %s to another process "
                                   "(it expired); a second login may follow", self.url)
                    return
        except (_Unavailable, TokenStoreError):
            return  # the lock expires by itself

    def _local_lock(self, key: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._local_loop is not loop:
            self._local_locks, self._local_loop = {}, loop
        return self._local_locks.setdefault(key, asyncio.Lock())

    # --- talking to Redis -------------------------------------------------------------

    def _connect(self) -> _Connection:
        connection = self._connection
        if connection is None or connection.loop is not asyncio.get_running_loop():
            connection = self._connection = _Connection(self._url, self._timeout)
        return connection

    async def _run(self, command: Callable[[_Connection], Awaitable[T]]) -> T:
        """Run one Redis command. Raises ``_Unavailable`` (fall back) or, when strict,
        :class:`TokenStoreError`; logs one warning per outage."""
        if not self._strict and time.monotonic() < self._down_until:
            raise _Unavailable
        try:
            result = await command(self._connect())
        except RedisError as exc:
            reason = f"{type(exc).__name__}: {exc}".replace(self._url, self.url)
            if isinstance(exc, ResponseError) and not _passing(exc):
                raise TokenStoreError(
                    f"token store {self.url} refused a command ({reason}): a bug in vendorkit "
                    "or a misconfigured Redis (ACLs, a key of another type), not an outage"
                ) from None
            if self._strict:
                raise TokenStoreError(
                    f"token store {self.url} failed ({reason}); strict=True, so no fallback"
                ) from None
            self._down_until = time.monotonic() + self._retry_pause
            if not self._outage:
                self._outage = True
                logger.warning(
                    "vendorkit: token store %s is unreachable (%s); this process now keeps "
                    "its own token and logs in on its own, trying Redis again every %g s",
                    self.url, reason, self._retry_pause,
                )
            raise _Unavailable from None
        if self._outage:
            self._outage = False
            logger.info("vendorkit: token store %s is reachable again", self.url)
        return result

    def _decode(self, data: bytes | str) -> Token | None:
        try:
            return load_token(data.encode() if isinstance(data, str) else data, self._cipher)
        except ResponseParseError as exc:
            logger.warning("vendorkit: ignoring the token stored in %s: %s", self.url, exc)
            return None

    def rate_limit_state(self, key: str) -> RedisQuota:
        """Where :mod:`vendorkit.ratelimit` keeps ``key``'s limit: a hash beside the token
        (``<key>:ratelimit``), so that the limit holds for the whole fleet."""
        return RedisQuota(self, self.redis_key(key) + ":ratelimit")

    async def run_script(self, script: str, keys: list[str], args: list[str | int]) -> object:
        """Run the Lua ``script`` on this store's Redis (EVALSHA, loaded on first use): None
        while Redis is unreachable, :class:`TokenStoreError` then if ``strict=True``."""
        try:
            return await self._run(
                lambda c: c.client.register_script(script)(keys=keys, args=args))
        except _Unavailable:
            return None
