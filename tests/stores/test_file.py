"""FileTokenStore: one JSON file per host, private, replaced atomically, locked with flock."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vendorkit import Token
from vendorkit.errors import TokenStoreError
from vendorkit.sandbox import serve
from vendorkit.stores import FileTokenStore, store_key
from vendorkit.vendors import Cloud4WiClient

KEY = store_key("cloud4wi", "https://explore.cloud4wi.com", "ck-live-identity")
OTHER_KEY = store_key("wokelo", "https://api.wokelo.ai", "client/user@example.com")


def token(name: str = "a", lifetime: float | None = 3600, **fields: Any) -> Token:
    now = time.time()
    expires = None if lifetime is None else now + lifetime
    return Token(access_token=f"access-{name}", expires_at=expires, issued_at=now, **fields)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class Reverse:
    def encrypt(self, data: bytes) -> bytes:
        return b"enc:" + data[::-1]

    def decrypt(self, data: bytes) -> bytes:
        return data[4:][::-1]


async def test_token_round_trips_and_the_files_are_private(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "private" / "tokens.json")
    original = token(refresh_token="refresh-a")

    async with store.lock(KEY):
        await store.set(KEY, original)

    assert await FileTokenStore(store.path).get(KEY) == original
    assert mode(store.path) == 0o600
    assert mode(store.lock_path) == 0o600
    assert mode(store.path.parent) == 0o700
    assert store.shared is True


async def test_one_file_holds_the_tokens_of_several_credentials(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    first, second = token("first"), token("second")

    await store.set(KEY, first)
    await store.set(OTHER_KEY, second)

    assert await store.get(KEY) == first
    assert await store.get(OTHER_KEY) == second
    assert set(json.loads(store.path.read_text())["tokens"]) == {KEY, OTHER_KEY}


async def test_every_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    await store.set(KEY, token("1"))
    inode = store.path.stat().st_ino
    keeper = store.path.open("rb")  # a reader of the old file keeps seeing it whole

    await store.set(KEY, token("2"))

    assert store.path.stat().st_ino != inode
    assert json.loads(keeper.read())["tokens"][KEY]
    keeper.close()
    assert sorted(os.listdir(tmp_path)) == ["tokens.json", "tokens.json.lock"]


async def test_compare_and_delete_never_wipes_a_fresher_token(tmp_path: Path) -> None:
    slow_process, fast_process = (FileTokenStore(tmp_path / "t.json") for _ in range(2))
    rejected, fresher = token("rejected"), token("fresher")
    await slow_process.set(KEY, rejected)
    await fast_process.set(KEY, fresher)

    assert await slow_process.delete(KEY, only_if=rejected) is False
    assert await slow_process.get(KEY) == fresher
    assert await slow_process.delete(KEY, only_if=fresher) is True
    assert await fast_process.get(KEY) is None
    assert await fast_process.delete(KEY) is False


async def test_expired_entries_read_as_no_token_and_leave_on_the_next_write(
    tmp_path: Path,
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    await store.set(KEY, token("short", lifetime=0.05))
    await store.set(OTHER_KEY, token("long", refresh_token="r",
                                     refresh_expires_at=time.time() + 3600))
    await asyncio.sleep(0.1)

    assert await store.get(KEY) is None
    await store.set(OTHER_KEY, token("newer"))
    assert set(json.loads(store.path.read_text())["tokens"]) == {OTHER_KEY}


async def test_cipher_encrypts_what_the_file_holds(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json", cipher=Reverse())
    original = token("secret-access", refresh_token="secret-refresh")

    await store.set(KEY, original)

    content = store.path.read_bytes()
    assert b"secret" not in content
    entry = json.loads(content)["tokens"][KEY]
    assert base64.b64decode(entry["token"]).startswith(b"enc:")
    assert await store.get(KEY) == original
    assert await FileTokenStore(store.path).get(KEY) is None  # no cipher: unreadable, not a crash


async def test_a_corrupt_file_reads_as_no_token_and_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    store.path.write_text('{"version": 1, "tokens": {"trunc')

    assert await store.get(KEY) is None
    fresh = token()
    await store.set(KEY, fresh)

    assert await store.get(KEY) == fresh
    assert "unreadable token file" in caplog.text


async def test_lock_admits_one_holder_at_a_time(tmp_path: Path) -> None:
    stores = [FileTokenStore(tmp_path / "tokens.json", poll_interval=0.005) for _ in range(4)]
    inside: list[int] = []
    overlaps: list[int] = []

    async def work(number: int, store: FileTokenStore) -> None:
        async with store.lock(KEY):
            if inside:
                overlaps.append(number)
            inside.append(number)
            await asyncio.sleep(0.02)
            await store.set(KEY, token(str(number)))  # the holder's own write does not wait
            inside.remove(number)

    await asyncio.gather(*(work(n, s) for n, s in enumerate(stores)))

    assert overlaps == []
    assert await stores[0].get(KEY) is not None


async def test_a_lock_held_by_another_process_times_out_then_frees_when_it_dies(
    tmp_path: Path,
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json", wait_timeout=0.3, poll_interval=0.01)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(store.lock_path)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and await holder.stdout.readline() == b"held\n"
        with pytest.raises(TokenStoreError, match="held the token lock"):
            async with store.lock(KEY):
                pass
    finally:
        holder.kill()
        await holder.wait()

    async with store.lock(KEY):  # the kernel released the dead holder's lock
        await store.set(KEY, token())
    assert await store.get(KEY) is not None


async def test_clients_sharing_a_file_make_one_login_and_close_without_logout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens.json"
    async with serve("cloud4wi") as sandbox:
        kwargs: dict[str, Any] = dict(sandbox.client_kwargs)
        clients = [Cloud4WiClient(**kwargs, token_store=FileTokenStore(path)) for _ in range(3)]
        try:
            await asyncio.gather(*(c.get_organizations("c1") for c in clients for _ in range(20)))
        finally:
            for client in clients:
                await client.aclose()

        assert sandbox.state.counters.logins == 1
        assert sandbox.state.counters.logouts == 0
        assert await FileTokenStore(path).get(clients[0].session.tokens.key) is not None
    assert sorted(os.listdir(tmp_path)) == ["tokens.json", "tokens.json.lock"]
