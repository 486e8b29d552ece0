"""``SessionManager``: one vendor connection's lifecycle, and the request pipeline.

The pipeline, outermost layer first; each is one method named for its one concern::

    request()                        build the Request; the call's span (tracing.py), if traced
     _send_handling_errors()         an error status -> a typed error
      _send_handling_auth()          a rejected token: invalidate it, log in once, replay
        _send_handling_retries()     the RetryPolicy decides after every failed attempt
          _send_rate_limited()       a permit from the credential's RateLimiter first
            _send_authenticated()    a concurrency slot, then the token, then one attempt;
                                     the answer teaches the RateLimiter
              _send_handling_redirects() follow 3xx only within the vendor's origin
                HTTPTransport.send() one HTTP exchange (transport.py)

``_send_rate_limited`` is left out when limiting is off (``rate_limit=False``, or a
``with_options(rate_limit=False)`` view's calls), and, attempt by attempt, while an
adaptive limiter is not engaged (never throttled: every permit would be granted at once).
A view's :class:`CallOptions` ride on the Request: ``_send_handling_retries`` takes its
RetryPolicy, the transport its timeout.
``stream()`` sends the same Request through the same layers, marked ``stream``: the
transport then leaves a 2xx body unread, so everything up to the answer's head (re-auth,
retries, redirects) is as for any call, and nothing after it is retried.

Logins, refreshes and logouts take a separate path through the same retry layer:
:class:`LoginTransport` -> ``_send_handling_retries`` -> ``_send_unauthenticated`` ->
``HTTPTransport.send``. That path has no concurrency slot (a login must never wait behind
the calls that wait for it), follows no redirect (a login body must never be re-sent to
another host) and has no token handling at all, so a login cannot recurse into the
token manager by construction.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp

from ._constants import USER_AGENT
from .auth import AuthStrategy
from .config import Limits, RefreshWindows, Timeouts
from .errors import APIError, ConfigurationError, RedirectError, TransportError, error_for_status
from .events import EventBus, EventHook, EventKind, Stats
from .network import SSLSetting
from .options import CallOptions
from .ratelimit import RateLimit, RateLimiter, build_limiter
from .redaction import Redactor, SecretFields
from .response import Response
from .retry import RetryPolicy, RetryState, parse_retry_after
from .stores.base import TokenStore, store_key
from .stores.memory import MemoryTokenStore
from .streaming import StreamingResponse
from .token import Token
from .token_manager import TokenManager
from .tracing import instrumentation_for
from .transport import HTTPTransport
from .urls import check_base_url, origin, path_param, same_origin

__all__ = ["LoginTransport", "Request", "SessionManager"]

logger = logging.getLogger("vendorkit")
_T = TypeVar("_T")

_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
#: Renewals of the token for one call, at most (see ``_send_handling_auth``).
_MAX_RENEWALS = 3

#: One attempt's outcome: the answer, and the token it carried (None: no token).
Exchange = tuple[Response, Token | None]


class Request:
    """One call as the pipeline carries it: built once, sent (and replayed) as is."""

    __slots__ = ("data", "form", "headers", "http_timeout", "idempotent", "json", "method",
                 "multipart", "options", "params", "rate_limited", "route", "stream", "url")

    def __init__(
        self,
        method: str,
        url: str,
        *,
        route: str,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: Any = None,
        form: Mapping[str, str] | None = None,
        multipart: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        options: CallOptions | None = None,
        stream: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        #: The path as declared, ids not filled in (``/v2/customers/organizations/{cid}``).
        self.route = route
        self.params = params
        self.json = json
        self.data = data
        self.form = form
        self.multipart = multipart
        self.headers = headers
        self.idempotent = idempotent
        #: A ``with_options()`` view's settings, or None: the session's own.
        self.options = options
        #: Leave a 2xx body unread, for a :class:`StreamingResponse`.
        self.stream = stream
        self.http_timeout = None if options is None else (
            options.stream_timeout if stream else options.call_timeout
        )
        #: False for a ``with_options(rate_limit=False)`` view's calls.
        self.rate_limited = options is None or options.rate_limit is not False

    def target(self) -> str:
        """The method, URL and query: what a lasting refusal is remembered by."""
        if not self.params:
            return f"{self.method} {self.url}"
        return f"{self.method} {self.url} {self.params!r}"

    def body(self) -> Any:
        """The body to hand aiohttp, built anew for each attempt (a FormData is single-use)."""
        if self.form is not None:
            return SecretFields(self.form)  # a repr that hides a login's credentials
        if self.multipart is not None:
            return aiohttp.FormData(dict(self.multipart), default_to_multipart=True)
        return self.data


def _fill(path: str, path_params: Mapping[str, str]) -> str:
    """``path``'s ``{name}``s filled, each value percent-encoded as one path segment."""
    return path.format_map({name: path_param(name, value) for name, value in path_params.items()})


@functools.lru_cache(maxsize=1024)
def _fill_cached(path: str, items: tuple[tuple[str, str], ...]) -> str:
    return _fill(path, dict(items))


def _filled(path: str, path_params: Mapping[str, str]) -> str:
    """:func:`_fill`, cached when every value is a string (the quoting cost more than the
    rest of ``request()``); errors are raised each time, as they are never cached."""
    items = tuple(path_params.items())
    for name, value in items:
        if name.__class__ is not str or value.__class__ is not str:
            return _fill(path, path_params)
    return _fill_cached(path, items)


class _Slots:
    """API calls in flight at once in one event loop, first come first served.

    asyncio.Semaphore's rules at a constant cost: a free slot is taken without a coroutine
    or a future, and a released slot passes straight to the longest waiter (the
    Semaphore scanned its waiters on every release and cost a call ~6% of its CPU at
    concurrency 100, benchmarks/README.md).
    """

    __slots__ = ("_free", "_waiters", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self._free = limit
        #: Callers waiting for a slot, oldest first; a cancelled one is skipped on release.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take(self) -> asyncio.Future[None] | None:
        """None: a slot is taken. Else a future to await, done once a slot is this caller's
        (there are waiters only while no slot is free: release() hands slots to them)."""
        if self._free > 0:
            self._free -= 1
            return None
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        return waiter

    def release(self) -> None:
        """Give a slot back: to the longest waiter still waiting, else to the pool."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # not cancelled
                waiter.set_result(None)
                return
        self._free += 1

    def abandon(self, waiter: asyncio.Future[None]) -> None:
        """The caller of ``waiter`` was cancelled: a slot that came meanwhile is passed on."""
        if waiter.done() and not waiter.cancelled():
            self.release()


class LoginTransport:
    """The ``AuthTransport`` a strategy logs in, refreshes and logs out with: the retry
    layer over an unauthenticated attempt (see the module docstring)."""

    __slots__ = ("_manager",)

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        multipart: Mapping[str, str] | None = None,
        token: Token | None = None,
    ) -> Response:
        manager = self._manager
        headers = None
        if token is not None:
            headers = {manager.auth.header_name: manager.auth.header_value(token)}
        request = Request(
            method, manager._url(url, endpoint=True), route=urlsplit(url).path or "/",
            json=json, form=form, multipart=multipart, headers=headers,
            idempotent=True,  # logins and logouts are safe to repeat
        )
        response, _ = await manager._send_handling_retries(
            request, manager._send_unauthenticated
        )
        return response


class SessionManager:
    """One vendor connection: an HTTP transport, an auth strategy, a token store, retries.

    Use it as ``async with``; ``aclose()`` revokes the token (best effort, bounded by
    ``logout_timeout``) unless the token store is shared with other processes, then closes
    what it owns. An ``http_session`` (aiohttp ``ClientSession``) passed in is used but
    never closed; the default headers are sent on every request all the same.

    ``proxy`` sends every request through that HTTP proxy; by default (``trust_env``) the
    ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` variables, read when the manager is
    built, decide, as with httpx and requests (network.py). ``ssl`` is True (the system's
    CAs, or ``SSL_CERT_FILE`` when it names a file and ``trust_env``), the path of a CA
    bundle, an ``SSLContext``, or False (no certificate checks).
    """

    def __init__(
        self,
        base_url: str,
        auth: AuthStrategy,
        *,
        token_store: TokenStore | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = Timeouts().total,
        connect_timeout: float | None = Timeouts().connect,
        logout_timeout: float = Timeouts().logout,
        headers: Mapping[str, str] | None = None,
        max_connections: int = Limits().max_connections,
        max_concurrency: int | None = None,
        max_body_size: int = Limits().max_body_size,
        http_session: aiohttp.ClientSession | None = None,
        ssl: SSLSetting = True,
        proxy: str | None = None,
        trust_env: bool = True,
        allow_insecure_http: bool = False,
        event_hooks: Mapping[str, Iterable[EventHook]] | None = None,
        refresh_windows: RefreshWindows | None = None,
        rate_limit: RateLimit | bool | None = None,
        tracing: bool = True,
    ) -> None:
        self.base_url = check_base_url(
            "base_url", base_url, allow_insecure_http=allow_insecure_http
        )
        self._origin = origin(self.base_url)
        self._allow_insecure_http = allow_insecure_http
        if not isinstance(auth, AuthStrategy):
            raise ConfigurationError("auth must be an AuthStrategy")
        self.auth = auth
        self.timeouts = Timeouts(
            timeout=timeout, connect_timeout=connect_timeout, logout_timeout=logout_timeout
        )
        self.limits = Limits(max_connections, max_concurrency, max_body_size)
        self.retry = retry or RetryPolicy()
        self.store: TokenStore = token_store if token_store is not None else MemoryTokenStore()
        self.events = EventBus(auth.vendor, event_hooks)
        key = store_key(auth.vendor, self.base_url, auth.identity)
        self.tokens = TokenManager(auth, self.store, key, self.events, windows=refresh_windows)
        #: Permits per credential (None: ``rate_limit=False``); see ratelimit.py.
        self.limiter: RateLimiter | None = build_limiter(rate_limit, self.store, key)
        self.transport = HTTPTransport(
            timeouts=self.timeouts, limits=self.limits, ssl=ssl, proxy=proxy,
            trust_env=trust_env, http_session=http_session,
            headers={**_DEFAULT_HEADERS, **(headers or {})},  # sent with every request
        )
        #: OpenTelemetry spans and metrics (tracing.py); None: off or not installed.
        self._instrumentation = instrumentation_for(auth.vendor, self.base_url, tracing)
        self._login_transport = LoginTransport(self)
        self._slots: _Slots | None = None
        self._rejection_statuses = auth.rejection_statuses
        self._renewable = auth.static_token() is None

    def __repr__(self) -> str:
        return f"<SessionManager {self.auth.vendor} {self.base_url}>"

    # --- public API ---------------------------------------------------------------------

    @property
    def token(self) -> Token | None:
        """The token held now, or None (no I/O)."""
        return self.tokens.token

    @property
    def stats(self) -> Stats:
        """Counters: requests, errors, retries, logins, refreshes, reauths, logouts."""
        return self.events.stats

    def add_event_hook(self, kind: EventKind, hook: EventHook) -> None:
        self.events.add(kind, hook)

    async def login(self) -> Token:
        """Log in now, replacing any token held (single flight with concurrent logins)."""
        return await self._operation(lambda: self.tokens.login(self._login_transport))

    async def get_token(self) -> Token:
        """A valid token, logging in or refreshing only if needed."""
        return await self.tokens.get(self._login_transport)

    async def logout(self) -> bool:
        """Revoke the token at the server where the vendor supports it, and remove it from
        the token store, for every process sharing it. Returns whether a revocation was sent."""
        return await self._operation(lambda: self.tokens.logout(self._login_transport))

    def _operation(self, run: Callable[[], Awaitable[_T]]) -> Awaitable[_T]:
        """``run()``, outside any call, traced and counted by OpenTelemetry when active."""
        instrumentation = self._instrumentation
        if instrumentation is not None and instrumentation.active():
            return instrumentation.operation(run)
        return run()

    async def request(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authenticate: bool = True,
        options: CallOptions | None = None,
    ) -> Response:
        """Send one request through the pipeline; a :class:`Response` or a typed error.

        ``path`` may be a template (``/users/{uid}``) filled from ``path_params``, each value
        percent-encoded as one path segment; events and logs name the template, not the ids.
        ``idempotent`` overrides the method's default for retries (POST and PATCH are
        not retried once they may have reached the server, unless it is True). ``options``:
        a ``with_options()`` view's timeout, retry policy and rate limiting.
        """
        method = method.upper()
        url = self._url(path if path_params is None else _filled(path, path_params))
        request = Request(method, url, route=path, params=params, json=json, data=data,
                          headers=headers, idempotent=idempotent, options=options)
        return await self._send(request, authenticate)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        options: CallOptions | None = None,
    ) -> AsyncIterator[StreamingResponse]:
        """``async with manager.stream("GET", path) as answer:`` read ``answer.iter_bytes()``.

        Like :meth:`request` up to the answer's head (auth, re-auth, retries, redirects, a
        typed error for an error status); the body is then read as it arrives, never held
        whole nor retried, and the connection is released when the block exits. The
        timeout bounds the wait for the head, then each read, not the whole download.
        """
        method = method.upper()
        url = self._url(path if path_params is None else _filled(path, path_params))
        request = Request(method, url, route=path, params=params, json=json, data=data,
                          headers=headers, idempotent=idempotent, options=options, stream=True)
        answer = StreamingResponse(await self._send(request, True))
        try:
            yield answer
        finally:
            await answer.aclose()

    def _send(self, request: Request, authenticate: bool) -> Awaitable[Response]:
        """The pipeline below ``request()`` and ``stream()``, in the call's span if traced
        (a plain function: the hot path awaits no extra coroutine)."""
        instrumentation = self._instrumentation
        if instrumentation is not None and instrumentation.active():
            return instrumentation.call(
                request.method, request.route,
                lambda: self._send_handling_errors(request, authenticate),
            )
        return self._send_handling_errors(request, authenticate)

    async def _send_handling_errors(self, request: Request, authenticate: bool) -> Response:
        """The pipeline below ``request()``: an error status becomes a typed error."""
        if authenticate:
            response = await self._send_handling_auth(request)
        else:
            response, _ = await self._send_handling_retries(
                request, self._send_unauthenticated
            )
        if response.status >= 400:
            self.events.emit("error", method=request.method, route=request.route,
                             status=response.status, cause=str(response.status))
            raise self._error(response)
        return response

    async def aclose(self) -> None:
        """Revoke the token (unless the store is shared) and close what this manager owns.

        Never raises for a failed logout: it is logged. The manager may be used again
        afterwards; it reopens lazily.
        """
        try:
            if self.store.shared:
                self.tokens.forget()  # the fleet keeps the token; logout() revokes it for all
            elif self.tokens.token is not None:
                await asyncio.wait_for(
                    self.logout(), timeout=self.timeouts.logout
                )
        except Exception as exc:  # includes the builtin TimeoutError of wait_for
            logger.warning("vendorkit: %s logout on close failed: %s", self.auth.vendor,
                           self._redactor()(str(exc)) or type(exc).__name__)
        finally:
            self._slots = None
            await self.transport.aclose()

    async def __aenter__(self) -> SessionManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the pipeline, outermost layer first ----------------------------------------------

    async def _send_handling_auth(self, request: Request) -> Response:
        """A token the server rejects is invalidated, renewed once and the call replayed;
        renewed again (up to ``_MAX_RENEWALS`` in all) when the replay carried a token
        obtained before the rejection (a refresh or another caller's login crossing a mass
        revocation) or one replaced since. A rejection that a new token cannot cure is
        returned as it is (``TokenManager.judge``)."""
        send, tokens = self._send_api, self.tokens
        response, sent = await self._send_handling_retries(request, send)
        held = None
        for _ in range(_MAX_RENEWALS):
            if (sent is None or response.status not in self._rejection_statuses
                    or not self._renewable):
                return response
            # Refused again after a renewal: worth another only with a token held before
            # the last rejection (a revocation, an expiry the answer did not state), or one
            # a renewal has replaced since (a refresh that revokes the token it replaces,
            # while the replay waited for its permit). A server refusing fresh tokens gets
            # one renewal per call, not a loop.
            if held is not None and not (tokens.obtained_before(held, sent)
                                         or tokens.superseded(sent)):
                tokens.refused_lastingly(request.target(), response.status)
                return response
            if tokens.judge(sent, status=response.status, target=request.target()) == "final":
                return response
            held = tokens.held()
            await self._reauth(request, response.status, sent)
            response, sent = await self._send_handling_retries(request, send)
        return response

    async def _reauth(self, request: Request, status: int, sent: Token) -> None:
        self.events.emit("reauth", method=request.method, route=request.route, status=status)
        await self.tokens.reject(self._login_transport, sent, status=status)

    async def _send_handling_retries(
        self, request: Request, send_once: Callable[[Request, RetryState], Awaitable[Exchange]]
    ) -> Exchange:
        """Attempts until an answer the ``RetryPolicy`` does not retry; returns it (error
        statuses included). Raises only a transport error that retries could not cure."""
        options = request.options
        policy = self.retry if options is None or options.retry is None else options.retry
        retry = policy.start(request.method, request.idempotent)
        while True:
            try:
                exchange = await send_once(request, retry)
            except TransportError as error:
                failed = retry.attempt
                delay = retry.after_error(error)
                if delay is None:
                    self.events.emit("error", method=request.method, route=request.route,
                                     attempt=failed, cause=type(error).__name__)
                    raise
                self.events.emit("retry", method=request.method, route=request.route,
                                 attempt=failed, delay=delay, cause=type(error).__name__)
                await retry.sleep(delay)
                continue
            status = exchange[0].status
            if status >= 400:
                failed = retry.attempt
                delay = retry.after_status(status, exchange[0].headers)
                if delay is not None and status == 429 and self._limiter_paused():
                    delay = 0.0  # the limiter holds the next attempt and spreads the resume
                if delay is not None:
                    self.events.emit("retry", method=request.method, route=request.route,
                                     status=status, attempt=failed, delay=delay,
                                     cause=str(status))
                    await retry.sleep(delay)
                    continue
            return exchange

    def _send_api(self, request: Request, retry: RetryState) -> Awaitable[Exchange]:
        """One attempt of an API call: through the rate-limit layer while the limiter is
        engaged (a plain function: the attempt awaits no extra coroutine)."""
        limiter = self.limiter
        if limiter is not None and limiter.engaged and request.rate_limited:
            return self._send_rate_limited(request, retry)
        # No limiter, or an adaptive one never throttled (acquire() would return 0.0 at
        # once): skip the layer; _send_authenticated still teaches it every answer.
        return self._send_authenticated(request, retry)

    async def _send_rate_limited(self, request: Request, retry: RetryState) -> Exchange:
        """A permit for the credential before the attempt (only while the limiter is
        engaged: with the adaptive default, once the server has throttled)."""
        limiter = self.limiter
        assert limiter is not None  # this layer is in the pipeline only with a limiter
        if self.tokens.cached() is None:
            # A permit is for sending now: a call that must wait for a login takes it after
            # the login, or all the permits due meanwhile would go at once.
            await self.tokens.get(self._login_transport)
        waited = await limiter.acquire()
        if waited > 0:
            self.events.emit("wait", method=request.method, route=request.route,
                             attempt=retry.attempt, delay=waited)
        return await self._send_authenticated(request, retry)

    def _limiter_paused(self) -> bool:
        return self.limiter is not None and self.limiter.paused_for > 0

    async def _send_authenticated(self, request: Request, retry: RetryState) -> Exchange:
        """One attempt of an API call: a concurrency slot first, then the token, so no call
        holds a token while it queues for a connection (it could expire meanwhile). Every
        answer then teaches the rate limiter (here, not in its layer: see ``_send_api``)."""
        tokens, auth = self.tokens, self.auth
        loop = asyncio.get_running_loop()  # once a call: on 3.11 it costs a getpid()
        slots = self._slots
        if slots is None or slots.loop is not loop:
            slots = self._slots = _Slots(loop, self.limits.concurrency or sys.maxsize)
        waiter = slots.take()
        if waiter is not None:
            try:
                await waiter
            except BaseException:
                slots.abandon(waiter)
                raise
        try:
            sent = tokens.cached() or await tokens.get(self._login_transport)
            # The transport adds the session's headers (User-Agent, Accept...).
            headers = {**request.headers, auth.header_name: auth.header_value(sent)} \
                if request.headers else {auth.header_name: auth.header_value(sent)}
            response = await self._send_handling_redirects(request, headers, retry.attempt,
                                                           loop)
        finally:
            slots.release()
        status = response.status
        if status < 500 and status != 429 and status not in self._rejection_statuses:
            tokens.accepted(sent)
        limiter = self.limiter
        if limiter is not None and request.rate_limited:
            limiter.on_response(status, response.headers)
            if status == 429:
                self.events.emit("rate_limited", method=request.method, route=request.route,
                                 status=429, attempt=retry.attempt)
        return response, sent

    async def _send_handling_redirects(
        self, request: Request, headers: Mapping[str, str], attempt: int,
        loop: asyncio.AbstractEventLoop,
    ) -> Response:
        """One attempt, following redirects only within the vendor's origin (scheme, host
        and port: never to http, never to another host, with the token or anything else)."""
        method, url, body = request.method, request.url, request.body()
        params = request.params
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self.transport.send(
                method, url, params=params, json=request.json, data=body, headers=headers,
                http_timeout=request.http_timeout, stream=request.stream, loop=loop,
            )
            self._count_request(request, response, attempt)
            if response.status not in _REDIRECTS or "Location" not in response.headers:
                return response
            target = urljoin(url, response.headers["Location"])
            if not same_origin(target, self._origin):
                raise RedirectError.refused(response, origin(url), target)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None  # what every browser and HTTP client does
            url, params = target, None
        raise RedirectError.refused(response, origin(url), url, loop=True)

    async def _send_unauthenticated(self, request: Request, retry: RetryState) -> Exchange:
        """One attempt of a login, refresh or logout: no slot, no token handling, and a
        redirect is refused, never followed (it would re-send the credentials)."""
        response = await self.transport.send(
            request.method, request.url, params=request.params, json=request.json,
            data=request.body(), headers=request.headers,
        )
        self._count_request(request, response, retry.attempt)
        if response.status in _REDIRECTS:
            target = urljoin(request.url, response.headers.get("Location", ""))
            raise RedirectError.refused(response, origin(request.url), target)
        return response, None

    # --- helpers ------------------------------------------------------------------------

    def _count_request(self, request: Request, response: Response, attempt: int) -> None:
        events = self.events
        if events.wants("request"):
            events.emit("request", method=request.method, route=request.route,
                        status=response.status, attempt=attempt, elapsed=response.elapsed)
        else:
            events.count("request")

    def _url(self, path: str, *, endpoint: bool = False) -> str:
        """An absolute URL for ``path``. API calls stay below the base URL's origin (an
        absolute URL elsewhere would carry the token away); a login strategy's configured
        endpoints may be elsewhere, but only over https (loopback aside)."""
        if "://" not in path:
            return self.base_url + (path if path.startswith("/") else "/" + path)
        if endpoint:
            check_base_url("endpoint", path, allow_insecure_http=self._allow_insecure_http)
            return path
        if not path.startswith(self._origin + "/"):
            raise ConfigurationError(
                f"request() takes a path below {self.base_url}; an absolute URL elsewhere "
                "would send this vendor's token to another host"
            )
        return path

    def _redactor(self) -> Redactor:
        token = self.tokens.token
        secrets = (*self.auth.secrets(), *(
            (token.access_token, token.refresh_token or "") if token else ()
        ))
        return Redactor(secrets)

    def _error(self, response: Response) -> APIError:
        redact = self._redactor()
        reason = response.reason(redact=redact)
        return error_for_status(
            response.status,
            method=response.method,
            url=urlsplit(response.url).path,
            request_id=response.request_id,
            body_excerpt=response.excerpt(redact=redact),
            headers=response.headers,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            detail=reason,
        )
