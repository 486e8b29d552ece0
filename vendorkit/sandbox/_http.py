"""The emulators' HTTP side: request helpers, routes, fault injection, control routes, the
OAuth2 token endpoint every OAuth vendor declares."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal

import attrs
from aiohttp import web

from ._quota import retry_after
from ._state import (
    HTML_ERROR_BODY,
    JSON_ERROR_BODY,
    NO_STORE,
    Fault,
    Faults,
    Grant,
    Issued,
    Refusal,
    Reply,
    SandboxState,
)
from ._variants import RefreshRefusal, Settings


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


def token_answer(settings: Settings, body: Mapping[str, object]) -> dict[str, object]:
    """A login or refresh answer with the selected variants' odd optional fields."""
    shaped: dict[str, object] = {}
    for key, value in body.items():
        folded = key.lower().replace("_", "")
        if folded == "expiresin":
            key, value = settings.lifetime_key or key, _lifetime(settings, value)
        elif folded == "tokentype" and settings.token_type_null:
            value = None
        elif key == "scope" and settings.scope_list and isinstance(value, str):
            value = value.split()
        shaped[key] = value
    return {"data": shaped} if settings.wrapped else shaped


def _lifetime(settings: Settings, value: object) -> object:
    if settings.lifetime == "suffixed":
        return f"{value}s"
    if settings.lifetime == "empty":
        return ""
    return True if settings.lifetime == "true" else value


def token_reply(state: SandboxState, body: Mapping[str, object], /, **headers: str) -> web.Response:
    """A successful login or refresh answer, shaped by the variants, never cached."""
    return reply(200, token_answer(state.settings, body), **NO_STORE, **headers)


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
            wait = state.throttle(token.subject) if route.target == "api" else 0.0
            if wait > 0:
                return _throttled(wait)
        return await route.handler(Call(request, state, token))

    return handle


def _throttled(wait: float) -> web.Response:
    """The quota's 429: Retry-After in whole seconds, rounded up."""
    seconds_ = retry_after(wait)
    body = {"error": "too_many_requests", "message": "Rate limit exceeded", "retry_after": seconds_}
    return reply(429, body, **{"Retry-After": str(seconds_)})


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
        answer = await handler(request)
    else:
        state.counters.faults += 1
        answer = await _inject(fault, request, handler)
    state.counters.rate_limited += answer.status == 429
    return answer


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
        form = await _token_request(call, dialect)
        if isinstance(form, web.Response):
            return form
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
                return refuse(state, _refresh_refusal(state.settings.refresh_refusal, dialect))
        elif (form["username"], form["password"]) == (expected["username"], expected["password"]):
            grant = state.login(form["username"], refresh=state.settings.refresh_token)
        else:
            return refuse(state, dialect.bad_user)
        return token_reply(state, dialect.token_fields(state, grant))

    return token


async def _token_request(call: Call, dialect: OAuthDialect) -> dict[str, str] | web.Response:
    """The token request's fields, or the refusal of a body of the wrong type."""
    state, request = call.state, call.request
    if state.settings.token_request == "json":  # as Django REST framework refuses other types
        if request.content_type != "application/json":
            sent = request.headers.get("Content-Type", "")
            return refuse(state, (415, {"detail": f'Unsupported media type "{sent}" in request.'}))
        body = await json_object(request) or {}
        return {name: value for name, value in body.items() if isinstance(value, str)}
    if request.content_type != dialect.content_type:
        return refuse(state, dialect.unreadable)
    return await form_fields(request)


#: Refusals of a dead refresh token other than the dialect's own ``invalid_grant``.
REFRESH_REFUSALS: dict[RefreshRefusal, Reply] = {
    "invalid_request": (400, {"error": "invalid_request"}),
    "token_not_valid": (401, {"detail": "Token is invalid or expired", "code": "token_not_valid"}),
}


def _refresh_refusal(style: RefreshRefusal, dialect: OAuthDialect) -> Reply:
    return REFRESH_REFUSALS.get(style, dialect.dead_refresh)
