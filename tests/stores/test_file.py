"""FileTokenStore: one JSON file per host, private, replaced atomically, locked with flock."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
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
    # The token, its lock, and the host's rate-limit state (read once when a client joins,
    # to honour a pause the host's other processes were given).
    assert sorted(os.listdir(tmp_path)) == ["tokens.json", "tokens.json.lock",
                                            "tokens.json.ratelimit"]
    assert (tmp_path / "tokens.json.ratelimit").stat().st_mode & 0o077 == 0


# --- files others could tamper with ---------------------------------------------------------


async def test_a_symlinked_lock_file_is_refused_and_its_target_never_created(
    tmp_path: Path,
) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    target = tmp_path / "victim.conf"
    store.lock_path.symlink_to(target)

    with pytest.raises(TokenStoreError, match="is a symbolic link") as caught:
        async with store.lock(KEY):
            pass
    with pytest.raises(TokenStoreError, match="is a symbolic link"):
        await store.set(KEY, token())

    assert str(store.lock_path) in str(caught.value)
    assert not target.exists()
    assert not store.path.exists()


async def test_a_symlinked_token_file_is_neither_read_nor_written_through(
    tmp_path: Path,
) -> None:
    planted = FileTokenStore(tmp_path / "elsewhere" / "tokens.json")
    await planted.set(KEY, token("planted"))
    before = planted.path.read_bytes()
    store = FileTokenStore(tmp_path / "tokens.json")
    store.path.symlink_to(planted.path)

    with pytest.raises(TokenStoreError, match="is a symbolic link"):
        await store.get(KEY)
    with pytest.raises(TokenStoreError, match="is a symbolic link"):
        await store.set(KEY, token("mine"))

    assert planted.path.read_bytes() == before
    assert store.path.is_symlink()


async def test_a_world_writable_directory_of_ones_own_is_made_private_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(0o777)
    secret = token("dir-secret")

    await FileTokenStore(directory / "tokens.json").set(KEY, secret)
    assert await FileTokenStore(directory / "tokens.json").get(KEY) == secret

    assert mode(directory) == 0o700
    warnings = [r for r in caplog.records if "writable by other users" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert "0777" in warnings[0].getMessage()
    assert "dir-secret" not in caplog.text


async def test_a_shared_sticky_directory_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)  # like /tmp: others may add files beside ours

    with pytest.raises(TokenStoreError, match=r"writable by other users \(mode 1777\)"):
        await FileTokenStore(directory / "tokens.json").set(KEY, token())

    assert stat.S_IMODE(directory.stat().st_mode) == 0o1777
    assert list(directory.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="only root can give a directory to another user")
async def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o755)
    os.chown(directory, 65534, 65534)

    with pytest.raises(TokenStoreError, match="belongs to another user"):
        await FileTokenStore(directory / "tokens.json").get(KEY)

    assert list(directory.iterdir()) == []


async def test_a_token_file_readable_by_others_is_tightened_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.json"
    secret = token("file-secret", refresh_token="refresh-secret")
    await FileTokenStore(path).set(KEY, secret)
    path.chmod(0o644)

    assert await FileTokenStore(path).get(KEY) == secret
    assert mode(path) == 0o600
    path.chmod(0o640)  # loosened again by someone: tightened again, without a second word
    assert await FileTokenStore(path).get(KEY) == secret

    assert mode(path) == 0o600
    warnings = [r for r in caplog.records if "open to other users" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert "0644" in warnings[0].getMessage()
    assert "secret" not in caplog.text


async def test_a_write_leaves_a_loosened_token_file_at_0600(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    await store.set(KEY, token("1"))
    store.path.chmod(0o666)

    await store.set(OTHER_KEY, token("2"))

    assert mode(store.path) == 0o600


def test_the_store_and_the_cli_import_on_a_system_without_fcntl() -> None:
    """Windows has no fcntl: importing the store (and the CLI, which uses it) must work."""
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "sys.modules['fcntl'] = None  # as on Windows: `import fcntl` raises ImportError\n"
         "import vendorkit.cli.clients, vendorkit.stores.file\n"
         "print(vendorkit.stores.file.FileTokenStore('t.json'))\n"],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "<FileTokenStore 't.json'>\n"
