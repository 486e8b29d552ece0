"""The emulators' state: credentials, the token registry, counters and faults."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Literal, TypeVar, cast

import attrs

from ._quota import Limiter, Quota
from ._variants import Settings, TokenStyle

VENDORS = ("cloud4wi", "wokelo", "cloudcx", "cambyopro", "wogeez")
REFRESH_LIFETIME = 1800.0  # Keycloak's SSO idle timeout, used for every vendor's refresh tokens
SHUTDOWN_TIMEOUT = 1.0  # a slow-fault request left in flight must not hold a test up for 60 s
JSON_ERROR_BODY = '{"status": "ok", "data": [{"id": 1, "name": "trunc'
HTML_ERROR_BODY = "<html><body><h1>502 Bad Gateway</h1></body></html>"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Target = Literal["api", "auth", "all"]
Refusal = Literal["missing", "unknown", "revoked", "expired"]
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
    #: Every 429 answered: the quota's and injected ones.
    rate_limited: int = 0
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
    settings: Settings = attrs.Factory(Settings)
    variants: tuple[str, ...] = ()
    _limiter: Limiter | None = attrs.field(default=None, init=False, repr=False)
    _tokens: dict[str, Issued] = attrs.field(factory=dict, init=False, repr=False)
    _sessions: dict[str, list[Issued]] = attrs.field(factory=dict, init=False, repr=False)
    _jwt_key: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), init=False, repr=False)

    def now(self) -> float:
        return time.time() + self.clock_skew

    @property
    def quota(self) -> Quota | None:
        """The per-credential quota of protected API routes; None (the default): no quota."""
        return None if self._limiter is None else self._limiter.quota

    @quota.setter
    def quota(self, quota: Quota | None) -> None:
        self._limiter = None if quota is None else Limiter(quota)

    def throttle(self, credential: str) -> float:
        """0.0 if ``credential`` may call now (a permit is taken), else seconds to wait."""
        return 0.0 if self._limiter is None else self._limiter.wait(credential)

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
