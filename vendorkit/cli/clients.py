"""Opening a vendor client for a command: the embedded sandbox, or configured credentials."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import cast

from ..client import VendorClient
from ..sandbox import serve
from ..stores.base import TokenStore
from ..stores.file import FileTokenStore
from ..vendors import CLIENTS
from .config import client_arguments, token_cache_path
from .output import remember_secrets

__all__ = ["open_client"]


@contextlib.asynccontextmanager
async def open_client(
    vendor: str, *, sandbox: bool, profile: str | None = None, cache_tokens: bool = True
) -> AsyncIterator[VendorClient]:
    """A client for ``vendor``, closed (and, unless its token is cached, logged out) on exit.

    With ``sandbox`` it talks to an emulator started in this process, with the emulator's
    credentials; its tokens die with the process, so they are not cached. Otherwise the
    credentials come from the environment or the config file, and with ``cache_tokens``
    the token is kept in a file shared by every ``vendorkit`` command of this user, so
    repeated commands reuse one token instead of logging in each time.
    """
    factory = cast(Callable[..., VendorClient], CLIENTS[vendor])
    if sandbox:
        async with serve(vendor) as running:
            client = factory(**running.client_kwargs)
            remember_secrets(client.session.auth.secrets())
            async with client:
                yield client
        return
    arguments = client_arguments(vendor, profile=profile)
    store: TokenStore | None = FileTokenStore(token_cache_path()) if cache_tokens else None
    try:
        client = factory(**arguments, token_store=store)
        remember_secrets(client.session.auth.secrets())
        async with client:
            yield client
    finally:
        if store is not None:
            await store.aclose()
