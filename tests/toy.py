"""A toy vendor for the core's tests: logins, tokens, programmable faults and counters.

One aiohttp.web app on 127.0.0.1 speaks both login styles the core supports:

- ``POST /login``        JSON ``{"username", "password"}`` -> CambyoPro-style camelCase token
- ``POST /logout``       revokes the bearer token
- ``POST /oauth/token``  OAuth2 form grants ``password`` and ``refresh_token`` (rotating)
- ``POST /oauth/revoke`` RFC 7009 revocation of a refresh or access token
- ``GET /data``          protected; echoes the request's headers but Authorization;
                         ``?delay=s`` waits before checking the token, so a
                         revocation can land while the request is in flight
- ``POST /items``        protected; answers 201 with the JSON it got
- ``GET /users``         protected; a paged listing (``?page=`` from 1, ``?size=``)
- ``POST /echo``         unprotected; answers with the JSON it got

Every protected answer names the token's ``generation`` (1 for the first token issued,
2 for the next...) so a test can tell which token a call carried without seeing it.
Counters are taken when a request arrives, before any delay, so a request the client
abandons is still counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
from aiohttp import web

from vendorkit import JSONLogin, OAuth2PasswordGrant
from vendorkit.sandbox import serve_app

USERNAME = "toy-user"
PASSWORD = "toy-password-Zq8vXk2Lw9"
CLIENT_ID = "toy-client"
CLIENT_SECRET = "toy-client-secret-Hn4Rt7Pm1c"


@attrs.define
class Answer:
    """One programmed answer, used instead of the route's own."""

    status: int = 503
    retry_after: str | None = None
    #: JSON-encodable, or a str sent as is; ``{token}`` in a str is replaced by the
    #: bearer token or form ``token`` the request carried (a careless server echoing it).
    body: Any = None
    headers: dict[str, str] = attrs.Factory(dict)
    #: Close the connection without answering.
    drop: bool = False
    #: Wait this long before answering.
    delay: float = 0.0


@attrs.define
class Counters:
    """What the toy saw. ``requests`` is keyed by ``"METHOD /path"``."""

    logins: int = 0
    failed_logins: int = 0
    refreshes: int = 0
    failed_refreshes: int = 0
    logouts: int = 0
    revocations: int = 0
    rejected: int = 0
    requests: collections.Counter[str] = attrs.Factory(collections.Counter)


@attrs.define
class Grant:
    access_token: str
    refresh_token: str
    generation: int
    expires_at: float | None
    revoked: bool = False

    def valid(self) -> bool:
        return not self.revoked and (self.expires_at is None or time.time() < self.expires_at)


class Toy:
    """The toy vendor's state and knobs; ``start()`` serves it on 127.0.0.1."""

    username = USERNAME
    password = PASSWORD
    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET

    def __init__(self, *, token_lifetime: float | None = 3600.0) -> None:
        #: Lifetime of new access tokens (None: they never expire and say nothing of it).
        self.token_lifetime = token_lifetime
        #: Seconds a login / a refresh takes, to widen races.
        self.login_delay = 0.0
        self.refresh_delay = 0.0
        #: Seconds between issuing a refreshed token and answering with it.
        self.refresh_answer_delay = 0.0
        #: A refresh revokes the access token it replaces as it starts (Django OAuth Toolkit).
        self.refresh_revokes_access = False
        #: Error bodies of failed logins and refreshes quote what was sent (secrets too).
        self.echo_credentials = False
        #: Listing size behind GET /users.
        self.users = 7
        self.counters = Counters()
        self.issued: list[str] = []  # every access and refresh token ever issued
        self._fail_logins = 0
        self._fail_refreshes: tuple[int, int, str | dict[str, Any]] = (0, 0, "")
        self._answers: dict[str, collections.deque[Answer]] = collections.defaultdict(
            collections.deque
        )
        self._grants: list[Grant] = []
        self._watches: list[tuple[str, int, asyncio.Event]] = []
        self._serving = contextlib.AsyncExitStack()
        self.base_url = ""

    # --- knobs ------------------------------------------------------------------------

    def answer_next(self, n: int = 1, route: str = "GET /data", **answer: Any) -> None:
        """The next ``n`` requests to ``route`` get this answer instead of the real one."""
        for _ in range(n):
            self._answers[route].append(Answer(**answer))

    def fail_logins(self, n: int) -> None:
        """Refuse the next ``n`` logins (good credentials or not) with 401."""
        self._fail_logins = n

    def fail_refreshes(
        self, n: int, status: int = 500, error: str | dict[str, Any] = "server_error"
    ) -> None:
        """Fail the next ``n`` refresh grants with ``status`` and OAuth2 ``error`` (or,
        given a dict, that whole JSON body: Django REST's ``{"detail", "code"}``...)."""
        self._fail_refreshes = (n, status, error)

    def revoke_all_tokens(self) -> None:
        """Every token issued so far stops working, access and refresh alike."""
        for grant in self._grants:
            grant.revoked = True

    def forget_refresh_tokens(self) -> None:
        """Refresh tokens become unknown (``invalid_grant``); access tokens still work."""
        for grant in self._grants:
            grant.refresh_token = ""

    async def arrivals(self, route: str, n: int) -> None:
        """Wait until ``n`` requests to ``route`` have arrived (answered or not)."""
        arrived = asyncio.Event()
        self._watches.append((route, n, arrived))
        self._notify()
        await arrived.wait()

    def _notify(self) -> None:
        for route, n, arrived in self._watches:
            if self.counters.requests[route] >= n:
                arrived.set()
        self._watches = [w for w in self._watches if not w[2].is_set()]

    def live_tokens(self) -> int:
        """How many issued access tokens the toy would still accept."""
        return sum(grant.valid() for grant in self._grants)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self, port: int = 0) -> Toy:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes([
            web.post("/login", self._login),
            web.post("/logout", self._logout),
            web.post("/oauth/token", self._token),
            web.post("/oauth/revoke", self._revoke),
            web.get("/data", self._data),
            web.post("/items", self._items),
            web.get("/users", self._users),
            web.post("/echo", self._echo),
        ])
        self._serving = contextlib.AsyncExitStack()
        self.base_url = await self._serving.enter_async_context(
            serve_app(app, port=port, shutdown_timeout=0.5)
        )
        return self

    async def stop(self) -> None:
        await self._serving.aclose()

    # --- plumbing ---------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = f"{request.method} {request.path}"
        self.counters.requests[route] += 1
        self._notify()
        queue = self._answers.get(route)
        if not queue:
            return await handler(request)  # type: ignore[no-any-return]
        answer = queue.popleft()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        headers = dict(answer.headers)
        if answer.retry_after is not None:
            headers["Retry-After"] = answer.retry_after
        body = answer.body if answer.body is not None else {"error": "toy fault"}
        if isinstance(body, str):
            text = body.replace("{token}", await _sent_token(request))
        else:
            text = json.dumps(body)
        return web.Response(status=answer.status, text=text, headers=headers,
                            content_type="application/json")

    def _issue(self) -> Grant:
        grant = Grant(
            access_token="tok-" + secrets.token_urlsafe(24),
            refresh_token="rt-" + secrets.token_urlsafe(24),
            generation=len(self._grants) + 1,
            expires_at=None if self.token_lifetime is None else time.time() + self.token_lifetime,
        )
        self._grants.append(grant)
        self.issued += [grant.access_token, grant.refresh_token]
        return grant

    def _grant_for(self, request: web.Request) -> Grant | None:
        token = _bearer(request)
        for grant in self._grants:
            if token and grant.access_token == token and grant.valid():
                return grant
        return None

    def _reject(self) -> web.Response:
        self.counters.rejected += 1
        return web.json_response({"error": "invalid_token"}, status=401)

    def _login_refused(self) -> bool:
        if self._fail_logins > 0:
            self._fail_logins -= 1
            return True
        return False

    def _refused(self, status: int, error: str, sent: str) -> web.Response:
        description = f"refused {sent}" if self.echo_credentials else "refused"
        return web.json_response({"error": error, "error_description": description},
                                 status=status)

    def _token_answer(self, grant: Grant, *, oauth: bool) -> web.Response:
        if oauth:
            body: dict[str, Any] = {"access_token": grant.access_token, "token_type": "Bearer",
                                    "refresh_token": grant.refresh_token}
            if self.token_lifetime is not None:
                body["expires_in"] = self.token_lifetime
        else:
            body = {"success": True, "accessToken": grant.access_token, "tokenType": "Bearer"}
            if self.token_lifetime is not None:
                body["expiresIn"] = self.token_lifetime
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    # --- routes -----------------------------------------------------------------------

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        password = str(body.get("password"))
        if (body.get("username"), password) != (USERNAME, PASSWORD) or self._login_refused():
            self.counters.failed_logins += 1
            text = f"bad credentials {password}" if self.echo_credentials else "bad credentials"
            return web.json_response({"success": False, "message": text}, status=401)
        self.counters.logins += 1
        await asyncio.sleep(self.login_delay)
        return self._token_answer(self._issue(), oauth=False)

    async def _logout(self, request: web.Request) -> web.Response:
        grant = self._grant_for(request)
        if grant is None:
            return self._reject()
        grant.revoked = True
        self.counters.logouts += 1
        return web.json_response({"success": True})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            self.counters.failed_logins += 1
            return self._refused(401, "invalid_client", str(form.get("client_secret")))
        grant_type = form.get("grant_type")
        if grant_type == "password":
            password = str(form.get("password"))
            if (form.get("username"), password) != (USERNAME, PASSWORD) or self._login_refused():
                self.counters.failed_logins += 1
                return self._refused(400, "invalid_grant", password)
            self.counters.logins += 1
            await asyncio.sleep(self.login_delay)
            return self._token_answer(self._issue(), oauth=True)
        if grant_type == "refresh_token":
            sent = str(form.get("refresh_token"))
            n, status, error = self._fail_refreshes
            old = next((g for g in self._grants
                        if sent and g.refresh_token == sent and not g.revoked), None)
            if n > 0 or old is None:
                self.counters.failed_refreshes += 1
                if old is None:
                    return self._refused(400, "invalid_grant", sent)
                self._fail_refreshes = (n - 1, status, error)
                if isinstance(error, dict):
                    return web.json_response(error, status=status)
                return self._refused(status, error, sent)
            self.counters.refreshes += 1
            old.refresh_token = ""  # rotation: a refresh token works once
            old.revoked = old.revoked or self.refresh_revokes_access
            await asyncio.sleep(self.refresh_delay)
            issued = self._issue()
            await asyncio.sleep(self.refresh_answer_delay)
            return self._token_answer(issued, oauth=True)
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    async def _revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return self._refused(401, "invalid_client", "")
        token = form.get("token")
        self.counters.revocations += 1
        for grant in self._grants:
            if token in (grant.access_token, grant.refresh_token):
                grant.revoked = True
        return web.json_response({})

    async def _data(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("delay", 0)))
        grant = self._grant_for(request)
        if grant is None:
            return self._reject()
        seen = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        return web.json_response({"ok": True, "generation": grant.generation, "headers": seen},
                                 headers={"X-Request-Id": "req-ok"})

    async def _items(self, request: web.Request) -> web.Response:
        grant = self._grant_for(request)
        if grant is None:
            return self._reject()
        return web.json_response({"created": await request.json()}, status=201)

    async def _users(self, request: web.Request) -> web.Response:
        grant = self._grant_for(request)
        if grant is None:
            return self._reject()
        page, size = int(request.query["page"]), int(request.query["size"])
        start = (page - 1) * size
        users = [{"id": i, "userName": f"user{i}"}
                 for i in range(start + 1, min(start + size, self.users) + 1)]
        return web.json_response({"code": 0, "data": {"list": users, "totalCount": self.users}})

    async def _echo(self, request: web.Request) -> web.Response:
        return web.json_response({"echo": await request.json()})


def _bearer(request: web.Request) -> str | None:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return credential if scheme == "Bearer" and credential else None


async def _sent_token(request: web.Request) -> str:
    bearer = _bearer(request)
    if bearer is None and request.content_type == "application/x-www-form-urlencoded":
        return str((await request.post()).get("token", ""))
    return bearer or ""


@contextlib.asynccontextmanager
async def serve(**kwargs: Any) -> AsyncIterator[Toy]:
    """A running toy in the current event loop."""
    toy = await Toy(**kwargs).start()
    try:
        yield toy
    finally:
        await toy.stop()


@contextlib.contextmanager
def serve_in_thread(**kwargs: Any) -> Iterator[Toy]:
    """A running toy in its own thread and event loop, for tests that run their own loops."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    toy = Toy(**kwargs)
    try:
        asyncio.run_coroutine_threadsafe(toy.start(), loop).result(5)
        yield toy
    finally:
        asyncio.run_coroutine_threadsafe(toy.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def json_login(toy: Toy, *, password: str = PASSWORD, logout: bool = True) -> JSONLogin:
    """The toy's JSON login, as a vendor module would declare it."""
    return JSONLogin(
        vendor="toy",
        login_path="/login",
        body={"username": USERNAME, "password": password},
        identity_field="username",
        logout_path="/logout" if logout else None,
    )


def oauth2_grant(
    toy: Toy, *, password: str = PASSWORD, revocation: bool = True
) -> OAuth2PasswordGrant:
    """The toy's OAuth2 password grant, refreshed and revoked at its /oauth endpoints."""
    return OAuth2PasswordGrant(
        vendor="toy",
        token_url="/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        username=USERNAME,
        password=password,
        revocation_url="/oauth/revoke" if revocation else None,
    )
