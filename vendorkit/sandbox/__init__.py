"""Local emulators of the vendor APIs, strict enough to catch a client's mistakes.

Each vendor runs as its own aiohttp server with fault injection and counters; nothing here
imports the client side of vendorkit.
"""

from vendorkit.sandbox._core import (
    VENDORS,
    Counters,
    Faults,
    RunningSandbox,
    SandboxState,
    SandboxThread,
    serve,
    serve_all,
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
    "RunningSandbox",
    "SandboxState",
    "SandboxThread",
    "serve",
    "serve_all",
]
