"""vendorkit: one fast, correct async session layer for five vendor REST APIs."""

from __future__ import annotations

from .auth import APIKeyAuth, AuthStrategy, JSONLogin, OAuth2PasswordGrant, OIDCPasswordGrant
from .client import SessionOptions, VendorClient
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectError,
    InvalidGrantError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseParseError,
    ServerError,
    TimeoutError,
    TokenResponseError,
    TransportError,
    VendorkitError,
)
from .events import Event, Stats
from .pagination import Page, Paginator
from .response import Response
from .retry import RetryPolicy
from .session import SessionManager
from .stores import MemoryTokenStore, TokenStore
from .token import Token, parse_token
from .tokens import RefreshWindows, TokenManager
from .vendors import (
    CambyoProClient,
    Cloud4WiClient,
    CloudCXClient,
    WogeezClient,
    WokeloClient,
)

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "APIKeyAuth",
    "AuthStrategy",
    "AuthenticationError",
    "BadRequestError",
    "CambyoProClient",
    "Cloud4WiClient",
    "CloudCXClient",
    "ConfigurationError",
    "ConnectError",
    "Event",
    "InvalidGrantError",
    "JSONLogin",
    "MemoryTokenStore",
    "NotFoundError",
    "OAuth2PasswordGrant",
    "OIDCPasswordGrant",
    "Page",
    "Paginator",
    "PermissionDeniedError",
    "RateLimitError",
    "RefreshWindows",
    "Response",
    "ResponseParseError",
    "RetryPolicy",
    "ServerError",
    "SessionManager",
    "SessionOptions",
    "Stats",
    "TimeoutError",
    "Token",
    "TokenManager",
    "TokenResponseError",
    "TokenStore",
    "TransportError",
    "VendorClient",
    "VendorkitError",
    "WogeezClient",
    "WokeloClient",
    "parse_token",
]
