"""Where tokens live between calls: the ``TokenStore`` interface and its implementations.

- :class:`MemoryTokenStore` (the default): this process only.
- :class:`FileTokenStore`: several processes on one host (``vendorkit.stores.file``).
- :class:`RedisTokenStore`: a fleet of processes on many hosts (``vendorkit[redis]``).

Tokens are secrets at rest: keys never contain them (nor a credential in clear), and the
shared stores accept a ``cipher`` to encrypt what they write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Cipher, TokenStore, dump_token, load_token, store_key
from .memory import MemoryTokenStore

if TYPE_CHECKING:
    from .file import FileTokenStore
    from .redis import RedisTokenStore

__all__ = [
    "Cipher",
    "FileTokenStore",
    "MemoryTokenStore",
    "RedisTokenStore",
    "TokenStore",
    "dump_token",
    "load_token",
    "store_key",
]


def __getattr__(name: str) -> Any:
    # Imported on first use so that the core never needs redis-py installed.
    if name == "RedisTokenStore":
        from .redis import RedisTokenStore

        return RedisTokenStore
    if name == "FileTokenStore":
        from .file import FileTokenStore

        return FileTokenStore
    raise AttributeError(name)
