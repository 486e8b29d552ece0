"""What every vendor emulator shares: state, tokens, faults, counters, OAuth2, runners.

Vendor modules only declare routes and response shapes; each mechanism lives here once.
The sandbox imports nothing from the client side so that it catches a client's mistakes.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import functools
import hashlib
import hmac
import importlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Literal, TypeVar, cast

import attrs
from aiohttp import web

VENDORS = ("cloud4wi", "wokelo", "cloudcx", "cambyopro", "wogeez")
REFRESH_LIFETIME = 1800.0  # Keycloak's SSO idle timeout, used for every vendor's refresh tokens
SHUTDOWN_TIMEOUT = 1.0  # a slow-fault request left in flight must not hold a test up for 60 s
JSON_ERROR_BODY = '{"status": "ok", "data": [{"id": 1, "name": "trunc'
HTML_ERROR_BODY = "<html><body><h1>502 Bad Gateway</h1></body></html>"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Target = Literal["api", "auth", "all"]
Refusal = Literal["missing", "unknown", "revoked", "expired"]
TokenStyle = Literal["opaque", "jwt"]
Reply = tuple[int, dict[str, object]]
T = TypeVar("T")


@attrs.define
class Counters:
    """What the sandbox saw, for tests that assert on a client's traffic.

    ``failed_logins`` counts every refused request to a login or token endpoint,
    dead refresh tokens included; ``requests`` is keyed by "METHOD /route/pattern".
    """

    logins: int = 0
    refreshes: int = 0
    logouts: int = 0
    revocations: int = 0
    rejected: int = 0
    failed_logins: int = 0
    faults: int = 0
    requests: collections.Counter[str] = attrs.Factory(collections.Counter)

    def snapshot(self) -> dict[str, object]:
        """A JSON-ready copy."""
        values: dict[str, object] = attrs.asdict(self, filter=lambda a, _: a.name != "requests")
        return values | {"requests": dict(self.requests)}

    def reset(self) -> None:
        for field in attrs.fields(Counters):
            if field.name != "requests":
                setattr(self, field.name, 0)
        self.requests.clear()


@attrs.frozen
class Fault:
    """One queued misbehaviour, consumed by the next request to a matching route."""

    kind: Literal["fail", "drop", "malformed", "slow"]
    target: Target
    status: int = 503
    retry_after: str | None = None
    body: str | None = None
    mid_body: bool = False
    format: str = "json"
    seconds: float = 0.0


@attrs.define
class Faults:
    """Fault queue (FIFO) and added latency; locked so another thread may queue faults."""

    latency: float = 0.0
    _queue: collections.deque[Fault] = attrs.field(factory=collections.deque, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def fail_next(
        self,
        n: int,
        status: int,
        *,
        retry_after: str | None = None,
        target: str = "api",
        body: str | None = None,
    ) -> None:
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status, got {status}")
        fault = Fault("fail", _target(target), status=status, retry_after=retry_after, body=body)
        self._add(n, fault)

    def drop_next(self, n: int, *, mid_body: bool = False, target: str = "api") -> None:
        """Close the connection before any response, or after the headers and half the body."""
        self._add(n, Fault("drop", _target(target), mid_body=mid_body))

    def malformed_next(self, n: int, *, kind: str = "json", target: str = "api") -> None:
        """Answer 200 with truncated JSON ("json") or a proxy's HTML error page ("html")."""
        if kind not in ("json", "html"):
            raise ValueError(f"malformed kind must be 'json' or 'html', got {kind!r}")
        self._add(n, Fault("malformed", _target(target), format=kind))

    def slow_next(self, n: int, seconds: float, *, target: str = "api") -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._add(n, Fault("slow", _target(target), seconds=seconds))

    def take(self, target: Target) -> Fault | None:
        """Remove and return the oldest fault aimed at ``target``."""
        with self._lock:
            for fault in self._queue:
                if fault.target in ("all", target):
                    self._queue.remove(fault)
                    return fault
        return None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def clear(self) -> None:
        """Drop queued faults and the added latency."""
        with self._lock:
            self._queue.clear()
        self.latency = 0.0

    def _add(self, n: int, fault: Fault) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._queue.extend([fault] * n)


def _target(value: str) -> Target:
    if value in ("api", "auth", "all"):
        return cast(Target, value)
    raise ValueError(f"target must be 'api', 'auth' or 'all', got {value!r}")


@attrs.define
class Issued:
    """One token the sandbox handed out (or a static API key it accepts)."""

    value: str = attrs.field(repr=False)
    kind: Literal["access", "refresh", "static"]
    subject: str
    session: str
    expires_at: float | None
    dead: bool = False
    rotated: bool = False


@attrs.frozen
class Grant:
    """The tokens of one login or refresh."""

    access: Issued
    refresh: Issued | None
    session: str


@attrs.define
class SandboxState:
    """One emulator's credentials, clock, token registry, counters and faults.

    Tokens carry real-time expiry; ``now()`` adds ``clock_skew``, so a positive skew
    makes the server reject tokens before the client expects.
    """

    vendor: str
    credentials: dict[str, str] = attrs.field(repr=False)
    token_lifetime: float
    refresh_lifetime: float = REFRESH_LIFETIME
    clock_skew: float = 0.0
    counters: Counters = attrs.Factory(Counters)
    faults: Faults = attrs.Factory(Faults)
    token_style: TokenStyle = "opaque"
    token_prefix: str = ""
    _tokens: dict[str, Issued] = attrs.field(factory=dict, init=False, repr=False)
    _sessions: dict[str, list[Issued]] = attrs.field(factory=dict, init=False, repr=False)
    _jwt_key: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), init=False, repr=False)

    def now(self) -> float:
        return time.time() + self.clock_skew

    def login(self, subject: str, *, refresh: bool = False) -> Grant:
        """Open a session for ``subject``; counts a login."""
        self.counters.logins += 1
        return self._grant(subject, str(uuid.uuid4()), refresh=refresh)

    def refresh(
        self, value: str, *, revoke_old_access: bool = False, replay_ends_session: bool = False
    ) -> Grant | None:
        """Rotate a refresh token; None if it is dead, expired or already rotated."""
        old = self._tokens.get(value)
        if old is None or old.kind != "refresh" or old.dead or self._expired(old):
            return None
        if old.rotated:
            if replay_ends_session:  # a replayed refresh token may be stolen: end its session
                self._kill(self._sessions[old.session])
            return None
        old.rotated = True
        if revoke_old_access:
            self._kill(t for t in self._sessions[old.session] if t.kind == "access")
        self.counters.refreshes += 1
        return self._grant(old.subject, old.session, refresh=True)

    def verify(self, value: str | None) -> Issued | Refusal:
        """Check a bearer token presented to a protected route."""
        if not value:
            return "missing"
        token = self._tokens.get(value)
        if token is None or token.kind == "refresh":
            return "unknown"
        if token.dead:
            return "revoked"
        return "expired" if self._expired(token) else token

    def revoke(self, value: str) -> bool:
        """Revoke one token (a refresh token takes its session with it); True if it was live."""
        token = self._tokens.get(value)
        if token is None or token.dead or token.kind == "static":
            return False
        self._kill(self._sessions[token.session] if token.kind == "refresh" else [token])
        return True

    def end_session(self, refresh_value: str) -> bool:
        """Log out: every token of the refresh token's session dies; False if it was not live."""
        token = self._tokens.get(refresh_value)
        if token is None or token.kind != "refresh" or token.dead or token.rotated:
            return False
        if self._expired(token):
            return False
        self._kill(self._sessions[token.session])
        return True

    def revoke_all_tokens(self) -> int:
        """Mass revocation: every access and refresh token issued so far becomes invalid."""
        return self._kill(t for t in self._tokens.values() if t.kind != "static")

    def add_static_token(self, value: str, subject: str) -> None:
        """Accept ``value`` as a bearer token that never expires (an API key)."""
        self._tokens[value] = Issued(value, "static", subject, "static", None)

    def _grant(self, subject: str, session: str, *, refresh: bool) -> Grant:
        access = self._issue("access", subject, session, self.token_lifetime)
        if not refresh:
            return Grant(access, None, session)
        renewal = self._issue("refresh", subject, session, self.refresh_lifetime)
        return Grant(access, renewal, session)

    def _issue(
        self, kind: Literal["access", "refresh"], subject: str, session: str, lifetime: float
    ) -> Issued:
        issued_at = time.time()
        # Integral lifetimes give integer claims, as real servers do; fractional ones stay exact.
        exp = issued_at + lifetime
        exp = int(exp) if float(lifetime).is_integer() else exp
        if kind == "access" and self.token_style == "jwt":
            claims = {"sub": subject, "iat": int(issued_at), "exp": exp, "jti": str(uuid.uuid4())}
            value = mint_jwt(self._jwt_key, claims)
        else:
            value = (self.token_prefix if kind == "access" else "") + secrets.token_urlsafe(48)
        token = Issued(value, kind, subject, session, exp)
        self._tokens[value] = token
        self._sessions.setdefault(session, []).append(token)
        return token

    def _expired(self, token: Issued) -> bool:
        return token.expires_at is not None and self.now() >= token.expires_at

    @staticmethod
    def _kill(tokens: Iterable[Issued]) -> int:
        killed = 0
        for token in tokens:
            killed += not token.dead
            token.dead = True
        return killed


def mint_jwt(key: bytes, claims: Mapping[str, object]) -> str:
    """An HS256 JWT; the key never leaves the sandbox, so only its registry can vouch for it."""
    header = _b64url(_compact({"alg": "HS256", "typ": "JWT"}))
    signing_input = f"{header}.{_b64url(_compact(claims))}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _compact(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def seconds(value: float) -> int | float:
    """A lifetime as a vendor reports it: an int unless it really is fractional."""
    return int(value) if float(value).is_integer() else value


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header, if any."""
    scheme, _, encoded = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except ValueError:
        return None
    return (user, password) if sep else None


async def json_object(request: web.Request) -> dict[str, object] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(await request.read())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def form_fields(request: web.Request) -> dict[str, str]:
    """Text fields of a urlencoded or multipart body (first value of each)."""
    fields: dict[str, str] = {}
    for name, value in (await request.post()).items():
        if isinstance(value, str):
            fields.setdefault(name, value)
    return fields


def reply(status: int, body: Mapping[str, object], /, **headers: str) -> web.Response:
    return web.json_response(dict(body), status=status, headers=headers or None)


def refuse(state: SandboxState, answer: Reply) -> web.Response:
    """Answer a login or token request with an error; counts a failed login."""
    state.counters.failed_logins += 1
    return reply(*answer, **NO_STORE)


@attrs.frozen
class Call:
    """One request as a vendor handler sees it."""

    request: web.Request
    state: SandboxState
    token: Issued | None = None

    @property
    def bearer(self) -> Issued:
        """The verified token; only on protected routes."""
        if self.token is None:
            raise RuntimeError("bearer is only set on protected routes")
        return self.token


Handler = Callable[[Call], Awaitable[web.StreamResponse]]
WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Reject = Callable[[Refusal], web.Response]


@attrs.frozen
class Route:
    """One vendor endpoint: its fault target and whether it needs a bearer token."""

    method: str
    path: str
    handler: Handler
    target: Literal["api", "auth"]
    protected: bool


def api(method: str, path: str, handler: Handler) -> Route:
    """A protected vendor endpoint (fault target "api")."""
    return Route(method, path, handler, "api", protected=True)


def auth(method: str, path: str, handler: Handler, *, protected: bool = False) -> Route:
    """A login, token, logout, revocation or discovery endpoint (fault target "auth")."""
    return Route(method, path, handler, "auth", protected=protected)


STATE = web.AppKey("sandbox_state", SandboxState)
TARGETS = web.AppKey("sandbox_targets", dict[str, Literal["api", "auth"]])


def build_app(state: SandboxState, routes: Iterable[Route], reject: Reject) -> web.Application:
    """A vendor app: its routes behind bearer checks, fault injection and control routes."""
    app = web.Application(middlewares=[_sandbox_middleware])
    app[STATE] = state
    targets: dict[str, Literal["api", "auth"]] = {}
    for route in routes:
        added = app.router.add_route(route.method, route.path, _bind(route, state, reject))
        canonical = added.resource.canonical if added.resource else route.path
        targets[f"{route.method} {canonical}"] = route.target
    app[TARGETS] = targets
    app.router.add_get("/_sandbox/counters", _counters)
    app.router.add_post("/_sandbox/faults", _faults)
    app.router.add_post("/_sandbox/revoke", _revoke)
    app.router.add_post("/_sandbox/reset", _reset)
    return app


def _bind(route: Route, state: SandboxState, reject: Reject) -> WebHandler:
    async def handle(request: web.Request) -> web.StreamResponse:
        token = None
        if route.protected:
            verdict = state.verify(bearer_token(request))
            if not isinstance(verdict, Issued):
                state.counters.rejected += 1
                return reject(verdict)
            token = verdict
        return await route.handler(Call(request, state, token))

    return handle


@web.middleware
async def _sandbox_middleware(request: web.Request, handler: WebHandler) -> web.StreamResponse:
    """Count the request, add latency, and let the next matching fault replace the answer."""
    if request.path.startswith("/_sandbox/"):
        return await handler(request)
    state = request.app[STATE]
    resource = request.match_info.route.resource
    key = f"{request.method} {resource.canonical if resource else request.path}"
    state.counters.requests[key] += 1
    if state.faults.latency > 0:
        await asyncio.sleep(state.faults.latency)
    target = request.app[TARGETS].get(key)
    fault = state.faults.take(target) if target else None
    if fault is None:
        return await handler(request)
    state.counters.faults += 1
    return await _inject(fault, request, handler)


async def _inject(fault: Fault, request: web.Request, handler: WebHandler) -> web.StreamResponse:
    if fault.kind == "slow":
        await asyncio.sleep(fault.seconds)
        return await handler(request)
    if fault.kind == "fail":
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is None:
            body = {"error": "sandbox_fault", "status": fault.status}
            return reply(fault.status, body, **headers)
        content_type = "application/json" if _is_json(fault.body) else "text/plain"
        return web.Response(
            status=fault.status, text=fault.body, content_type=content_type, headers=headers
        )
    if fault.kind == "malformed":
        if fault.format == "html":
            return web.Response(text=HTML_ERROR_BODY, content_type="text/html")
        return web.Response(text=JSON_ERROR_BODY, content_type="application/json")
    if not fault.mid_body:
        # The request "never arrived": no handler runs, the client sees the socket close.
        _hang_up(request)
        return web.Response()  # writing it fails quietly: aiohttp ignores the reset
    return await _cut_short(request, await handler(request))


async def _cut_short(request: web.Request, answer: web.StreamResponse) -> web.StreamResponse:
    """Send the headers (full Content-Length) and half the body, then hang up."""
    body = answer.body if isinstance(answer, web.Response) else None
    if not isinstance(body, (bytes, bytearray)) or len(body) < 2:
        _hang_up(request)  # nothing to cut in half: the handler ran but no answer arrives
        return answer
    stream = web.StreamResponse(
        status=answer.status,
        headers={"Content-Type": answer.headers.get("Content-Type", "application/json")},
    )
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    _hang_up(request)
    return stream


def _hang_up(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def _counters(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].counters.snapshot())


async def _faults(request: web.Request) -> web.Response:
    """Queue faults from another process: {"kind": "fail"|"drop"|"malformed"|"slow"|"latency"}."""
    spec = await json_object(request)
    faults = request.app[STATE].faults
    try:
        if spec is None:
            raise ValueError("body must be a JSON object")
        queue_fault(faults, spec)
    except (ValueError, TypeError) as exc:
        return reply(400, {"error": str(exc)})
    return web.json_response({"pending": faults.pending(), "latency": faults.latency})


def queue_fault(faults: Faults, spec: Mapping[str, object]) -> None:
    """Queue the fault a control request describes; ValueError if it makes no sense."""
    kind, target = spec.get("kind"), str(spec.get("target", "api"))
    n = int(_number(spec, "n", 1))
    retry_after = spec.get("retry_after")
    if kind == "fail":
        body = spec.get("body")
        faults.fail_next(
            n,
            int(_number(spec, "status", 503)),
            target=target,
            retry_after=None if retry_after is None else str(retry_after),
            body=None if body is None else str(body),
        )
    elif kind == "drop":
        faults.drop_next(n, mid_body=spec.get("mid_body") is True, target=target)
    elif kind == "malformed":
        faults.malformed_next(n, kind=str(spec.get("format", "json")), target=target)
    elif kind == "slow":
        faults.slow_next(n, _number(spec, "seconds", 1.0), target=target)
    elif kind == "latency":
        faults.latency = max(0.0, _number(spec, "seconds", 0.0))
    else:
        raise ValueError("kind must be one of fail, drop, malformed, slow, latency")


def _number(spec: Mapping[str, object], key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number")
    return float(value)


async def _revoke(request: web.Request) -> web.Response:
    return web.json_response({"revoked": request.app[STATE].revoke_all_tokens()})


async def _reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.counters.reset()
    state.faults.clear()
    return web.json_response({"reset": True})


@attrs.frozen
class OAuthDialect:
    """How one vendor's OAuth2 token endpoint reads requests and words each refusal."""

    content_type: str
    unreadable: Reply  # another body type, or no grant_type
    unsupported: Reply
    bad_client: Reply
    bad_user: Reply
    dead_refresh: Reply
    missing: Callable[[str], Reply]
    token_fields: Callable[[SandboxState, Grant], dict[str, object]]
    secret_required: bool = True  # False for a public client (Keycloak's wogeez-api)
    rotation_revokes_access: bool = False
    replay_ends_session: bool = False


def oauth_token_endpoint(dialect: OAuthDialect) -> Handler:
    """The password and refresh_token grants, strict about body type and parameter names."""

    async def token(call: Call) -> web.StreamResponse:
        state, request = call.state, call.request
        if request.content_type != dialect.content_type:
            return refuse(state, dialect.unreadable)
        form = await form_fields(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            return refuse(state, dialect.unreadable)
        if grant_type not in ("password", "refresh_token"):
            return refuse(state, dialect.unsupported)
        client_id, client_secret = basic_credentials(request) or (
            form.get("client_id"),
            form.get("client_secret"),
        )
        expected = state.credentials
        if client_id != expected["client_id"] or (
            dialect.secret_required and client_secret != expected["client_secret"]
        ):
            return refuse(state, dialect.bad_client)
        names = ("username", "password") if grant_type == "password" else ("refresh_token",)
        for name in names:
            if name not in form:
                return refuse(state, dialect.missing(name))
        if grant_type == "refresh_token":
            grant = state.refresh(
                form["refresh_token"],
                revoke_old_access=dialect.rotation_revokes_access,
                replay_ends_session=dialect.replay_ends_session,
            )
            if grant is None:
                return refuse(state, dialect.dead_refresh)
        elif (form["username"], form["password"]) == (expected["username"], expected["password"]):
            grant = state.login(form["username"], refresh=True)
        else:
            return refuse(state, dialect.bad_user)
        return reply(200, dialect.token_fields(state, grant), **NO_STORE)

    return token


def _base_url_kwargs(base_url: str, credentials: dict[str, str]) -> dict[str, str]:
    return {"base_url": base_url, **credentials}


@attrs.frozen
class Vendor:
    """What the runner needs to know to start one vendor's emulator."""

    name: str
    credentials: Mapping[str, str] = attrs.field(repr=False)
    token_lifetime: float
    make_app: Callable[[SandboxState], web.Application]
    client_kwargs: Callable[[str, dict[str, str]], dict[str, str]] = _base_url_kwargs
    token_style: TokenStyle = "opaque"
    token_prefix: str = ""


def vendor_spec(name: str) -> Vendor:
    """The ``VENDOR`` declaration of ``vendorkit.sandbox.<name>``."""
    if name not in VENDORS:
        raise ValueError(f"unknown vendor {name!r}; expected one of {', '.join(VENDORS)}")
    spec = importlib.import_module(f"{__package__}.{name}").VENDOR  # the core imports no vendor
    if not isinstance(spec, Vendor):
        raise TypeError(f"{name}.VENDOR is not a Vendor")
    return spec


@attrs.frozen
class RunningSandbox:
    """A started emulator: where it listens and what a client needs to talk to it."""

    vendor: str
    base_url: str
    state: SandboxState
    credentials: dict[str, str] = attrs.field(repr=False)
    client_kwargs: dict[str, str] = attrs.field(repr=False)


@contextlib.asynccontextmanager
async def serve(
    vendor: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token_lifetime: float | None = None,
    credentials: Mapping[str, str] | None = None,
    refresh_lifetime: float | None = None,
    clock_skew: float = 0.0,
) -> AsyncIterator[RunningSandbox]:
    """Run one vendor's emulator on ``host:port`` (0: a free port); ``credentials`` override."""
    spec = vendor_spec(vendor)
    creds = {**spec.credentials, **(credentials or {})}
    state = SandboxState(
        vendor=vendor,
        credentials=creds,
        token_lifetime=spec.token_lifetime if token_lifetime is None else token_lifetime,
        refresh_lifetime=REFRESH_LIFETIME if refresh_lifetime is None else refresh_lifetime,
        clock_skew=clock_skew,
        token_style=spec.token_style,
        token_prefix=spec.token_prefix,
    )
    runner = web.AppRunner(spec.make_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        base_url = f"http://{f'[{host}]' if ':' in host else host}:{bound_port}"
        kwargs = spec.client_kwargs(base_url, dict(creds))
        yield RunningSandbox(vendor, base_url, state, dict(creds), kwargs)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_all(
    vendors: Iterable[str] = VENDORS,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token_lifetime: float | None = None,
    credentials: Mapping[str, Mapping[str, str]] | None = None,
    refresh_lifetime: float | None = None,
    clock_skew: float = 0.0,
) -> AsyncIterator[dict[str, RunningSandbox]]:
    """Run several emulators, each on its own free port (or ``port``, ``port + 1``, ...)."""
    async with contextlib.AsyncExitStack() as stack:
        running: dict[str, RunningSandbox] = {}
        for offset, vendor in enumerate(vendors):
            running[vendor] = await stack.enter_async_context(
                serve(
                    vendor,
                    host=host,
                    port=port + offset if port else 0,
                    token_lifetime=token_lifetime,
                    credentials=(credentials or {}).get(vendor),
                    refresh_lifetime=refresh_lifetime,
                    clock_skew=clock_skew,
                )
            )
        yield running


class SandboxThread:
    """Emulators on a background thread with their own event loop (for the CLI, other processes)."""

    def __init__(
        self,
        vendors: Iterable[str] = VENDORS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float | None = None,
        credentials: Mapping[str, Mapping[str, str]] | None = None,
        refresh_lifetime: float | None = None,
        clock_skew: float = 0.0,
    ) -> None:
        self._serve = functools.partial(
            serve_all,
            tuple(vendors),
            host=host,
            port=port,
            token_lifetime=token_lifetime,
            credentials=credentials,
            refresh_lifetime=refresh_lifetime,
            clock_skew=clock_skew,
        )
        self.sandboxes: dict[str, RunningSandbox] = {}
        self._started: concurrent.futures.Future[dict[str, RunningSandbox]] = (
            concurrent.futures.Future()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="vendorkit-sandbox", daemon=True)

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        self.sandboxes = self._started.result(timeout=30)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the sandbox loop (where the state lives) and return its result."""
        if self._loop is None:
            raise RuntimeError("SandboxThread is not running")

        async def invoke() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with self._serve() as running:
                self._started.set_result(running)
                await self._stop.wait()
        except Exception as exc:
            if self._started.done():
                raise
            self._started.set_exception(exc)  # startup failed (port taken...): __enter__ raises
