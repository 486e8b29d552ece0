"""Local emulators of the vendor APIs, strict enough to catch a client's mistakes.

Each vendor runs as its own aiohttp server with fault injection and counters; nothing here
imports the client side of vendorkit. By default an emulator answers as its vendor's docs
(the seeds) say; named variants (``variants_of(vendor)``, ``variant_pairs()``) answer the
points the docs leave open other plausible ways, and an optional per-credential
``Quota`` answers 429 beyond its rate.
"""

from vendorkit.sandbox._core import (
    VENDORS,
    Counters,
    Faults,
    Quota,
    RunningSandbox,
    SandboxState,
    SandboxThread,
    Variant,
    parse_variant,
    serve,
    serve_all,
    serve_app,
    variant_pairs,
    variants_of,
    vendor_spec,
)

DEFAULT_CREDENTIALS: dict[str, dict[str, str]] = {
    name: dict(vendor_spec(name).credentials) for name in VENDORS
}

__all__ = [
    "DEFAULT_CREDENTIALS",
    "VENDORS",
    "Counters",
    "Faults",
    "Quota",
    "RunningSandbox",
    "SandboxState",
    "SandboxThread",
    "Variant",
    "parse_variant",
    "serve",
    "serve_all",
    "serve_app",
    "variant_pairs",
    "variants_of",
]
