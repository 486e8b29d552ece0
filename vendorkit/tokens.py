"""``TokenManager``: where a token is obtained, refreshed, shared and invalidated.

One manager per credential. The rules, in one place:

- Fast path: a cached token outside both refresh windows is returned with no await.
- Advisory window (last min(60 s, half the lifetime)): one background task refreshes
  while every call goes on with the still-valid token, as botocore does.
- Mandatory window (last min(10 s, a quarter of the lifetime)), or no token: calls wait
  for the single refresh or login.
- Single flight: whatever the reason, at most one login/refresh runs per manager per
  event loop; every caller awaits the same task through ``asyncio.shield``, so a
  cancelled caller never cancels it. A failure reaches every waiter and is not cached.
- Across processes, the store's lock serialises the flights and the store is read
  again under it, so a token another process just obtained is used, not replaced.
- A refresh the server refuses (``invalid_grant``) falls back to a full login. A refresh
  that fails otherwise while the old token is still valid keeps the old token in use
  until it truly expires, retried after a pause.
- A token the server rejects is dropped only if it is still the current one, so a
  late 401 never discards a newer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ._constants import (
    ADVISORY_REFRESH_FRACTION,
    ADVISORY_REFRESH_SECONDS,
    MANDATORY_REFRESH_FRACTION,
    MANDATORY_REFRESH_SECONDS,
    REFRESH_RETRY_FRACTION,
    REFRESH_RETRY_MAX_SECONDS,
)
from .auth import AuthStrategy, AuthTransport
from .errors import InvalidGrantError, VendorkitError
from .events import EventBus
from .stores.base import TokenStore, same_token
from .token import Token

__all__ = ["RefreshWindows", "TokenManager"]

logger = logging.getLogger("vendorkit")

_INF = float("inf")


class RefreshWindows:
    """When to refresh: both windows scale with the lifetime (a 3 s token refreshes once)."""

    __slots__ = ("advisory_fraction", "advisory_seconds", "mandatory_fraction", "mandatory_seconds")

    def __init__(
        self,
        advisory_seconds: float = ADVISORY_REFRESH_SECONDS,
        mandatory_seconds: float = MANDATORY_REFRESH_SECONDS,
        advisory_fraction: float = ADVISORY_REFRESH_FRACTION,
        mandatory_fraction: float = MANDATORY_REFRESH_FRACTION,
    ) -> None:
        self.advisory_seconds = advisory_seconds
        self.mandatory_seconds = mandatory_seconds
        self.advisory_fraction = advisory_fraction
        self.mandatory_fraction = mandatory_fraction

    def deadlines(self, token: Token) -> tuple[float, float]:
        """(advisory_at, mandatory_at): the UNIX times the two windows open for ``token``."""
        if token.expires_at is None:
            return _INF, _INF
        lifetime = token.lifetime
        if lifetime is None or lifetime <= 0:
            lifetime = max(token.expires_at - time.time(), 0.0)
        advisory = min(self.advisory_seconds, lifetime * self.advisory_fraction)
        mandatory = min(self.mandatory_seconds, lifetime * self.mandatory_fraction)
        return token.expires_at - advisory, token.expires_at - mandatory


class TokenManager:
    """Owns the current token of one credential: login, refresh, re-auth, logout."""

    def __init__(
        self,
        strategy: AuthStrategy,
        store: TokenStore,
        key: str,
        events: EventBus,
        *,
        windows: RefreshWindows | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.strategy = strategy
        self.store = store
        self.key = key
        self._events = events
        self._windows = windows or RefreshWindows()
        self._clock = clock
        self._static = strategy.static_token()
        self._token: Token | None = self._static
        self._advisory_at = _INF
        self._mandatory_at = _INF
        self._retry_refresh_at = 0.0
        self._flight: asyncio.Task[Token] | None = None
        self._flight_loop: asyncio.AbstractEventLoop | None = None

    @property
    def token(self) -> Token | None:
        """The token this process holds now, without any I/O."""
        return self._token

    def fresh(self) -> Token | None:
        """The held token if it is outside both refresh windows, else None: ``get()``'s
        fast path without a coroutine, for the request pipeline."""
        token = self._token
        if token is not None and self._clock() < self._advisory_at:
            return token
        return None

    async def get(self, transport: AuthTransport) -> Token:
        """A token good to send now, obtaining or refreshing it if needed."""
        token = self._token
        if token is not None:
            now = self._clock()
            if now < self._advisory_at:
                return token
            if now < self._mandatory_at:
                if now >= self._retry_refresh_at:
                    self._start_flight(transport, stale=token, reason=None)
                return token
            if now < self._retry_refresh_at and not token.is_expired(now):
                return token  # a refresh just failed; the old token still works
        return await asyncio.shield(self._start_flight(transport, stale=token, reason=None))

    async def reject(self, transport: AuthTransport, sent: Token) -> Token:
        """The server refused ``sent``: drop it unless already replaced; log in once."""
        if self._static is not None:
            return self._static
        current = self._token
        if current is not None and not same_token(current, sent):
            return current  # another caller already replaced it
        if current is not None:
            self._adopt(None)
            await self.store.delete(self.key, only_if=sent)
        return await asyncio.shield(self._start_flight(transport, stale=sent, reason="rejected"))

    def held_before(self) -> Callable[[Token], bool]:
        """A test, for later, of whether a token is the one held now or the one the login
        or refresh running now will return: obtained before this moment.

        A replay rejected with such a token says nothing against a fresh login: what made
        the server refuse the first token (a mass revocation) may have refused it too.
        """
        token, flight = self._token, self._flight
        if flight is not None and (self._flight_loop is not _running_loop() or flight.done()):
            flight = None

        def obtained_before(candidate: Token) -> bool:
            if self._static is not None:
                return False
            if same_token(token, candidate):
                return True
            if flight is None or not flight.done() or flight.cancelled():
                return False
            return flight.exception() is None and same_token(flight.result(), candidate)

        return obtained_before

    async def login(self, transport: AuthTransport) -> Token:
        """Log in now (single flight with any login already running), ignoring a cached token."""
        if self._static is not None:
            return self._static
        return await asyncio.shield(
            self._start_flight(transport, stale=self._token, reason="explicit")
        )

    async def logout(self, transport: AuthTransport, *, revoke: bool = True) -> bool:
        """Forget the token here and in the store; with ``revoke``, revoke it at the server too."""
        if self._static is not None:
            return False
        await self._settle()  # a renewal landing after the logout would outlive it
        token = self._token or await self.store.get(self.key)
        self._adopt(None)
        if token is None:
            return False
        await self.store.delete(self.key, only_if=token)
        if revoke and await self.strategy.logout(transport, token):
            self._events.emit("logout")
            return True
        return False

    async def _settle(self) -> None:
        """Wait for the login or refresh running in this loop, if any, whatever its outcome
        (a failure is for its own callers to see)."""
        flight = self._flight
        if flight is not None and self._flight_loop is _running_loop() and not flight.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(flight)

    def forget(self) -> None:
        """Drop the token from this process only (the store keeps it for others)."""
        if self._static is None:
            self._adopt(None)

    # --- the single flight --------------------------------------------------------------

    def _start_flight(
        self, transport: AuthTransport, *, stale: Token | None, reason: str | None
    ) -> asyncio.Task[Token]:
        """The running flight, or a new one. ``reason`` forces a login; None allows a refresh."""
        loop = asyncio.get_running_loop()
        flight = self._flight
        if flight is not None and self._flight_loop is loop and not flight.done():
            return flight
        flight = loop.create_task(self._obtain(transport, stale, reason))
        flight.add_done_callback(self._flight_done)
        self._flight, self._flight_loop = flight, loop
        return flight

    def _flight_done(self, flight: asyncio.Task[Token]) -> None:
        if self._flight is flight:
            self._flight = None
        if not flight.cancelled():
            flight.exception()  # retrieved here so that a flight nobody awaits logs nothing

    async def _obtain(
        self, transport: AuthTransport, stale: Token | None, reason: str | None
    ) -> Token:
        try:
            if self.store.shared:
                # A first look without the lock: a token another process already stored
                # is used at once, without queueing behind the fleet's lock.
                stored = await self.store.get(self.key)
                if stored is not None and self._fresh(stored, stale):
                    self._adopt(stored)
                    return stored
            async with self.store.lock(self.key):
                stored = await self.store.get(self.key)
                if stored is not None and self._fresh(stored, stale):
                    self._adopt(stored)  # another process did it while we waited
                    return stored
                # The stored token is the fleet's newest: refreshing with an older, already
                # rotated refresh token would make the server end the session for everyone.
                base = stored if stored is not None else stale
                if reason is None and base is not None and self._refreshable(base):
                    token = await self._refresh(transport, base)
                else:
                    token = await self._login(transport, reason=reason or "no token")
                await self.store.set(self.key, token)
        except asyncio.CancelledError:
            raise
        except VendorkitError as exc:
            now = self._clock()
            if reason is None and stale is not None and not stale.is_expired(now):
                # Keep using the old token until it truly expires; try again after a pause.
                remaining = stale.remaining(now) or 0.0
                pause = min(REFRESH_RETRY_MAX_SECONDS, remaining * REFRESH_RETRY_FRACTION)
                self._retry_refresh_at = now + pause
                logger.warning(
                    "vendorkit: %s token refresh failed (%s); using the current token, "
                    "valid %.1f s more, and retrying in %.1f s",
                    self.strategy.vendor, exc, remaining, pause,
                )
                return stale
            raise
        self._adopt(token)
        return token

    def _fresh(self, stored: Token, stale: Token | None) -> bool:
        if stale is not None and same_token(stored, stale):
            return False
        _, mandatory_at = self._windows.deadlines(stored)
        return self._clock() < mandatory_at

    def _refreshable(self, token: Token) -> bool:
        return self.strategy.can_refresh and token.can_refresh(self._clock())

    async def _refresh(self, transport: AuthTransport, token: Token) -> Token:
        try:
            new = await self.strategy.refresh(transport, token)
        except InvalidGrantError as exc:
            logger.info("vendorkit: %s refresh token refused (%s); logging in again",
                        self.strategy.vendor, exc)
            return await self._login(transport, reason="refresh refused")
        self._events.emit("refresh")
        logger.debug("vendorkit: %s token refreshed, expires in %s s",
                     self.strategy.vendor, _seconds(new, self._clock()))
        return new

    async def _login(self, transport: AuthTransport, *, reason: str) -> Token:
        token = await self.strategy.login(transport)
        self._events.emit("login", reason=reason)
        logger.debug("vendorkit: %s logged in (%s), token expires in %s s",
                     self.strategy.vendor, reason, _seconds(token, self._clock()))
        return token

    def _adopt(self, token: Token | None) -> None:
        self._token = token
        self._retry_refresh_at = 0.0
        if token is None:
            self._advisory_at = self._mandatory_at = -_INF
        else:
            self._advisory_at, self._mandatory_at = self._windows.deadlines(token)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _seconds(token: Token, now: float) -> str:
    remaining = token.remaining(now)
    return "never" if remaining is None else f"{remaining:.0f}"
