"""``Token``, and the one parser that turns any vendor's login answer into one.

The vendors answer a login in three shapes::

    {"token": "<JWT>"}                                         Cloud4Wi: lifetime in the JWT's exp
    {"access_token", "expires_in", "refresh_token", ...}        OAuth2: Wokelo, CloudCX, Keycloak
    {"success", "accessToken", "tokenType", "expiresIn", ...}   CambyoPro, key case varying

Real servers vary within what their docs allow, so the parser reads by rule, not by shape:

- Keys match in any style (``expiresIn``, ``expires_in``, ``EXPIRES-IN``), whichever token
  key stands beside them; an answer wrapped as ``{"data": {...}}`` is read inside.
- The token itself is required: a non-empty string without control characters (it goes
  into a header). The refresh token, when present, must be free of them too.
- An optional field that cannot be read (``expires_in: true``, a ``scope`` object) is
  ignored with a WARNING naming the field, never its value; it never aborts a login.
  ``"3599s"`` reads as 3599 s, a ``scope`` list is joined with spaces, a null
  ``token_type`` is ``Bearer``.
- Expiry is the answer's lifetime, else the JWT's ``exp`` (milliseconds when above 1e11),
  else the vendor's documented default. A lifetime or ``exp`` that is <= 0, already past,
  not finite or over ten years is "unknown" (one WARNING): a usable JWT ``exp`` is taken
  instead, else ``expires_at`` is None and the client re-authenticates when the vendor
  rejects the token, instead of logging in on every call.
- Whatever goes wrong, :func:`parse_token` raises :class:`TokenResponseError`, naming keys,
  never values.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import TokenResponseError

__all__ = ["Token", "parse_token", "jwt_claims"]

logger = logging.getLogger("vendorkit")

#: Past this a lifetime is a server's bug, not a promise (and too long for Redis).
MAX_LIFETIME = 10 * 365 * 86400.0
#: An ``exp`` above this (the year 5138 in seconds) is in milliseconds.
_EXP_IN_MS = 1e11
_SECONDS = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*s?\s*", re.IGNORECASE)
#: RFC 9110 token characters: what an Authorization scheme may be made of.
_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


# --- parsing -------------------------------------------------------------------------------


def jwt_claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, decoded without checking the signature (we only read ``exp``);
    ``{}`` for a token that is not a JWT.

    Raises :class:`TokenResponseError` for a payload nested too deeply to decode.
    """
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    except RecursionError:
        raise TokenResponseError("login answer's JWT payload is nested too deeply") from None
    return claims if isinstance(claims, dict) else {}


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
    ``Authorization`` header, used when the body has none. The module docstring states
    what is tolerated.

    Raises :class:`TokenResponseError` naming the keys it saw, never their values.
    """
    now = time.time() if now is None else now
    try:
        return _parse(body, default_lifetime, now, header_token)
    except TokenResponseError:
        raise
    except Exception as exc:  # a hostile answer gets a typed error, never another exception
        raise TokenResponseError(
            f"login answer could not be read ({type(exc).__name__})"
        ) from None


def _parse(
    body: object, default_lifetime: float | None, now: float, header_token: str | None
) -> Token:
    if not isinstance(body, Mapping):
        if not header_token:
            raise TokenResponseError(
                f"login answer is a JSON {type(body).__name__}, not an object with a token"
            )
        body = {}
    fields = _answer(body)
    access_token = _access_token(fields, body, header_token)
    refresh_token = _refresh_token(fields, body)
    return Token(
        access_token=access_token,
        token_type=_token_type(fields),
        expires_at=_expiry(fields, access_token, now, default_lifetime),
        refresh_token=refresh_token,
        refresh_expires_at=_refresh_expiry(fields, now),
        scope=_scope(fields),
        issued_at=now,
    )


# --- fields, in any key style ---------------------------------------------------------------

#: An answer's fields by key in one style (``expiresIn``, ``expires_in`` -> ``expiresin``),
#: each with its key as sent, for warnings and errors.
_Fields = dict[str, tuple[str, object]]
_ABSENT: tuple[str, object] = ("", None)
_TOKEN_KEYS = ("accesstoken", "token")


def _fields(body: Mapping[Any, Any]) -> _Fields:
    fields: _Fields = {}
    for key, value in body.items():
        name = str(key).replace("_", "").replace("-", "").lower()
        if fields.get(name, _ABSENT)[1] is None:  # a null never hides a value
            fields[name] = (str(key), value)
    return fields


def _has_token(fields: _Fields) -> bool:
    return any(fields.get(name, _ABSENT)[1] is not None for name in _TOKEN_KEYS)


def _answer(body: Mapping[Any, Any]) -> _Fields:
    """The fields beside the token: the answer's own, or those inside ``{"data": {...}}``."""
    fields = _fields(body)
    _check_success(fields, body)
    inner = fields.get("data", _ABSENT)[1]
    if not _has_token(fields) and isinstance(inner, Mapping):
        inner_fields = _fields(inner)
        if _has_token(inner_fields):
            _check_success(inner_fields, body)
            return inner_fields
    return fields


def _check_success(fields: _Fields, body: Mapping[Any, Any]) -> None:
    if "success" in fields and fields["success"][1] is not True:
        # Its message is not quoted: a value could hold a secret, and this answer
        # cannot be redacted here (the HTTP-status path in auth.login_error can).
        raise TokenResponseError(f"login answer says success=false ({_describe(body)})")


def _describe(body: Mapping[Any, Any], limit: int = 30) -> str:
    keys = sorted(str(k) for k in body)
    inner = next((v for k, v in body.items() if str(k).lower() == "data"), None)
    if isinstance(inner, Mapping):
        keys += sorted(f"data.{k}" for k in inner)
    shown = ", ".join(keys[:limit]) or "none"
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"keys seen: {shown}{more}"


def _ignore(field: str, why: str) -> None:
    logger.warning("vendorkit: ignoring the login answer's %s: %s", field, why)


# --- the token itself (required) and the refresh token ------------------------------------


def _access_token(fields: _Fields, body: Mapping[Any, Any], header_token: str | None) -> str:
    for name in _TOKEN_KEYS:
        key, value = fields.get(name, _ABSENT)
        if value is not None:
            return _secret(key, value, body)
    if header_token:
        return _secret("Authorization header", header_token, body)
    raise TokenResponseError(f"login answer carries no token ({_describe(body)})")


def _secret(key: str, value: object, body: Mapping[Any, Any]) -> str:
    """A token as the answer gives it: a non-empty string that a header can carry."""
    if not isinstance(value, str):
        raise TokenResponseError(
            f"login answer has a field of the wrong type: {key} ({_describe(body)})"
        )
    if not value.strip():
        raise TokenResponseError(f"login answer has an empty token ({_describe(body)})")
    if _CONTROL.search(value):
        raise TokenResponseError(
            f"login answer has a token with control characters: {key} ({_describe(body)})"
        )
    return value


def _refresh_token(fields: _Fields, body: Mapping[Any, Any]) -> str | None:
    key, value = fields.get("refreshtoken", _ABSENT)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        _ignore(key, "not a string")
        return None
    return _secret(key, value, body)


# --- optional fields: ignored with a warning when unreadable -------------------------------


def _token_type(fields: _Fields) -> str:
    key, value = fields.get("tokentype", _ABSENT)
    if value is None or value == "":
        return "Bearer"
    if isinstance(value, str) and _SCHEME.fullmatch(value):
        return value
    _ignore(key, "not an authorization scheme")
    return "Bearer"


def _scope(fields: _Fields) -> str | None:
    key, value = fields.get("scope", _ABSENT)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return " ".join(value)
    _ignore(key, "neither a string nor a list of strings")
    return None


def _seconds(fields: _Fields, name: str) -> tuple[str, float] | None:
    """A lifetime field and its seconds: a JSON number, or a string such as ``"3599s"``."""
    key, value = fields.get(name, _ABSENT)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return key, _float(value)
    if isinstance(value, str) and (match := _SECONDS.fullmatch(value)):
        return key, float(match[1])
    _ignore(key, "not a number of seconds")
    return None


def _float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        return math.inf if value > 0 else -math.inf


def _usable(seconds: float) -> bool:
    """Whether a remaining lifetime is one to plan refreshes by."""
    return math.isfinite(seconds) and 0 < seconds <= MAX_LIFETIME


def _jwt_expiry(jwt: str) -> float | None:
    """The JWT's ``exp`` in seconds (converted when clearly in milliseconds)."""
    exp = jwt_claims(jwt).get("exp")
    if exp is None:
        return None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        _ignore("JWT exp claim", "not a number")
        return None
    seconds = _float(exp)
    return seconds / 1000 if seconds > _EXP_IN_MS else seconds


def _expiry(
    fields: _Fields, access_token: str, now: float, default_lifetime: float | None
) -> float | None:
    """One place decides expiry: the answer's lifetime, else the JWT's ``exp``, else the
    vendor's documented default; an unusable one is "unknown" (None) unless ``exp`` helps."""
    lifetime = _seconds(fields, "expiresin")
    if lifetime is not None and _usable(lifetime[1]):
        return now + lifetime[1]
    exp = _jwt_expiry(access_token)
    exp_usable = exp is not None and _usable(exp - now)
    if lifetime is None:
        if exp is None:
            return None if default_lifetime is None else now + default_lifetime
        if exp_usable:
            return exp
    unusable = "JWT exp claim" if lifetime is None else lifetime[0]
    instead = "the JWT's exp is used instead" if exp_usable else (
        "its expiry is unknown: the token is used until the vendor rejects it"
    )
    logger.warning(
        "vendorkit: the login answer's %s is <= 0, past, not finite or over ten years; %s",
        unusable, instead,
    )
    return exp if exp_usable else None


def _refresh_expiry(fields: _Fields, now: float) -> float | None:
    lifetime = _seconds(fields, "refreshexpiresin")
    if lifetime is None or lifetime[1] == 0:  # Keycloak's 0: an offline token, no expiry
        return None
    if _usable(lifetime[1]):
        return now + lifetime[1]
    logger.warning(
        "vendorkit: the login answer's %s is < 0, not finite or over ten years; the refresh "
        "token is kept until the vendor refuses it", lifetime[0],
    )
    return None
