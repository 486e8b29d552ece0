"""vendorkit: one fast, correct async session layer for five vendor REST APIs.

Names are imported on first use, so that loading the package (for instance as the
pytest plugin ``vendorkit.testing``) does not pay for aiohttp until it is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import (
        APIKeyAuth,
        AuthStrategy,
        JSONLogin,
        OAuth2PasswordGrant,
        OIDCPasswordGrant,
    )
    from .client import (
        SessionOptions,
        VendorClient,
    )
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
        TokenStoreError,
        TransportError,
        VendorkitError,
    )
    from .events import (
        Event,
        Stats,
    )
    from .pagination import (
        Page,
        Paginator,
    )
    from .response import (
        Response,
    )
    from .retry import (
        RetryPolicy,
    )
    from .session import (
        SessionManager,
    )
    from .stores import (
        MemoryTokenStore,
        TokenStore,
    )
    from .token import (
        Token,
        parse_token,
    )
    from .tokens import (
        RefreshWindows,
        TokenManager,
    )
    from .vendors import (
        CambyoProClient,
        Cloud4WiClient,
        CloudCXClient,
        WogeezClient,
        WokeloClient,
    )

__version__ = "0.1.0"

_MODULES = {
    "APIError": ".errors",
    "APIKeyAuth": ".auth",
    "AuthStrategy": ".auth",
    "AuthenticationError": ".errors",
    "BadRequestError": ".errors",
    "CambyoProClient": ".vendors",
    "Cloud4WiClient": ".vendors",
    "CloudCXClient": ".vendors",
    "ConfigurationError": ".errors",
    "ConnectError": ".errors",
    "Event": ".events",
    "InvalidGrantError": ".errors",
    "JSONLogin": ".auth",
    "MemoryTokenStore": ".stores",
    "NotFoundError": ".errors",
    "OAuth2PasswordGrant": ".auth",
    "OIDCPasswordGrant": ".auth",
    "Page": ".pagination",
    "Paginator": ".pagination",
    "PermissionDeniedError": ".errors",
    "RateLimitError": ".errors",
    "RefreshWindows": ".tokens",
    "Response": ".response",
    "ResponseParseError": ".errors",
    "RetryPolicy": ".retry",
    "ServerError": ".errors",
    "SessionManager": ".session",
    "SessionOptions": ".client",
    "Stats": ".events",
    "TimeoutError": ".errors",
    "Token": ".token",
    "TokenManager": ".tokens",
    "TokenResponseError": ".errors",
    "TokenStoreError": ".errors",
    "TokenStore": ".stores",
    "TransportError": ".errors",
    "VendorClient": ".client",
    "VendorkitError": ".errors",
    "WogeezClient": ".vendors",
    "WokeloClient": ".vendors",
    "parse_token": ".token",
}



def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'vendorkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    "TokenStoreError",
    "TokenStore",
    "TransportError",
    "VendorClient",
    "VendorkitError",
    "WogeezClient",
    "WokeloClient",
    "parse_token",
]
