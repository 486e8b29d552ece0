"""The ``TokenStore`` interface, store keys, and the token codec every store shares."""

from __future__ import annotations

import hashlib
import json
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from ..errors import ResponseParseError
from ..models import converter  # one cattrs configuration for the whole package
from ..token import Token

__all__ = ["Cipher", "TokenStore", "dump_token", "load_token", "store_key"]


@runtime_checkable
class TokenStore(Protocol):
    """Keeps the current token of each credential, and the lock that makes login single-flight.

    ``shared`` is True when other processes see the same tokens: then closing one client
    leaves the token in place for the others, and only an explicit ``logout()`` revokes it.
    """

    shared: bool

    async def get(self, key: str) -> Token | None:
        """The stored token, or None."""

    async def set(self, key: str, token: Token) -> None:
        """Store ``token`` (access and refresh token in one write)."""

    async def delete(self, key: str, *, only_if: Token | None = None) -> bool:
        """Remove the token; with ``only_if``, only while it is still that token."""

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Held while one process logs in or refreshes for ``key``; others wait on it."""

    async def aclose(self) -> None:
        """Release connections. The stored tokens stay."""


class Cipher(Protocol):
    """A caller-supplied encryption hook for tokens at rest (e.g. a ``cryptography`` Fernet)."""

    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, data: bytes) -> bytes: ...


def store_key(vendor: str, base_url: str, identity: str, namespace: str = "vendorkit") -> str:
    """A key naming one credential at one vendor; the identity is hashed, never kept in clear."""
    digest = hashlib.sha256(f"{vendor}\0{base_url}\0{identity}".encode()).hexdigest()[:32]
    return f"{namespace}:token:{vendor}:{digest}"


def dump_token(token: Token, cipher: Cipher | None = None) -> bytes:
    """Serialise a token for a store (JSON, then the cipher if one is given)."""
    data = json.dumps(converter.unstructure(token), separators=(",", ":")).encode()
    return cipher.encrypt(data) if cipher is not None else data


def load_token(data: bytes, cipher: Cipher | None = None) -> Token:
    """The inverse of :func:`dump_token`; a :class:`ResponseParseError` if it is not a token."""
    try:
        raw = cipher.decrypt(data) if cipher is not None else data
        return converter.structure(json.loads(raw), Token)
    except Exception as exc:  # a corrupt entry must read as "no token", never crash a caller
        raise ResponseParseError(
            f"stored token could not be read ({type(exc).__name__})"
        ) from None


def same_token(a: Token | None, b: Token | None) -> bool:
    """Whether two tokens are the same credential (compared by access token)."""
    return a is not None and b is not None and a.access_token == b.access_token
