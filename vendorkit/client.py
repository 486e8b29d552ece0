"""``VendorClient``: what every vendor client shares, so a vendor module is only a declaration.

A vendor client is a thin, typed face on one :class:`SessionManager`: it declares the
base URL and the login (an :class:`AuthStrategy`), and adds one method per documented
endpoint. Everything else, listed here once, is the same for every vendor.

``with_options()`` makes a light view of a client (openai-python's pattern): the same
object but for its :class:`CallOptions`, sharing the one session, so views cost no
connection, login or limiter of their own.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self, TypedDict, Unpack

import aiohttp

from .auth import AuthStrategy
from .config import RefreshWindows
from .errors import ConfigurationError
from .events import EventHook, Stats
from .network import SSLSetting
from .options import CallOptions, CallOverrides
from .ratelimit import RateLimit
from .response import Response
from .retry import RetryPolicy
from .session import SessionManager
from .stores.base import TokenStore
from .streaming import StreamingResponse
from .token import Token

__all__ = ["SessionOptions", "VendorClient"]


class SessionOptions(TypedDict, total=False):
    """Keyword arguments every client passes through to its :class:`SessionManager`."""

    token_store: TokenStore | None
    retry: RetryPolicy | None
    timeout: float | None
    connect_timeout: float | None
    logout_timeout: float
    headers: Mapping[str, str] | None
    max_connections: int
    max_concurrency: int | None
    max_body_size: int
    http_session: aiohttp.ClientSession | None
    ssl: SSLSetting
    proxy: str | None
    trust_env: bool
    allow_insecure_http: bool
    event_hooks: Mapping[str, Iterable[EventHook]] | None
    refresh_windows: RefreshWindows | None
    rate_limit: RateLimit | bool | None
    tracing: bool


class VendorClient:
    """Base of the vendor clients: lifecycle, token, escape hatch, configuration from env."""

    #: ``VENDORKIT_<ENV_NAME>_<ARGUMENT>`` names the environment variables of ``from_env``.
    env_name: ClassVar[str]

    def __init__(self, base_url: str, auth: AuthStrategy, **options: Unpack[SessionOptions]):
        self.session = SessionManager(base_url, auth, **options)
        #: A view's options (None on the client itself: the session's own).
        self._options: CallOptions | None = None
        #: On a view: the raw :class:`Response` of its latest call that got one. None on
        #: the client itself, which concurrent tasks share.
        self.last_response: Response | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.session.base_url}>"

    @property
    def token(self) -> Token | None:
        """The current token, or None before the first login (no I/O)."""
        return self.session.token

    @property
    def stats(self) -> Stats:
        """Counters: requests, errors, retries, logins, refreshes, reauths, logouts."""
        return self.session.stats

    async def login(self) -> Token:
        """Log in now. Not needed before calls: the first call logs in by itself."""
        return await self.session.login()

    async def logout(self) -> bool:
        """Revoke the token at the vendor (where it documents how) and remove it from the
        token store, for every process that shares the store. Returns whether a revocation
        request was sent."""
        return await self.session.logout()

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
    ) -> Response:
        """Call any endpoint below the base URL, authenticated: the escape hatch for
        endpoints this client has no typed method for. ``path`` may be a template
        (``/users/{uid}``) filled, percent-encoded, from ``path_params``."""
        options = self._options
        response = await self.session.request(
            method, path, path_params=path_params, params=params, json=json, data=data,
            headers=headers, idempotent=idempotent, options=options,
        )
        if options is not None:
            self.last_response = response
        return response

    def stream(
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
    ) -> contextlib.AbstractAsyncContextManager[StreamingResponse]:
        """Call an endpoint and read its body as it arrives, for large exports::

            async with client.stream("GET", "/export") as answer:
                async for line in answer.iter_lines():
                    ...

        Auth, re-auth, retries and typed errors are those of :meth:`request`, up to the
        answer's head; the body is never held whole, nor retried once it has started.
        The connection is released when the block exits.
        """
        return self.session.stream(
            method, path, path_params=path_params, params=params, json=json, data=data,
            headers=headers, idempotent=idempotent, options=self._options,
        )

    def with_options(self, **overrides: Unpack[CallOverrides]) -> Self:
        """A view of this client whose calls use these options, sharing its session (token,
        token store, rate limiter, connections), so one slow export needs no second client::

            report = await client.with_options(timeout=600).get_report(rid)

        Takes ``timeout``, ``connect_timeout``, ``retry`` (a :class:`RetryPolicy`) and
        ``rate_limit=False`` (skip the client's limiter); one left out keeps the client's
        (or this view's); logins and refreshes keep the client's. Closing a view closes
        nothing: close the client. A view keeps the raw :class:`Response` of its latest
        call in ``last_response``, so a typed call can hand back its headers and request
        id::

            view = client.with_options()
            page = await view.get_user_page(page_index=2)
            assert view.last_response is not None
            print(view.last_response.request_id)

        Make one view per task: ``last_response`` is the view's latest call, whichever
        task made it.
        """
        view = copy.copy(self)
        view._options = (self._options or CallOptions()).merged(
            overrides, session_timeouts=self.session.timeouts,
            limited=self.session.limiter is not None,
        )
        view.last_response = None
        return view

    async def aclose(self) -> None:
        """Close the client: revoke the token unless the store is shared, release connections.
        On a ``with_options()`` view, nothing: the view shares the client's session."""
        if self._options is None:
            await self.session.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @classmethod
    def env_variables(cls) -> dict[str, str]:
        """The constructor argument each ``VENDORKIT_<VENDOR>_<FIELD>`` variable fills."""
        params = inspect.signature(cls.__init__).parameters.values()
        return {
            f"VENDORKIT_{cls.env_name}_{p.name.upper()}": p.name
            for p in params
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }

    @classmethod
    def from_env(
        cls, *, environ: Mapping[str, str] | None = None, **options: Any
    ) -> Self:
        """Build a client from ``VENDORKIT_<VENDOR>_<FIELD>`` environment variables.

        Keyword arguments override the environment (and pass session options through).
        A missing required variable is a :class:`ConfigurationError` that names it.
        """
        environ = os.environ if environ is None else environ
        signature = inspect.signature(cls.__init__)
        kwargs: dict[str, Any] = {}
        missing = []
        for variable, name in cls.env_variables().items():
            if name in options:
                continue
            value = environ.get(variable)
            if value is not None:
                kwargs[name] = value
            elif signature.parameters[name].default is inspect.Parameter.empty:
                missing.append(variable)
        if missing:
            raise ConfigurationError(
                f"{cls.__name__}.from_env: missing environment variable(s) {', '.join(missing)}"
            )
        try:
            return cls(**kwargs, **options)
        except ConfigurationError as exc:
            # An argument only one mode requires (CloudCX): name its variable, not the argument.
            unset = [variable for variable, name in cls.env_variables().items()
                     if name not in options and not kwargs.get(name, "").strip()
                     and str(exc).startswith(f"{name} ")]
            if not unset:
                raise
            raise ConfigurationError(
                f"{cls.__name__}.from_env: missing or empty environment variable {unset[0]} "
                f"({exc})"
            ) from None
