"""What every vendor emulator shares, re-exported from the modules that hold it:
``_state`` (credentials, tokens, counters, faults), ``_http`` (request helpers, routes,
fault injection, the OAuth2 token endpoint), ``_variants`` (the knobs variants turn),
``_paging`` (page envelopes), ``_quota`` (GCRA) and ``_runner`` (serve, serve_all, threads).

Vendor modules only declare routes and response shapes; each mechanism lives once.
The sandbox imports nothing from the client side so that it catches a client's mistakes.
"""

from __future__ import annotations

from ._http import (
    REFRESH_REFUSALS,
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
    token_answer,
    token_reply,
)
from ._paging import PageRequest, Row, page_body
from ._quota import Quota
from ._runner import (
    RunningSandbox,
    SandboxThread,
    Vendor,
    parse_variant,
    serve,
    serve_all,
    serve_app,
    variant_pairs,
    variants_of,
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
from ._variants import Settings, Variant, refresh_variants, token_variants

__all__ = [
    "REFRESH_REFUSALS",
    "Call",
    "Counters",
    "Faults",
    "Grant",
    "OAuthDialect",
    "PageRequest",
    "Quota",
    "Refusal",
    "Reply",
    "Row",
    "RunningSandbox",
    "SandboxState",
    "SandboxThread",
    "Settings",
    "VENDORS",
    "Variant",
    "Vendor",
    "api",
    "auth",
    "basic_credentials",
    "build_app",
    "form_fields",
    "json_object",
    "oauth_token_endpoint",
    "page_body",
    "parse_variant",
    "refuse",
    "refresh_variants",
    "reply",
    "seconds",
    "serve",
    "serve_all",
    "serve_app",
    "token_answer",
    "token_reply",
    "token_variants",
    "variant_pairs",
    "variants_of",
    "vendor_spec",
]
