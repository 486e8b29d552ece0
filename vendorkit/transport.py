"""``HTTPTransport``: one HTTP exchange over aiohttp, the pipeline's innermost layer.

It owns the aiohttp ``ClientSession`` of each event loop (created lazily inside the loop
that first needs it, so one manager can serve two ``asyncio.run()`` calls in turn) and
maps aiohttp's exceptions to vendorkit's in one table, as httpx's transports do. It knows
nothing of tokens, retries or vendors. Proxies and CA bundles are chosen in network.py.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs
from multidict import CIMultiDict
from yarl import URL

from ._constants import ERROR_BODY_READ
from .config import Limits, Timeouts
from .errors import ConnectError, ResponseTooLargeError, TimeoutError, TransportError
from .network import ProxyRoutes, SSLSetting, ssl_context
from .response import Response, new_response

__all__ = ["HTTPTransport", "OpenResponse", "client_timeout", "map_transport_error"]

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
        for k, v in query:  # a loop, not all(<generator>): a third of this function's cost
            if k.__class__ is not str or v.__class__ is not str:
                return url, params
        return _parsed_url(url, query), None
    except ValueError:  # not a URL yarl accepts: let aiohttp raise its usual error
        return url, params


# --- aiohttp's exceptions, mapped in one table -------------------------------------------


def _tls(exc: BaseException, method: str, url: str) -> TransportError:
    return ConnectError(
        f"{method} {url}: TLS handshake failed ({type(exc).__name__}); the server's "
        "certificate is not trusted: fix it, or pass ssl=<the path of a CA bundle that "
        "trusts it, or an SSLContext>, or set SSL_CERT_FILE",
        method=method, url=url, request_sent=False, retryable=False,
    )


def _proxy_connect(exc: BaseException, method: str, url: str) -> TransportError:
    reason = getattr(getattr(exc, "os_error", None), "strerror", None) or type(exc).__name__
    return ConnectError(
        f"{method} {url}: could not connect to the proxy ({reason}); check proxy= or the "
        "HTTP(S)_PROXY environment variables (NO_PROXY lists the hosts reached directly)",
        method=method, url=url, request_sent=False,
    )


def _proxy_refused(exc: BaseException, method: str, url: str) -> TransportError:
    status = getattr(exc, "status", "no")
    return ConnectError(
        f"{method} {url}: the proxy refused to forward it (HTTP {status})",
        method=method, url=url, request_sent=False,
        retryable=isinstance(status, int) and status >= 500,
    )


def _connect(exc: BaseException, method: str, url: str) -> TransportError:
    reason = getattr(getattr(exc, "os_error", None), "strerror", None) or type(exc).__name__
    return ConnectError(
        f"{method} {url}: could not connect ({reason}); "
        "check the base URL and that the host is reachable",
        method=method, url=url, request_sent=False,
    )


def _timeout(exc: BaseException, method: str, url: str) -> TransportError:
    return TimeoutError(
        f"{method} {url}: no complete answer within the timeout", method=method, url=url
    )


def _dropped(exc: BaseException, method: str, url: str) -> TransportError:
    return ConnectError(
        f"{method} {url}: connection failed ({type(exc).__name__})", method=method, url=url
    )


#: First match wins: subclasses before their bases.
_ERROR_TABLE: tuple[tuple[type[BaseException], Callable[[BaseException, str, str],
                                                        TransportError]], ...] = (
    (aiohttp.ClientSSLError, _tls),
    (aiohttp.ClientProxyConnectionError, _proxy_connect),
    (aiohttp.ClientHttpProxyError, _proxy_refused),
    (aiohttp.ClientConnectorError, _connect),
    (builtins.TimeoutError, _timeout),
    (aiohttp.ServerTimeoutError, _timeout),
    (aiohttp.ClientError, _dropped),
)
_MAPPED = tuple(kind for kind, _ in _ERROR_TABLE)


def map_transport_error(exc: BaseException, method: str, url: str) -> TransportError:
    """The vendorkit error for an aiohttp (or timeout) exception. Raise it ``from None``:
    aiohttp's exceptions hold the request's headers, the token among them."""
    for kind, make in _ERROR_TABLE:
        if isinstance(exc, kind):
            return make(exc, method, url)
    raise TypeError(f"not a transport exception: {type(exc).__name__}")  # pragma: no cover


# --- the loop's aiohttp session ------------------------------------------------------------


async def _close_with_loop(http_session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Closes ``http_session`` when its event loop shuts down (``asyncio.run`` finalises
    async generators before closing the loop), so a session the transport created is never
    leaked, even when the caller forgot ``aclose()``."""
    try:
        yield
    finally:
        if not http_session.closed:
            await http_session.close()


class _LoopSession:
    """One event loop's aiohttp session, and the guardian that closes it with the loop."""

    __slots__ = ("guardian", "http_session", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http_session: aiohttp.ClientSession,
        guardian: AsyncGenerator[None, None] | None,
    ) -> None:
        self.loop = loop
        self.http_session = http_session
        self.guardian = guardian


def client_timeout(timeouts: Timeouts, *, stream: bool) -> aiohttp.ClientTimeout:
    """aiohttp's timeout for a call: ``timeout`` bounds the whole exchange, or, for a
    stream, the wait for the answer's head and then for each read (a 200 MB export may
    take minutes; a stalled one is still cut off)."""
    if stream:
        return aiohttp.ClientTimeout(total=None, connect=timeouts.connect,
                                     sock_read=timeouts.total)
    return aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)


@attrs.frozen(slots=True)
class OpenResponse(Response):
    """A 2xx answer to a stream request, its body still unread: ``raw`` is the aiohttp
    response that :class:`~vendorkit.streaming.StreamingResponse` reads, then releases."""

    raw: aiohttp.ClientResponse = attrs.field(repr=False, eq=False, kw_only=True)


class HTTPTransport:
    """Sends one request and reads the whole answer (or, for a stream, its head); raises
    only :class:`TransportError`.

    An ``http_session`` passed in is used (in its own loop) but never closed; its own
    timeout, connector and ``trust_env`` apply, and only an explicit ``proxy`` is added.
    """

    def __init__(
        self,
        *,
        timeouts: Timeouts,
        limits: Limits,
        ssl: SSLSetting = True,
        proxy: str | None = None,
        trust_env: bool = True,
        http_session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        #: Sent with every request: as the default headers of the aiohttp session this
        #: transport creates (copied in C per request), else merged into each request's.
        self._headers: CIMultiDict[str] = CIMultiDict()
        for name, value in (headers or {}).items():
            self._headers[name] = value  # a later name replaces an earlier one, in any case
        self._timeout = client_timeout(timeouts, stream=False)
        self._stream_timeout = client_timeout(timeouts, stream=True)
        if http_session is not None:
            self._timeout = http_session.timeout
            self._stream_timeout = attrs.evolve(
                http_session.timeout, total=None, sock_read=http_session.timeout.total
            )
        self._limits = limits
        self._max_body = limits.max_body_size
        self._ssl = ssl_context(ssl, trust_env=trust_env)
        self._proxies = ProxyRoutes.build(
            proxy, trust_env=trust_env and http_session is None
        )
        self._external = http_session
        self._current: _LoopSession | None = None

    def http_session(self, loop: asyncio.AbstractEventLoop | None = None) -> aiohttp.ClientSession:
        """The running loop's aiohttp session (``loop``: the running loop, when the caller
        has it at hand), created on first use in that loop."""
        if loop is None:
            loop = asyncio.get_running_loop()
        current = self._current
        if current is not None and current.loop is loop and not current.http_session.closed:
            return current.http_session
        if self._external is not None:
            http_session, guardian = self._external, None
        else:
            http_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limits.pool_size, ssl=self._ssl),
                timeout=self._timeout, headers=self._headers,
            )
            guardian = _close_with_loop(http_session)
            with contextlib.suppress(StopIteration):  # run to its yield; the loop finalises it
                guardian.asend(None).send(None)
        self._current = _LoopSession(loop, http_session, guardian)
        return http_session

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        http_timeout: aiohttp.ClientTimeout | None = None,
        stream: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Response:
        """Time it, send, read, build the :class:`Response`. ``http_timeout`` replaces the
        transport's for this call; ``stream`` leaves a 2xx body unread (:meth:`open`);
        ``loop`` is the running loop when the caller has it (one lookup a call, not two)."""
        if stream:
            return await self.open(method, url, params=params, json=json, data=data,
                                   headers=headers, http_timeout=http_timeout)
        http_session = self.http_session(loop)
        target, query, headers, proxy = self._addressed(url, params, headers)
        started = time.perf_counter()
        try:
            async with http_session.request(
                method, target, params=query, json=json, data=data, headers=headers,
                allow_redirects=False, proxy=proxy, timeout=http_timeout or self._timeout,
            ) as resp:
                status, resp_headers = resp.status, resp.headers
                length = resp.content_length
                if status < 400 and length is not None and length <= self._max_body:
                    content = await resp.read()  # the common case: one read, no checks
                else:
                    content = await self._read_capped(resp, method, url)
        except _MAPPED as exc:
            error: TransportError = map_transport_error(exc, method, url)
        else:
            return new_response(status, method, url, resp_headers, content,
                                time.perf_counter() - started)
        # Raised outside the except clause so that it has no __context__: aiohttp's
        # exceptions hold the request's headers, the token among them.
        raise error

    async def open(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        http_timeout: aiohttp.ClientTimeout | None = None,
    ) -> Response:
        """Send, and read only the head of a 2xx answer: an :class:`OpenResponse` holding
        the connection until its reader releases it. Any other answer is read whole (as by
        :meth:`send`), so retries, re-auth and errors treat it as they treat any answer."""
        http_session = self.http_session()
        target, query, headers, proxy = self._addressed(url, params, headers)
        started = time.perf_counter()
        resp: aiohttp.ClientResponse | None = None
        try:
            resp = await http_session.request(
                method, target, params=query, json=json, data=data, headers=headers,
                allow_redirects=False, proxy=proxy, timeout=http_timeout or self._stream_timeout,
            )
            elapsed = time.perf_counter() - started
            if 200 <= resp.status < 300:
                opened = OpenResponse(resp.status, method, url, resp.headers, b"", elapsed,
                                      raw=resp)
                resp = None  # the reader owns it now
                return opened
            content = await self._read_capped(resp, method, url)
            answer = Response(resp.status, method, url, resp.headers, content,
                              time.perf_counter() - started)
        except _MAPPED as exc:
            error: TransportError = map_transport_error(exc, method, url)
        else:
            return answer
        finally:
            if resp is not None:
                resp.release()
        raise error  # outside the except clause, for the reason send() gives

    def _addressed(
        self, url: str, params: Mapping[str, str | int | float] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[URL | str, Mapping[str, str | int | float] | None, Mapping[str, str] | None,
               URL | None]:
        """What aiohttp is handed for ``url``: the target and query (``_request_url``), the
        headers (over the transport's, for a passed-in aiohttp session, whose own default
        headers are not ours) and the proxy."""
        if self._external is not None:
            merged = CIMultiDict(self._headers)
            if headers:
                merged.update(headers)
            headers = merged
        target, query = _request_url(url, params)
        proxy = None if self._proxies is None else self._proxies.for_url(url)
        return target, query, headers, proxy

    async def _read_capped(
        self, resp: aiohttp.ClientResponse, method: str, url: str
    ) -> bytes:
        """The body, read up to the cap: ``max_body_size``, or for an error answer only
        what its reason and excerpt need (``ERROR_BODY_READ``)."""
        error = resp.status >= 400
        limit = ERROR_BODY_READ if error else self._max_body
        length = resp.content_length
        if length is not None and length > limit and not error:
            raise self._too_large(resp, method, url, f"announces {length} bytes")
        chunks, size = [], 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > limit:
                if error:  # enough for the excerpt: the rest is not worth reading
                    chunks.append(chunk[: len(chunk) - (size - limit)])
                    break
                raise self._too_large(resp, method, url, f"is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(
        self, resp: aiohttp.ClientResponse, method: str, url: str, what: str
    ) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"{method} {urlsplit(url).path} -> HTTP {resp.status}: the body {what}, past "
            f"max_body_size={self._max_body}; raise it, or use stream() for large exports",
            status=resp.status, method=method, url=urlsplit(url).path, headers=resp.headers,
            limit=self._max_body,
        )

    async def aclose(self) -> None:
        """Close the aiohttp session this transport created (a passed-in one is left open)."""
        current, self._current = self._current, None
        if current is not None and current.guardian is not None:
            await current.guardian.aclose()
