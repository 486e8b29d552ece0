"""``SessionManager``: one vendor connection's lifecycle and the one request pipeline.

``request()`` -> token from the ``TokenManager`` -> aiohttp send -> retry decision from
the ``RetryPolicy`` -> on a rejected token: invalidate it, re-auth once, replay once
(twice if the replay's token was obtained before the rejection) -> typed error or
``Response``.

The aiohttp ``ClientSession`` and the concurrency semaphore belong to the event loop that
first needs them and are created lazily inside it, so one manager can serve two
``asyncio.run()`` calls in turn.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import ipaddress
import logging
import ssl as _ssl
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ._constants import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_LOGOUT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TIMEOUT,
    USER_AGENT,
)
from .auth import AuthStrategy
from .errors import (
    APIError,
    ConfigurationError,
    ConnectError,
    TimeoutError,
    TransportError,
    error_for_status,
)
from .events import EventBus, EventHook, EventKind, Stats
from .response import Response
from .retry import RetryPolicy, parse_retry_after
from .stores.base import TokenStore, store_key
from .stores.memory import MemoryTokenStore
from .token import Token
from .tokens import RefreshWindows, TokenManager

__all__ = ["SessionManager", "check_base_url"]

logger = logging.getLogger("vendorkit")

_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_NO_LIMIT = contextlib.nullcontext()
_URL_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=_URL_CACHE_SIZE)
def _parsed_url(url: str, query: tuple[tuple[str, str], ...]) -> URL:
    """``url`` with ``query`` appended, parsed and encoded once: aiohttp would redo both on
    every call, which cost more than the rest of the pipeline (benchmarks/README.md)."""
    return URL(url).extend_query(dict(query)) if query else URL(url)


def _request_url(
    url: str, params: Mapping[str, str | int | float] | None
) -> tuple[URL | str, Mapping[str, str | int | float] | None]:
    """What to hand aiohttp: the cached parsed URL when the query is all strings (the
    common case; 1 and 1.0 would share a cache key), else ``url`` and ``params`` as given."""
    try:
        if not params:
            return _parsed_url(url, ()), None
        query = tuple(params.items())
        if all(type(k) is str and type(v) is str for k, v in query):
            return _parsed_url(url, query), None
    except ValueError:  # not a URL yarl accepts: let aiohttp raise its usual error
        pass
    return url, params


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(name: str, url: str, *, allow_insecure_http: bool = False) -> str:
    """Validate a base URL argument: a scheme and host, and HTTPS unless the host is loopback.

    Plain HTTP to any other host would send credentials across the network in clear, so
    it needs ``allow_insecure_http=True``.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{name} is required")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{name} must be an absolute http(s) URL such as https://host, got {url!r}"
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{name} uses plain http:// to a non-loopback host; credentials would cross the "
            "network in clear. Use https://, or pass allow_insecure_http=True"
        )
    return url.strip().rstrip("/")


def _check_timeout(name: str, value: float | None) -> float | None:
    if value is not None and (not isinstance(value, int | float) or not value > 0):  # NaN too
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return value


async def _close_with_loop(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Closes ``session`` when its event loop shuts down (``asyncio.run`` finalises async
    generators before closing the loop), so a manager never leaks a session it created,
    even when the caller forgot ``aclose()``."""
    try:
        yield
    finally:
        if not session.closed:
            await session.close()


class _LoopResources:
    """What one event loop needs: the aiohttp session, the semaphore, and their guardian."""

    __slots__ = ("guardian", "loop", "semaphore", "session")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: aiohttp.ClientSession,
        semaphore: asyncio.Semaphore | None,
        guardian: AsyncGenerator[None, None] | None,
    ) -> None:
        self.loop = loop
        self.session = session
        self.semaphore = semaphore
        self.guardian = guardian


class _Transport:
    """The ``AuthTransport`` a strategy uses: the same pipeline, without a managed token."""

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
        # Logins and logouts are safe to repeat: retry them like any idempotent call.
        response, _ = await manager._exchange(
            method,
            manager._url(url, allow_other_origin=True),
            json=json,
            form=form,
            multipart=multipart,
            headers=headers,
            idempotent=True,
            tokens=None,
        )
        return response


class SessionManager:
    """One vendor connection: an aiohttp session, an auth strategy, a token store, retries.

    Use it as ``async with``; ``aclose()`` revokes the token (best effort, bounded by
    ``logout_timeout``) unless the token store is shared with other processes, then closes
    what it owns. A ``session`` passed in is used but never closed.
    """

    def __init__(
        self,
        base_url: str,
        auth: AuthStrategy,
        *,
        token_store: TokenStore | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        logout_timeout: float = DEFAULT_LOGOUT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_concurrency: int | None = None,
        session: aiohttp.ClientSession | None = None,
        ssl: _ssl.SSLContext | bool = True,
        allow_insecure_http: bool = False,
        event_hooks: Mapping[str, Iterable[EventHook]] | None = None,
        refresh_windows: RefreshWindows | None = None,
    ) -> None:
        self.base_url = check_base_url(
            "base_url", base_url, allow_insecure_http=allow_insecure_http
        )
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base_url))
        if not isinstance(auth, AuthStrategy):
            raise ConfigurationError("auth must be an AuthStrategy")
        self.auth = auth
        self._timeout = aiohttp.ClientTimeout(
            total=_check_timeout("timeout", timeout),
            connect=_check_timeout("connect_timeout", connect_timeout),
        )
        self._logout_timeout = _check_timeout("logout_timeout", logout_timeout) or 0.0
        if not isinstance(max_connections, int) or max_connections < 0:
            raise ConfigurationError("max_connections must be a whole number >= 0 (0: no limit)")
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ConfigurationError(
                "max_concurrency must be a whole number >= 1, or None (the pool size)"
            )
        self._max_connections = max_connections
        # Default: one call in flight per pooled connection but one (0: no limit), so a
        # login or logout always finds a connection free instead of queueing behind calls.
        if max_concurrency is None:
            max_concurrency = max_connections - 1 if max_connections > 1 else max_connections
        self._max_concurrency = max_concurrency
        self._headers = {**_DEFAULT_HEADERS, **(headers or {})}
        self._ssl = ssl
        self._external_session = session
        self.retry = retry or RetryPolicy()
        self.store: TokenStore = token_store if token_store is not None else MemoryTokenStore()
        self.events = EventBus(auth.vendor, event_hooks)
        self.tokens = TokenManager(
            auth,
            self.store,
            store_key(auth.vendor, self.base_url, auth.identity),
            self.events,
            windows=refresh_windows,
        )
        self._transport = _Transport(self)
        self._loop_resources: _LoopResources | None = None
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
        return await self.tokens.login(self._transport)

    async def get_token(self) -> Token:
        """A valid token, logging in or refreshing only if needed."""
        return await self.tokens.get(self._transport)

    async def logout(self) -> bool:
        """Revoke the token at the server where the vendor supports it, and remove it from
        the token store, for every process sharing it. Returns whether a revocation was sent."""
        return await self.tokens.logout(self._transport)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authenticate: bool = True,
    ) -> Response:
        """Send one request through the pipeline; a :class:`Response` or a typed error.

        ``idempotent`` overrides the method's default for retries (POST and PATCH are
        not retried once they may have reached the server, unless it is True).
        """
        method = method.upper()
        send = functools.partial(
            self._exchange, method, self._url(path), params=params, json=json, data=data,
            headers=headers, idempotent=idempotent, tokens=self.tokens if authenticate else None,
        )
        response, sent = await send()
        # A fixed API key cannot be renewed: a rejection of it is final, not worth a replay.
        if sent is not None and response.status in self._rejection_statuses and self._renewable:
            held_before = self.tokens.held_before()
            await self._reauth(sent, method, path, response.status)
            response, sent = await send()
            # Replayed with a token obtained before the rejection (another caller's newer
            # token, or a refresh already running) and refused too: one fresh login is owed.
            if (sent is not None and response.status in self._rejection_statuses
                    and held_before(sent)):
                await self._reauth(sent, method, path, response.status)
                response, sent = await send()
        if response.status >= 400:
            self.events.emit("error", status=response.status, path=path)
            raise self._error(response)
        return response

    async def _reauth(self, sent: Token, method: str, path: str, status: int) -> None:
        self.events.emit("reauth", status=status, path=path)
        logger.info("vendorkit: %s rejected the token on %s %s (HTTP %d); "
                    "logging in again and replaying", self.auth.vendor, method, path, status)
        await self.tokens.reject(self._transport, sent)

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
                    self.tokens.logout(self._transport), timeout=self._logout_timeout
                )
        except Exception as exc:  # includes the builtin TimeoutError of wait_for
            logger.warning("vendorkit: %s logout on close failed: %s", self.auth.vendor,
                           self._redact(str(exc)) or type(exc).__name__)
        finally:
            resources, self._loop_resources = self._loop_resources, None
            if resources is not None and resources.guardian is not None:
                await resources.guardian.aclose()

    async def __aenter__(self) -> SessionManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the pipeline -------------------------------------------------------------------

    def _url(self, path: str, *, allow_other_origin: bool = False) -> str:
        if "://" not in path:
            return self.base_url + (path if path.startswith("/") else "/" + path)
        if not allow_other_origin and not path.startswith(self._origin + "/"):
            raise ConfigurationError(
                f"request() takes a path below {self.base_url}; an absolute URL elsewhere "
                "would send this vendor's token to another host"
            )
        return path

    def _resources(self) -> _LoopResources:
        loop = asyncio.get_running_loop()
        resources = self._loop_resources
        if resources is not None and resources.loop is loop and not resources.session.closed:
            return resources
        if self._external_session is not None:
            session, guardian = self._external_session, None
        else:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl),
                timeout=self._timeout,
                headers=self._headers,
            )
            guardian = _close_with_loop(session)
            with contextlib.suppress(StopIteration):  # run to its yield; the loop finalises it
                guardian.asend(None).send(None)
        limit = self._max_concurrency
        semaphore = asyncio.Semaphore(limit) if limit else None
        resources = _LoopResources(loop, session, semaphore, guardian)
        self._loop_resources = resources
        return resources

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: Any = None,
        form: Mapping[str, str] | None = None,
        multipart: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None,
        tokens: TokenManager | None,
    ) -> tuple[Response, Token | None]:
        """Send with retries. Returns the last answer (error statuses included) and the
        token it carried; raises only a transport error that retries could not cure."""
        resources = self._resources()
        retry = self.retry.start(method, idempotent)
        auth = self.auth
        # API calls take a slot before their token, so no call holds a token while it queues
        # for a connection (it could expire or be revoked meanwhile). Logins and logouts skip
        # the slots: a login must never wait behind the calls that wait for it.
        slot = resources.semaphore if tokens is not None and resources.semaphore else _NO_LIMIT
        while True:
            sent: Token | None = None
            error: TransportError | None = None
            async with slot:
                send_headers = headers
                if tokens is not None:
                    sent = tokens.fresh() or await tokens.get(self._transport)
                    send_headers = {auth.header_name: auth.header_value(sent)}
                    if headers:
                        send_headers = {**headers, **send_headers}
                body = data
                if form is not None:
                    body = dict(form)
                elif multipart is not None:
                    body = aiohttp.FormData(dict(multipart), default_to_multipart=True)
                try:
                    response = await self._send(
                        resources, method, url, params, json, body, send_headers, retry.attempt
                    )
                except TransportError as exc:
                    error = exc
            if error is not None:
                delay = retry.after_error(error)
                if delay is None:
                    self.events.emit("error", error=type(error).__name__)
                    raise error
                self._note_retry(method, url, retry.attempt, delay, type(error).__name__)
                await retry.sleep(delay)
                continue
            if response.status >= 400:
                delay = retry.after_status(response.status, response.headers)
                if delay is not None:
                    self._note_retry(method, url, retry.attempt, delay, response.status)
                    await retry.sleep(delay)
                    continue
            return response, sent

    async def _send(
        self,
        resources: _LoopResources,
        method: str,
        url: str,
        params: Mapping[str, str | int | float] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        attempt: int,
    ) -> Response:
        started = time.perf_counter()
        try:
            # Inline rather than a helper coroutine: one frame less per call in flight.
            target, query = _request_url(url, params)
            async with resources.session.request(
                method, target, params=query, json=json, data=data, headers=headers
            ) as resp:
                status, resp_headers, content = resp.status, resp.headers, await resp.read()
        except aiohttp.ClientSSLError as exc:
            raise ConnectError(
                f"{method} {url}: TLS handshake failed ({type(exc).__name__}); the server's "
                "certificate is not trusted: fix it, or pass ssl=<an SSLContext that trusts it>",
                method=method, url=url, request_sent=False, retryable=False,
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(
                f"{method} {url}: could not connect ({exc.os_error.strerror or exc}); "
                "check the base URL and that the host is reachable",
                method=method, url=url, request_sent=False,
            ) from None
        except (builtins.TimeoutError, aiohttp.ServerTimeoutError):
            raise TimeoutError(
                f"{method} {url}: no complete answer within the timeout",
                method=method, url=url,
            ) from None
        except aiohttp.ClientError as exc:
            raise ConnectError(
                f"{method} {url}: connection failed ({type(exc).__name__})",
                method=method, url=url,
            ) from None
        elapsed = time.perf_counter() - started
        self.events.emit("request")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> %d in %.1f ms (attempt %d)",
                         method, urlsplit(url).path, status, elapsed * 1000, attempt)
        return Response(status, method, url, resp_headers, content, elapsed)

    def _note_retry(
        self, method: str, url: str, attempt: int, delay: float, cause: int | str
    ) -> None:
        self.events.emit("retry", attempt=attempt, delay=delay, cause=cause)
        logger.info("vendorkit: %s %s failed (%s) on attempt %d; retrying in %.2f s",
                    method, urlsplit(url).path, cause, attempt - 1, delay)  # attempt: the next

    def _redact(self, text: str) -> str:
        token = self.tokens.token
        secrets = [*self.auth.secrets(), *(
            (token.access_token, token.refresh_token or "") if token else ()
        )]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _error(self, response: Response) -> APIError:
        body = response.json_object()
        detail = None
        for key in ("message", "error_description", "msg", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                detail = self._redact(value)[:200]
                break
        return error_for_status(
            response.status,
            method=response.method,
            url=urlsplit(response.url).path,
            request_id=response.request_id,
            body_excerpt=response.excerpt(redact=self._redact),
            headers=response.headers,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            detail=detail,
        )
