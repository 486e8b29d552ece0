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
- A refresh the server refuses (400 or 401, whatever the body: ``invalid_grant``, Django
  REST's ``token_not_valid``, ``invalid_request``) falls back to one full login. A refresh
  that fails otherwise while the old token is still valid keeps the old token in use
  until it truly expires, retried after a pause.
- A token the server rejects is dropped only if it is still the current one, so a
  late 401 never discards a newer token.
- A rejection a new token does not cure is final (no login): one made with a token that
  was obtained because of an earlier rejection of the same status, is still the one held,
  has not been accepted since and is far from its expiry. So a lasting 403 (a resource
  this key may not read) costs at most one extra login.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import attrs

from ._constants import REFRESH_RETRY_FRACTION, REFRESH_RETRY_MAX_SECONDS
from .auth import AuthStrategy, AuthTransport
from .config import RefreshWindows
from .errors import APIError, VendorkitError
from .events import EventBus, EventKind
from .stores.base import TokenStore, same_token
from .token import Token

__all__ = ["HeldTokens", "TokenManager"]

logger = logging.getLogger("vendorkit")

_INF = float("inf")


#: Statuses of a refused refresh that a full login may cure.
_REFRESH_REFUSALS = frozenset({400, 401})

Verdict = Literal["final", "renew"]

#: A target (method, URL, query) refused again right after a renewal that its own refusal
#: caused is refused for what it asks, not for the token (a customer this key may not
#: read, among readable ones): for this long, its refusals with that status, with a token
#: held and far from its expiry, are final. Remembered for at most this many targets.
LASTING_REFUSAL_TTL = 300.0
LASTING_REFUSALS_MAX = 1024


@attrs.frozen(slots=True)
class HeldTokens:
    """What a manager held at one moment: its token, and the login or refresh then running
    (whose result counts as held too). See :meth:`TokenManager.obtained_before`."""

    token: Token | None
    flight: asyncio.Task[Token] | None


class TokenManager:
    """Owns the current token of one credential: login, refresh, re-auth, logout."""

    def __init__(
        self,
        auth: AuthStrategy,
        store: TokenStore,
        key: str,
        events: EventBus,
        *,
        windows: RefreshWindows | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth = auth
        self.store = store
        self.key = key
        self._events = events
        self._windows = windows or RefreshWindows()
        self._clock = clock
        self._static = auth.static_token()
        self._token: Token | None = self._static
        self._advisory_at = _INF
        self._mandatory_at = _INF
        self._retry_refresh_at = 0.0
        self._flight: asyncio.Task[Token] | None = None
        self._flight_loop: asyncio.AbstractEventLoop | None = None
        #: Why the latest flight was started ("rejected", "explicit", None: a renewal).
        self._flight_reason: str | None = None
        #: The token obtained because the server rejected its predecessor with this status,
        #: until the server accepts it once.
        self._cure: tuple[Token, int] | None = None
        #: (target, status) refused lastingly -> until when (see ``LASTING_REFUSAL_TTL``).
        self._lasting: dict[tuple[str, int], float] = {}

    @property
    def token(self) -> Token | None:
        """The token this process holds now, without any I/O."""
        return self._token

    def cached(self) -> Token | None:
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

    def accepted(self, token: Token) -> None:
        """The server answered a call made with ``token`` without rejecting it."""
        if self._cure is not None and token is self._token:
            self._cure = None

    def held(self) -> HeldTokens:
        """What is held now, to ask :meth:`obtained_before` about a later replay."""
        return HeldTokens(self._token, self._running_flight())

    def obtained_before(self, held: HeldTokens, candidate: Token) -> bool:
        """Whether ``candidate`` is ``held``'s token or the one its running flight returned.

        A replay rejected with such a token says nothing against a fresh login: what made
        the server refuse the first token (a mass revocation) may have refused it too.
        """
        if self._static is not None:
            return False
        if same_token(held.token, candidate):
            return True
        flight = held.flight
        if flight is None or not flight.done() or flight.cancelled():
            return False
        return flight.exception() is None and same_token(flight.result(), candidate)

    def judge(self, sent: Token, *, status: int, target: str | None = None) -> Verdict:
        """What to do about the server's rejection of ``sent`` with ``status`` (of a call
        to ``target``): ``"final"`` when a new token cannot cure it, else ``"renew"``: log
        in again (:meth:`reject`) and replay.

        Final only for ``sent`` still held, far from its expiry, with no renewal in flight
        (a renewal may be what killed it: a refresh that revokes the access token it
        replaces, as Django OAuth Toolkit's and Wokelo's do, before its answer arrives),
        and when either ``sent`` was obtained because of an earlier rejection with this
        status and not accepted since (it may have been revoked since), or ``target`` has
        lately proved to be refused whatever the token (:meth:`refused_lastingly`)."""
        if self._static is not None:
            return "final"
        if (not same_token(self._token, sent) or self._clock() >= self._mandatory_at
                or self._running_flight() is not None):
            return "renew"
        cure = self._cure
        if cure is not None and cure[1] == status and same_token(cure[0], sent):
            return "final"
        if target is not None and self._lasting:
            until = self._lasting.get((target, status))
            if until is not None:
                if self._clock() < until:
                    return "final"
                del self._lasting[target, status]
        return "renew"

    def refused_lastingly(self, target: str, status: int) -> None:
        """``target`` was refused with ``status`` again right after the renewal its refusal
        caused: for ``LASTING_REFUSAL_TTL`` s, its refusals with that status are final
        (:meth:`judge`), so a forbidden resource among readable ones costs no login a call."""
        lasting = self._lasting
        lasting.pop((target, status), None)
        while len(lasting) >= LASTING_REFUSALS_MAX:
            del lasting[next(iter(lasting))]  # the oldest
        lasting[target, status] = self._clock() + LASTING_REFUSAL_TTL

    def superseded(self, sent: Token) -> bool:
        """Whether ``sent`` is no longer the token held, or a renewal is in flight: its
        rejection may be the renewal's doing (a refresh that revokes the access token it
        replaces), not a server refusing fresh tokens."""
        return not same_token(self._token, sent) or self._running_flight() is not None

    def _running_flight(self) -> asyncio.Task[Token] | None:
        """The login or refresh running in this event loop, if any."""
        flight = self._flight
        if flight is not None and self._flight_loop is _running_loop() and not flight.done():
            return flight
        return None

    async def reject(self, transport: AuthTransport, sent: Token, *, status: int) -> Token:
        """The server refused ``sent`` with ``status`` and :meth:`judge` said ``"renew"``:
        drop it unless already replaced, and log in once (single flight)."""
        current = self._token
        if current is not None and not same_token(current, sent):
            return current  # another caller already replaced it
        if current is not None:
            self._adopt(None)
            await self.store.delete(self.key, only_if=sent)
        flight = self._start_flight(transport, stale=sent, reason="rejected")
        # Only a login started for a rejection gives a cure (judge()). A refresh or login
        # already running, which this one joins, may have been answered with a token issued
        # before whatever made the server refuse ``sent`` (a mass revocation): its refusal
        # proves nothing against fresh tokens, and a final verdict would lose the call.
        for_rejection = self._flight_reason == "rejected"
        token = await asyncio.shield(flight)
        if for_rejection and (self._cure is None or not same_token(self._cure[0], token)):
            self._cure = (token, status)
        return token

    async def login(self, transport: AuthTransport) -> Token:
        """Log in now (single flight with any login already running), ignoring a cached token."""
        if self._static is not None:
            return self._static
        return await asyncio.shield(
            self._start_flight(transport, stale=self._token, reason="explicit")
        )

    async def logout(self, transport: AuthTransport) -> bool:
        """Forget the token here and in the store, and revoke it at the server where the
        vendor supports that. Returns whether a revocation was sent."""
        if self._static is not None:
            return False
        await self._settle()  # a renewal landing after the logout would outlive it
        token = self._token or await self.store.get(self.key)
        self._adopt(None)
        if token is None:
            return False
        await self.store.delete(self.key, only_if=token)
        started = time.perf_counter()
        try:
            revoked = await self.auth.logout(transport, token)
        except VendorkitError as exc:
            self._failed("logout", started, exc)
            raise
        if revoked:
            self._events.emit("logout", outcome="ok", elapsed=time.perf_counter() - started)
        return revoked

    async def _settle(self) -> None:
        """Wait for the login or refresh running in this loop, if any, whatever its outcome
        (a failure is for its own callers to see)."""
        flight = self._running_flight()
        if flight is not None:
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
        flight = self._running_flight()
        if flight is not None:
            return flight
        loop = asyncio.get_running_loop()
        flight = loop.create_task(self._obtain(transport, stale, reason))
        flight.add_done_callback(self._flight_done)
        self._flight, self._flight_loop, self._flight_reason = flight, loop, reason
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
                if stored is not None and self._usable(stored, stale):
                    self._adopt(stored)
                    return stored
            async with self.store.lock(self.key):
                stored = await self.store.get(self.key)
                if stored is not None and self._usable(stored, stale):
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
                    self.auth.vendor, exc, remaining, pause,
                )
                return stale
            raise
        self._adopt(token)
        return token

    def _usable(self, stored: Token, stale: Token | None) -> bool:
        """Whether a token found in the store can be used instead of renewing: not the
        stale one, and outside the mandatory window."""
        if stale is not None and same_token(stored, stale):
            return False
        _, mandatory_at = self._windows.deadlines(stored)
        return self._clock() < mandatory_at

    def _refreshable(self, token: Token) -> bool:
        return self.auth.supports_refresh and token.can_refresh(self._clock())

    async def _refresh(self, transport: AuthTransport, token: Token) -> Token:
        started = time.perf_counter()
        try:
            new = await self.auth.refresh(transport, token)
        except APIError as exc:
            self._failed("refresh", started, exc)
            if exc.status not in _REFRESH_REFUSALS:
                raise
            logger.info("vendorkit: %s refresh token refused (HTTP %d); logging in again",
                        self.auth.vendor, exc.status)
            return await self._login(transport, reason="refresh refused")
        except VendorkitError as exc:
            self._failed("refresh", started, exc)
            raise
        self._events.emit("refresh", outcome="ok", elapsed=time.perf_counter() - started,
                          expires_in=new.remaining(self._clock()))
        return new

    async def _login(self, transport: AuthTransport, *, reason: str) -> Token:
        started = time.perf_counter()
        try:
            token = await self.auth.login(transport)
        except VendorkitError as exc:
            self._failed("login", started, exc, reason=reason)
            raise
        self._events.emit("login", reason=reason, outcome="ok",
                          elapsed=time.perf_counter() - started,
                          expires_in=token.remaining(self._clock()))
        return token

    def _failed(self, kind: EventKind, started: float, exc: Exception, **fields: Any) -> None:
        """A login, refresh or logout that failed: an event (not counted in Stats) for
        traces and logs."""
        self._events.emit(kind, outcome="error", cause=type(exc).__name__,
                          elapsed=time.perf_counter() - started, **fields)

    def _adopt(self, token: Token | None) -> None:
        self._token = token
        self._retry_refresh_at = 0.0
        # A token obtained because of a rejection is judged by it only while it is the one
        # held: once renewed (a refresh may revoke it), its rejections are the renewal's.
        self._cure = None
        if token is None:
            self._advisory_at = self._mandatory_at = -_INF
        else:
            self._advisory_at, self._mandatory_at = self._windows.deadlines(token)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
