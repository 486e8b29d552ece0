"""``Token``, and the one parser that turns any vendor's login answer into one.

The vendors answer a login in three shapes::

    {"token": "<JWT>"}                                         Cloud4Wi: lifetime in the JWT's exp
    {"access_token", "expires_in", "refresh_token", ...}        OAuth2: Wokelo, CloudCX, Keycloak
    {"success", "accessToken", "tokenType", "expiresIn", ...}   CambyoPro, key case varying

Each shape is an attrs class structured by one cattrs converter; keys are matched
case-insensitively so ``accessToken`` and ``accesstoken`` are the same key.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from .errors import TokenResponseError

__all__ = ["Token", "parse_token", "jwt_claims"]


@attrs.frozen(slots=True)
class Token:
    """An access token and what is known about its lifetime. Secrets stay out of ``repr``."""

    access_token: str = attrs.field(repr=False)
    token_type: str = "Bearer"
    #: UNIX seconds (UTC) after which the server stops accepting it; None = no known expiry.
    expires_at: float | None = None
    refresh_token: str | None = attrs.field(default=None, repr=False)
    refresh_expires_at: float | None = None
    scope: str | None = None
    #: When the token was issued (UNIX seconds); the refresh windows scale with
    #: ``expires_at - issued_at``.
    issued_at: float | None = None

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative once expired), or None when it never expires."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    @property
    def lifetime(self) -> float | None:
        """The whole lifetime it was issued with, if known."""
        if self.expires_at is None or self.issued_at is None:
            return None
        return self.expires_at - self.issued_at

    def is_expired(self, now: float | None = None) -> bool:
        remaining = self.remaining(now)
        return remaining is not None and remaining <= 0

    def can_refresh(self, now: float | None = None) -> bool:
        """Whether the refresh token exists and has not expired."""
        if self.refresh_token is None:
            return False
        if self.refresh_expires_at is None:
            return True
        return self.refresh_expires_at > (time.time() if now is None else now)

    def authorization_header(self) -> str:
        """The ``Authorization`` header value, e.g. ``Bearer eyJ...``."""
        scheme = "Bearer" if self.token_type.lower() == "bearer" else self.token_type
        return f"{scheme} {self.access_token}"


# --- the three answer shapes -------------------------------------------------------------


@attrs.frozen
class _OAuth2Answer:
    access_token: str
    token_type: str = "Bearer"
    expires_in: float | None = None
    refresh_token: str | None = None
    refresh_expires_in: float | None = None
    scope: str | None = None


@attrs.frozen
class _CamelAnswer:
    accesstoken: str
    success: bool = True
    tokentype: str = "Bearer"
    expiresin: float | None = None
    refreshtoken: str | None = None
    message: str | None = None


@attrs.frozen
class _JWTAnswer:
    token: str


_converter = cattrs.Converter(forbid_extra_keys=False)
# A JSON number or numeric string is accepted as a lifetime; bools are not numbers here.


def _number(value: object, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _string(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


_converter.register_structure_hook(float, _number)
_converter.register_structure_hook(str, _string)


def jwt_claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, decoded without checking the signature (we only read ``exp``)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _jwt_expiry(jwt: str) -> float | None:
    exp = jwt_claims(jwt).get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def _expires(now: float, seconds: float | None) -> float | None:
    return None if seconds is None else now + seconds


def _describe(body: Mapping[str, Any]) -> str:
    keys = ", ".join(sorted(str(k) for k in body)) or "none"
    return f"keys seen: {keys}"


def parse_token(
    body: object,
    *,
    default_lifetime: float | None = None,
    now: float | None = None,
    header_token: str | None = None,
) -> Token:
    """Turn a login or refresh answer of any known shape into a :class:`Token`.

    ``default_lifetime`` applies when the answer says nothing of expiry (Cloud4Wi
    documents one day). ``header_token`` is a token found in the response's
    ``Authorization`` header, used when the body has none.

    Raises :class:`TokenResponseError` naming the keys it saw, never their values.
    """
    now = time.time() if now is None else now
    if not isinstance(body, Mapping):
        if header_token:
            body = {}
        else:
            raise TokenResponseError(
                f"login answer is a JSON {type(body).__name__}, not an object with a token"
            )
    lowered = {str(k).lower(): v for k, v in body.items()}
    try:
        if "success" in lowered and lowered["success"] is not True:
            # Its message is not quoted: a value could hold a secret, and this answer
            # cannot be redacted here (the HTTP-status path in auth.login_error can).
            raise TokenResponseError(f"login answer says success=false ({_describe(body)})")
        if "access_token" in lowered:
            oauth = _converter.structure(lowered, _OAuth2Answer)
            return _token(
                body, now, oauth.access_token, oauth.token_type, oauth.expires_in,
                default_lifetime, refresh_token=oauth.refresh_token,
                refresh_lifetime=oauth.refresh_expires_in, scope=oauth.scope,
            )
        if "accesstoken" in lowered:
            camel = _converter.structure(lowered, _CamelAnswer)
            return _token(
                body, now, camel.accesstoken, camel.tokentype, camel.expiresin,
                default_lifetime, refresh_token=camel.refreshtoken,
            )
        if "token" in lowered or header_token:
            jwt = _converter.structure(lowered, _JWTAnswer).token if "token" in lowered else ""
            return _token(body, now, jwt or header_token or "", "Bearer", None, default_lifetime)
    except TokenResponseError:
        raise
    except (cattrs.BaseValidationError, TypeError, ValueError, OverflowError):
        raise TokenResponseError(
            f"login answer has a field of the wrong type ({_describe(body)})"
        ) from None
    raise TokenResponseError(f"login answer carries no token ({_describe(body)})")


def _token(
    body: Mapping[str, Any],
    now: float,
    access_token: str,
    token_type: str,
    lifetime: float | None,
    default_lifetime: float | None,
    *,
    refresh_token: str | None = None,
    refresh_lifetime: float | None = None,
    scope: str | None = None,
) -> Token:
    """One place that decides expiry: the answer's lifetime, else the JWT's ``exp``, else
    the strategy's documented default."""
    expires_at = _expires(now, lifetime)
    if expires_at is None:
        expires_at = _jwt_expiry(access_token)
    if expires_at is None:
        expires_at = _expires(now, default_lifetime)
    return Token(
        access_token=_non_empty(access_token, body),
        token_type=token_type or "Bearer",
        expires_at=expires_at,
        refresh_token=refresh_token or None,
        refresh_expires_at=_expires(now, refresh_lifetime or None),
        scope=scope,
        issued_at=now,
    )


def _non_empty(value: str, body: Mapping[str, Any]) -> str:
    if not value or not value.strip():
        raise TokenResponseError(f"login answer has an empty token ({_describe(body)})")
    return value
