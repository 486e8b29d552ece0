"""Opening a vendor client for a command: the embedded sandbox, or configured credentials."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import cast

from ..client import VendorClient
from ..ratelimit import RateLimit
from ..sandbox import serve
from ..stores.base import TokenStore
from ..stores.file import FileTokenStore
from ..vendors import CLIENTS
from .config import client_arguments, token_cache_path
from .output import remember_secrets

__all__ = ["open_client"]


@contextlib.asynccontextmanager
async def open_client(
    vendor: str, *, sandbox: bool, profile: str | None = None, cache_tokens: bool = True,
    shared_store: TokenStore | None = None, rate_limit: RateLimit | bool | None = None,
) -> AsyncIterator[VendorClient]:
    """A client for ``vendor``, closed (and, unless its token is cached, logged out) on exit.

    With ``sandbox`` it talks to an emulator started in this process, with the emulator's
    credentials; its tokens die with the process, so they are not cached. Otherwise the
    credentials come from the environment or the config file, and with ``cache_tokens``
    the token is kept in a file shared by every ``vendorkit`` command of this user, so
    repeated commands reuse one token instead of logging in each time. A
    ``shared_store`` (the caller's, and the caller closes it) takes the place of that file;
    ``rate_limit`` is the client's ``rate_limit=``.
    """
    factory = cast(Callable[..., VendorClient], CLIENTS[vendor])
    if sandbox:
        async with serve(vendor) as running:
            client = factory(**running.client_kwargs, token_store=shared_store,
                             rate_limit=rate_limit)
            remember_secrets(client.session.auth.secrets())
            async with client:
                yield client
        return
    arguments = client_arguments(vendor, profile=profile)
    store: TokenStore | None = (FileTokenStore(token_cache_path())
                                if cache_tokens and shared_store is None else None)
    try:
        client = factory(**arguments, token_store=shared_store or store, rate_limit=rate_limit)
        remember_secrets(client.session.auth.secrets())
        async with client:
            yield client
    finally:
        if store is not None:
            await store.aclose()
