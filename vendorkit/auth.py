"""How a vendor logs in: the ``AuthStrategy`` interface and the generic strategies.

A vendor module declares its login by configuring one of these; the mechanisms
(single flight, refresh windows, re-auth) live in ``tokens.py`` and never here.

- :class:`JSONLogin`           POST JSON credentials, get a token (Cloud4Wi, CambyoPro)
- :class:`OAuth2PasswordGrant` RFC 6749 password + refresh grants, form/multipart (Wokelo, CloudCX)
- :class:`OIDCPasswordGrant`   the same, endpoints from OpenID Connect discovery (Keycloak: Wogeez)
- :class:`APIKeyAuth`          a fixed key sent with every request, no login at all (CloudCX)
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import attrs

from .errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidGrantError,
    ResponseParseError,
    error_for_status,
)
from .redaction import Redactor, SecretFields
from .response import Response
from .token import Token, parse_token
from .urls import check_base_url

logger = logging.getLogger("vendorkit")

__all__ = [
    "APIKeyAuth",
    "AuthStrategy",
    "AuthTransport",
    "JSONLogin",
    "OAuth2PasswordGrant",
    "OIDCPasswordGrant",
    "require",
]


class AuthTransport(Protocol):
    """What a strategy may do on the network: one request, retried on transient failures.

    ``url`` is a path below the session's base URL, or an absolute URL. ``form`` is sent
    as application/x-www-form-urlencoded, ``multipart`` as multipart/form-data, ``json`` as
    JSON. Error statuses are returned, not raised: the strategy knows what they mean.
    """

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        multipart: Mapping[str, str] | None = None,
        token: Token | None = None,
    ) -> Response: ...


def require(name: str, value: str | None) -> str:
    """A credential argument that must be a non-blank string; the error names it, not its value."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} is required and must be a non-empty string")
    return value


class AuthStrategy(abc.ABC):
    """One vendor's login, refresh and logout. Subclasses are declarations plus a little I/O."""

    #: The vendor's name, for logs, events and token-store keys.
    vendor: str
    #: Statuses of an API answer that mean "this token is no longer good": re-auth and replay.
    rejection_statuses: frozenset[int] = frozenset({401})
    #: The header that carries the token.
    header_name: str = "Authorization"

    @abc.abstractmethod
    async def login(self, transport: AuthTransport) -> Token:
        """Obtain a new token with the long-lived credentials."""

    @property
    def supports_refresh(self) -> bool:
        """Whether this login hands out refresh tokens worth using."""
        return False

    async def refresh(self, transport: AuthTransport, token: Token) -> Token:
        """Exchange ``token.refresh_token`` for a new token; ``InvalidGrantError`` if refused."""
        raise NotImplementedError

    @property
    def supports_logout(self) -> bool:
        """Whether the vendor documents a way to revoke a token."""
        return False

    async def logout(self, transport: AuthTransport, token: Token) -> bool:
        """Revoke ``token`` at the server, where the vendor documents a way to (default: none).

        Returns whether a revocation request was sent.
        """
        return False

    def logout_error(self, response: Response, token: Token) -> APIError:
        """The typed error for a refused logout; the token's own values are redacted too."""
        return login_error(
            response,
            vendor=self.vendor,
            action="logout",
            secrets=(*self.secrets(), *_token_secrets(token)),
        )

    def static_token(self) -> Token | None:
        """A token that needs no login (an API key), else None."""
        return None

    def header_value(self, token: Token) -> str:
        return token.authorization_header()

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """Who logs in (a client id, a username): not secret, hashed into token-store keys."""

    @abc.abstractmethod
    def secrets(self) -> tuple[str, ...]:
        """Every secret this strategy holds, so logs and error messages can redact them."""


def _bearer_from_header(response: Response) -> str | None:
    value = response.headers.get("Authorization", "")
    scheme, _, credential = value.partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


Action = Literal["login", "refresh", "logout"]


def login_error(
    response: Response, *, vendor: str, action: Action, secrets: tuple[str, ...]
) -> APIError:
    """The typed error for a refused login, refresh or logout, quoting the server's reason
    (redacted)."""
    redact = Redactor(secrets)
    code = response.json_object().get("error")
    reason = (response.reason(redact=redact) or response.excerpt(120, redact=redact)
              or "no reason given")
    common: dict[str, Any] = {
        "status": response.status,
        "method": response.method,
        "url": response.url,
        "request_id": response.request_id,
        "body_excerpt": reason,
    }
    if action == "refresh" and code == "invalid_grant":
        return InvalidGrantError(
            f"{vendor} refused the refresh token (HTTP {response.status}): {reason}; "
            "a full login is needed",
            **common,
        )
    if response.status in (400, 401, 403):
        return AuthenticationError(
            f"{vendor} {action} failed (HTTP {response.status}): {reason}; check the credentials",
            **common,
        )
    return error_for_status(
        response.status,
        method=response.method,
        url=response.url,
        request_id=response.request_id,
        body_excerpt=reason,
        detail=f"{vendor} {action} failed: {reason}",
    )


Encoding = Literal["form", "multipart", "json"]


async def _post(
    transport: AuthTransport, url: str, fields: dict[str, str], encoding: Encoding
) -> Response:
    if encoding == "multipart":
        return await transport.send("POST", url, multipart=fields)
    if encoding == "json":
        return await transport.send("POST", url, json=fields)
    return await transport.send("POST", url, form=fields)


_CONTENT_TYPE_WORDS = ("content type", "content-type", "media type", "unsupported media")


def _refuses_content_type(response: Response) -> bool:
    """A refusal of the body's encoding: 415, or a 400 whose reason names the content type."""
    if response.status == 415:
        return True
    if response.status != 400:
        return False
    reason = (response.reason() or response.excerpt(300)).lower()
    return any(word in reason for word in _CONTENT_TYPE_WORDS)


def _token_secrets(token: Token | None) -> tuple[str, ...]:
    """A token's own secrets, redacted from errors too: a server may quote what it was sent."""
    if token is None:
        return ()
    return tuple(s for s in (token.access_token, token.refresh_token) if s)


def _token_from(
    response: Response,
    auth: AuthStrategy,
    *,
    action: Action,
    default_lifetime: float | None,
    sent: Token | None = None,
) -> Token:
    if response.status >= 400:
        raise login_error(
            response,
            vendor=auth.vendor,
            action=action,
            secrets=(*auth.secrets(), *_token_secrets(sent)),
        )
    header_token = _bearer_from_header(response)
    try:
        body = response.json()
    except ResponseParseError:
        if header_token is None:
            raise
        body = {}
    return parse_token(body, default_lifetime=default_lifetime, header_token=header_token)


@attrs.define(eq=False, kw_only=True)
class JSONLogin(AuthStrategy):
    """POST ``body`` as JSON to ``login_path``; the answer is any shape ``parse_token`` reads."""

    vendor: str
    login_path: str
    body: Mapping[str, str] = attrs.field(repr=False)
    #: The body field naming who logs in (not secret), e.g. ``clientKey``.
    identity_field: str
    #: Lifetime when the answer does not give one (Cloud4Wi documents one day).
    default_lifetime: float | None = None
    #: POST here with the token, no body, to revoke it; None when the vendor has no logout.
    logout_path: str | None = None
    rejection_statuses: frozenset[int] = frozenset({401})

    @property
    def identity(self) -> str:
        return self.body[self.identity_field]

    def secrets(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.body.items() if k != self.identity_field)

    async def login(self, transport: AuthTransport) -> Token:
        response = await transport.send("POST", self.login_path, json=SecretFields(self.body))
        return _token_from(
            response, self, action="login", default_lifetime=self.default_lifetime
        )

    @property
    def supports_logout(self) -> bool:
        return self.logout_path is not None

    async def logout(self, transport: AuthTransport, token: Token) -> bool:
        if self.logout_path is None:
            return False
        response = await transport.send("POST", self.logout_path, token=token)
        # A rejection (401; Cloud4Wi's 403 for an expired token): the token was already
        # invalid, which is what a logout wants anyway.
        if response.status >= 400 and response.status not in self.rejection_statuses:
            raise self.logout_error(response, token)
        return True


@attrs.define(eq=False, kw_only=True)
class OAuth2PasswordGrant(AuthStrategy):
    """RFC 6749 resource-owner password grant, refreshed with the ``refresh_token`` grant."""

    vendor: str
    token_url: str
    client_id: str
    client_secret: str | None = attrs.field(repr=False)
    username: str
    password: str = attrs.field(repr=False)
    #: How the grant is encoded: RFC 6749 says form; Wokelo documents multipart form-data.
    encoding: Encoding = "form"
    #: Tried once if the server refuses ``encoding`` (415, or a 400 naming the content
    #: type); whichever the server takes is kept for the client's life. Wokelo's docs say
    #: form-data in prose and JSON in their curl example.
    fallback_encoding: Encoding | None = None
    _encoding_taken: Encoding | None = attrs.field(default=None, init=False, repr=False)
    scope: str | None = None
    #: RFC 7009 revocation endpoint, if the server has one.
    revocation_url: str | None = None
    default_lifetime: float | None = None
    rejection_statuses: frozenset[int] = frozenset({401})

    @property
    def identity(self) -> str:
        return f"{self.client_id}/{self.username}"

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_secret, self.password) if s)

    def _client_fields(self) -> dict[str, str]:
        fields = SecretFields(client_id=self.client_id)
        if self.client_secret is not None:
            fields["client_secret"] = self.client_secret
        return fields

    async def _token_endpoint(self, transport: AuthTransport) -> str:
        return self.token_url

    async def _grant(
        self,
        transport: AuthTransport,
        fields: dict[str, str],
        *,
        action: Action,
        sent: Token | None = None,
    ) -> Token:
        url = await self._token_endpoint(transport)
        fields |= self._client_fields()
        encoding = self._encoding_taken or self.encoding
        response = await _post(transport, url, fields, encoding)
        fallback = self.fallback_encoding
        if (self._encoding_taken is None and fallback is not None and fallback != encoding
                and _refuses_content_type(response)):
            response = await _post(transport, url, fields, fallback)
            if response.status < 400:
                self._encoding_taken = fallback
                logger.info("vendorkit: %s token endpoint refused %s (HTTP 415 or 400) and "
                            "took %s; using %s from now on", self.vendor, encoding, fallback,
                            fallback)
        elif self._encoding_taken is None and response.status < 400:
            self._encoding_taken = encoding
        return _token_from(
            response, self, action=action, default_lifetime=self.default_lifetime,
            sent=sent,
        )

    async def login(self, transport: AuthTransport) -> Token:
        fields = SecretFields(grant_type="password", username=self.username,
                              password=self.password)
        if self.scope:
            fields["scope"] = self.scope
        return await self._grant(transport, fields, action="login")

    @property
    def supports_refresh(self) -> bool:
        return True

    async def refresh(self, transport: AuthTransport, token: Token) -> Token:
        if token.refresh_token is None:
            raise ValueError("refresh() needs a token with a refresh_token")
        fields = SecretFields(grant_type="refresh_token", refresh_token=token.refresh_token)
        new = await self._grant(transport, fields, action="refresh", sent=token)
        if new.refresh_token is None:
            # Servers that do not rotate keep the old refresh token valid.
            new = attrs.evolve(
                new, refresh_token=token.refresh_token, refresh_expires_at=token.refresh_expires_at
            )
        return new

    async def _revocation_endpoint(self, transport: AuthTransport) -> str | None:
        return self.revocation_url

    @property
    def supports_logout(self) -> bool:
        return self.revocation_url is not None

    async def logout(self, transport: AuthTransport, token: Token) -> bool:
        url = await self._revocation_endpoint(transport)
        if url is None:
            return False
        # RFC 7009: revoking the refresh token ends the grant; answers 200 even for unknown tokens.
        if token.refresh_token:
            value, hint = token.refresh_token, "refresh_token"
        else:
            value, hint = token.access_token, "access_token"
        form = SecretFields(token=value, token_type_hint=hint, **self._client_fields())
        response = await transport.send("POST", url, form=form)
        if response.status >= 400:
            raise self.logout_error(response, token)
        return True


@attrs.define(eq=False, kw_only=True)
class OIDCPasswordGrant(OAuth2PasswordGrant):
    """OpenID Connect: every endpoint comes from ``{issuer}/.well-known/openid-configuration``.

    Discovery is fetched once, on the first login, and cached. Logout posts the refresh
    token to the ``end_session_endpoint`` and, where the server has one, revokes it at
    the ``revocation_endpoint`` too.
    """

    token_url: str = ""
    issuer: str = ""
    #: Hosts other than the issuer's that discovered endpoints may be on (default: none).
    trusted_hosts: frozenset[str] = frozenset()
    #: Accept plain-http endpoints off loopback (as the session's ``allow_insecure_http``).
    allow_insecure_http: bool = False
    _metadata: dict[str, Any] | None = attrs.field(default=None, init=False, repr=False)

    async def discover(self, transport: AuthTransport) -> dict[str, Any]:
        """The issuer's discovery document, fetched once."""
        if self._metadata is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            response = await transport.send("GET", url)
            if response.status >= 400:
                raise error_for_status(
                    response.status,
                    method="GET",
                    url=url,
                    request_id=response.request_id,
                    body_excerpt=response.excerpt(),
                    detail="OpenID Connect discovery failed; check the issuer URL",
                )
            metadata = response.json()
            if not isinstance(metadata, dict) or not isinstance(
                metadata.get("token_endpoint"), str
            ):
                raise ResponseParseError(
                    f"{url} is not an OpenID Connect discovery document (no token_endpoint)"
                )
            self._check_discovered(metadata)
            self._metadata = metadata
        return self._metadata

    def _check_discovered(self, metadata: dict[str, Any]) -> None:
        """The document must be the configured issuer's (OpenID Connect Discovery 1.0,
        section 4.3), and each endpoint it names must be https (loopback aside) on the
        issuer's host or a trusted one: the password and client secret go there."""
        issuer = self.issuer.rstrip("/")
        if str(metadata.get("issuer", "")).rstrip("/") != issuer:
            raise ResponseParseError(
                f"{self.vendor} OpenID Connect discovery: the document's issuer is not the "
                f"configured issuer {issuer}; refusing to send credentials to its endpoints"
            )
        issuer_host = urlsplit(issuer).hostname
        for name in ("token_endpoint", "revocation_endpoint", "end_session_endpoint"):
            endpoint = metadata.get(name)
            if endpoint is None:
                continue
            try:
                check_base_url(name, str(endpoint), allow_insecure_http=self.allow_insecure_http)
            except ConfigurationError as exc:
                raise ResponseParseError(
                    f"{self.vendor} OpenID Connect discovery: {exc}"
                ) from None
            host = urlsplit(str(endpoint)).hostname
            if host != issuer_host and host not in self.trusted_hosts:
                raise ResponseParseError(
                    f"{self.vendor} OpenID Connect discovery: {name} is on {host}, not on the "
                    f"issuer's host {issuer_host}; pass trusted_hosts to allow it"
                )

    async def _token_endpoint(self, transport: AuthTransport) -> str:
        return str((await self.discover(transport))["token_endpoint"])

    async def _revocation_endpoint(self, transport: AuthTransport) -> str | None:
        value = (await self.discover(transport)).get("revocation_endpoint")
        return value if isinstance(value, str) else None

    @property
    def supports_logout(self) -> bool:
        # Known only after discovery; logout() answers whether it sent anything.
        return True

    async def logout(self, transport: AuthTransport, token: Token) -> bool:
        metadata = await self.discover(transport)
        end_session = metadata.get("end_session_endpoint")
        ended = False
        if isinstance(end_session, str) and token.refresh_token:
            response = await transport.send(
                "POST",
                end_session,
                form=SecretFields(refresh_token=token.refresh_token, **self._client_fields()),
            )
            # 400 invalid_grant: the session had already ended.
            if response.status >= 400 and response.json_object().get("error") != "invalid_grant":
                raise self.logout_error(response, token)
            ended = True
        return await super().logout(transport, token) or ended


@attrs.define(eq=False, kw_only=True)
class APIKeyAuth(AuthStrategy):
    """A fixed key sent with every request (``Authorization: Bearer <key>`` by default)."""

    vendor: str
    api_key: str = attrs.field(repr=False)
    header_name: str = "Authorization"
    #: Put before the key in the header; empty for headers such as ``X-API-Key: <key>``.
    scheme: str = "Bearer"

    @property
    def identity(self) -> str:
        import hashlib

        return "api-key:" + hashlib.sha256(self.api_key.encode()).hexdigest()[:16]

    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,)

    async def login(self, transport: AuthTransport) -> Token:
        return self.static_token()

    def static_token(self) -> Token:
        return Token(access_token=self.api_key, token_type=self.scheme or "Bearer")

    def header_value(self, token: Token) -> str:
        return f"{self.scheme} {token.access_token}" if self.scheme else token.access_token
