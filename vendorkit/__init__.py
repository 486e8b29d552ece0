"""vendorkit: one fast, correct async session layer for five vendor REST APIs.

Names are imported on first use, so that loading the package (for instance as the
pytest plugin ``vendorkit.testing``) does not pay for aiohttp until it is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers (``X as X`` re-exports); tests/test_exported_members.py
    # checks these are exactly the names of _MODULES below
    from .auth import (
        APIKeyAuth as APIKeyAuth,
        AuthStrategy as AuthStrategy,
        JSONLogin as JSONLogin,
        OAuth2PasswordGrant as OAuth2PasswordGrant,
        OIDCPasswordGrant as OIDCPasswordGrant,
    )
    from .client import (
        SessionOptions as SessionOptions,
        VendorClient as VendorClient,
    )
    from .config import (
        Limits as Limits,
        RefreshWindows as RefreshWindows,
        Timeouts as Timeouts,
    )
    from .errors import (
        APIError as APIError,
        AuthenticationError as AuthenticationError,
        BadRequestError as BadRequestError,
        ConfigurationError as ConfigurationError,
        ConnectError as ConnectError,
        InvalidGrantError as InvalidGrantError,
        NotFoundError as NotFoundError,
        PermissionDeniedError as PermissionDeniedError,
        RateLimitError as RateLimitError,
        RedirectError as RedirectError,
        ResponseParseError as ResponseParseError,
        ResponseTooLargeError as ResponseTooLargeError,
        ServerError as ServerError,
        TimeoutError as TimeoutError,
        TokenResponseError as TokenResponseError,
        TokenStoreError as TokenStoreError,
        TransportError as TransportError,
        VendorkitError as VendorkitError,
    )
    from .events import (
        Event as Event,
        Stats as Stats,
    )
    from .models import (
        ItemList as ItemList,
    )
    from .options import (
        CallOverrides as CallOverrides,
    )
    from .pagination import (
        Page as Page,
        Paginator as Paginator,
    )
    from .ratelimit import (
        RateLimit as RateLimit,
    )
    from .response import (
        Response as Response,
    )
    from .retry import (
        RetryPolicy as RetryPolicy,
    )
    from .session import (
        SessionManager as SessionManager,
    )
    from .stores import (
        MemoryTokenStore as MemoryTokenStore,
        TokenStore as TokenStore,
    )
    from .streaming import (
        StreamingResponse as StreamingResponse,
    )
    from .token import (
        Token as Token,
        parse_token as parse_token,
    )
    from .token_manager import (
        TokenManager as TokenManager,
    )
    from .vendors import (
        CambyoProClient as CambyoProClient,
        Cloud4WiClient as Cloud4WiClient,
        CloudCXClient as CloudCXClient,
        WogeezClient as WogeezClient,
        WokeloClient as WokeloClient,
    )

from ._version import __version__ as __version__

#: Every public name and the module it lives in: the one list, ``__all__`` derives from it.
_MODULES = {
    ".auth": ("APIKeyAuth", "AuthStrategy", "JSONLogin", "OAuth2PasswordGrant",
              "OIDCPasswordGrant"),
    ".client": ("SessionOptions", "VendorClient"),
    ".config": ("Limits", "RefreshWindows", "Timeouts"),
    ".errors": ("APIError", "AuthenticationError", "BadRequestError", "ConfigurationError",
                "ConnectError", "InvalidGrantError", "NotFoundError", "PermissionDeniedError",
                "RateLimitError", "RedirectError", "ResponseParseError", "ResponseTooLargeError",
                "ServerError", "TimeoutError", "TokenResponseError", "TokenStoreError",
                "TransportError", "VendorkitError"),
    ".events": ("Event", "Stats"),
    ".models": ("ItemList",),
    ".options": ("CallOverrides",),
    ".pagination": ("Page", "Paginator"),
    ".ratelimit": ("RateLimit",),
    ".response": ("Response",),
    ".retry": ("RetryPolicy",),
    ".session": ("SessionManager",),
    ".streaming": ("StreamingResponse",),
    ".stores": ("MemoryTokenStore", "TokenStore"),
    ".token": ("Token", "parse_token"),
    ".token_manager": ("TokenManager",),
    ".vendors": ("CambyoProClient", "Cloud4WiClient", "CloudCXClient", "WogeezClient",
                 "WokeloClient"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'vendorkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return list(__all__)
