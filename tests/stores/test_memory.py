"""MemoryTokenStore, the default: this process only, and the contract every store keeps."""

from __future__ import annotations

import time

from vendorkit import Token
from vendorkit.stores import MemoryTokenStore, TokenStore, dump_token, load_token, store_key


def token(name: str = "a", refresh_token: str | None = None) -> Token:
    return Token(access_token=f"access-{name}", expires_at=time.time() + 3600,
                 refresh_token=refresh_token)


def test_memory_store_is_a_token_store_that_is_not_shared() -> None:
    store = MemoryTokenStore()

    assert isinstance(store, TokenStore)
    assert store.shared is False


async def test_memory_store_returns_what_was_set_per_key() -> None:
    store = MemoryTokenStore()
    first, second = token("1"), token("2")

    await store.set("k1", first)
    await store.set("k2", second)

    assert await store.get("k1") == first
    assert await store.get("k2") == second
    assert await store.get("k3") is None


async def test_compare_and_delete_keeps_a_fresher_token() -> None:
    store = MemoryTokenStore()
    old, new = token("old"), token("new")
    await store.set("k", new)

    assert await store.delete("k", only_if=old) is False
    assert await store.get("k") == new
    assert await store.delete("k", only_if=new) is True
    assert await store.get("k") is None
    assert await store.delete("k") is False


async def test_memory_lock_never_blocks_even_when_nested() -> None:
    store = MemoryTokenStore()

    async with store.lock("k"), store.lock("k"):
        await store.set("k", token())

    assert await store.get("k") is not None
    await store.aclose()


def test_store_key_hashes_the_identity_and_names_the_vendor() -> None:
    key = store_key("cloud4wi", "https://explore.cloud4wi.com", "ck-live-123456")
    other = store_key("cloud4wi", "https://explore.cloud4wi.com", "ck-live-654321")

    assert key.startswith("vendorkit:token:cloud4wi:")
    assert "ck-live" not in key
    assert key != other
    assert store_key("cloud4wi", "https://explore.cloud4wi.com", "ck-live-123456") == key


def test_token_codec_round_trips_through_a_cipher() -> None:
    class Reverse:
        def encrypt(self, data: bytes) -> bytes:
            return data[::-1]

        def decrypt(self, data: bytes) -> bytes:
            return data[::-1]

    original = token("secret-value", refresh_token="refresh-value")

    blob = dump_token(original, Reverse())

    assert b"secret-value" not in blob  # the reversal is all the "encryption" here
    assert load_token(blob, Reverse()) == original
