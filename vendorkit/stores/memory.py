"""``MemoryTokenStore``: tokens kept in this process, the default."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ..token import Token
from .base import same_token

__all__ = ["MemoryTokenStore"]


class MemoryTokenStore:
    """A dict. Its lock is a no-op: in one process the token manager's single flight suffices."""

    shared = False

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}

    async def get(self, key: str) -> Token | None:
        return self._tokens.get(key)

    async def set(self, key: str, token: Token) -> None:
        self._tokens[key] = token

    async def delete(self, key: str, *, only_if: Token | None = None) -> bool:
        current = self._tokens.get(key)
        if current is None or (only_if is not None and not same_token(current, only_if)):
            return False
        del self._tokens[key]
        return True

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        yield

    async def aclose(self) -> None:
        return None
