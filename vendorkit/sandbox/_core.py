"""What every vendor emulator shares, re-exported from the modules that hold it:
``_state`` (credentials, tokens, counters, faults), ``_http`` (request helpers, routes,
fault injection, the OAuth2 token endpoint) and ``_runner`` (serve, serve_all, threads).

Vendor modules only declare routes and response shapes; each mechanism lives once.
The sandbox imports nothing from the client side so that it catches a client's mistakes.
"""

from __future__ import annotations

from ._http import (
    Call,
    OAuthDialect,
    api,
    auth,
    basic_credentials,
    build_app,
    form_fields,
    json_object,
    oauth_token_endpoint,
    refuse,
    reply,
    seconds,
)
from ._runner import (
    RunningSandbox,
    SandboxThread,
    Vendor,
    serve,
    serve_all,
    vendor_spec,
)
from ._state import (
    VENDORS,
    Counters,
    Faults,
    Grant,
    Refusal,
    Reply,
    SandboxState,
)

__all__ = [
    "Call",
    "Counters",
    "Faults",
    "Grant",
    "OAuthDialect",
    "Refusal",
    "Reply",
    "RunningSandbox",
    "SandboxState",
    "SandboxThread",
    "VENDORS",
    "Vendor",
    "api",
    "auth",
    "basic_credentials",
    "build_app",
    "form_fields",
    "json_object",
    "oauth_token_endpoint",
    "refuse",
    "reply",
    "seconds",
    "serve",
    "serve_all",
    "vendor_spec",
]
