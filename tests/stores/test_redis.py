"""RedisTokenStore against a real redis-server: keys, TTLs, compare-and-delete, the lock,
the fallback when Redis is gone, and clients in one process sharing it as a fleet would."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis

from vendorkit import Token
from vendorkit.errors import ConfigurationError, TokenStoreError
from vendorkit.sandbox import RunningSandbox, serve
from vendorkit.stores import RedisTokenStore, load_token, store_key
from vendorkit.stores.redis import _SET, MAX_TTL_MS
from vendorkit.vendors import CLIENTS

from .redis_server import RedisServer, free_port

KEY = store_key("cloud4wi", "https://explore.cloud4wi.com", "ck-live-identity")


def token(name: str = "a", lifetime: float | None = 3600, **fields: Any) -> Token:
    now = time.time()
    expires = None if lifetime is None else now + lifetime
    return Token(access_token=f"access-{name}", expires_at=expires, issued_at=now, **fields)


class Reverse:
    """A toy cipher: enough to show the store uses the hook, not a real encryption."""

    def encrypt(self, data: bytes) -> bytes:
        return b"enc:" + data[::-1]

    def decrypt(self, data: bytes) -> bytes:
        if not data.startswith(b"enc:"):
            raise ValueError("not encrypted by this cipher")
        return data[4:][::-1]


@pytest.fixture
async def make_store(
    redis_url: str, namespace: str
) -> AsyncIterator[Callable[..., RedisTokenStore]]:
    """Stores on the test's namespace (one per simulated process); closed after the test."""
    stores: list[RedisTokenStore] = []

    def make(**options: Any) -> RedisTokenStore:
        options.setdefault("namespace", namespace)
        stores.append(RedisTokenStore(options.pop("url", redis_url), **options))
        return stores[-1]

    yield make
    for store in stores:
        await store.aclose()


@pytest.fixture
def raw(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


MakeStore = Callable[..., RedisTokenStore]


# --- values, keys and TTLs ------------------------------------------------------------------


@pytest.mark.parametrize(("url", "options", "named"), [
    ("http://127.0.0.1:6379", {}, "url"),
    ("redis://127.0.0.1:6379/0", {"namespace": ""}, "namespace"),
    ("redis://127.0.0.1:6379/0", {"lock_ttl": 0}, "lock_ttl"),
    ("redis://127.0.0.1:6379/0", {"lock_ttl": 30, "wait_timeout": 20}, "wait_timeout"),
])
def test_bad_arguments_are_configuration_errors_naming_the_argument(
    url: str, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        RedisTokenStore(url, **options)


async def test_token_and_its_refresh_token_round_trip_as_one_value(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    store = make_store()
    original = token("one", refresh_token="refresh-one", refresh_expires_at=time.time() + 7200)

    await store.set(KEY, original)

    assert await store.get(KEY) == original
    fields = raw.hgetall(store.redis_key(KEY))
    assert set(fields) == {b"token", b"fp"}
    value = fields[b"token"]
    assert isinstance(value, bytes) and load_token(value).refresh_token == "refresh-one"
    assert store.shared is True


async def test_keys_are_namespaced_and_hold_neither_identity_nor_token(
    make_store: MakeStore, raw: redis.Redis, namespace: str
) -> None:
    store = make_store(cipher=Reverse())
    await store.set(KEY, token("secret-access", refresh_token="secret-refresh"))
    async with store.lock(KEY):
        keys = [k.decode() for k in raw.scan_iter(match=f"{namespace}:*")]

    assert sorted(keys) == [f"{namespace}:{KEY}", f"{namespace}:{KEY}:lock"]
    for key in keys:
        assert "ck-live-identity" not in key and "secret" not in key
    value = raw.hget(store.redis_key(KEY), "token")
    assert value is not None and b"secret-access" not in value and b"secret-refresh" not in value


async def test_default_namespace_uses_the_store_key_as_is(redis_url: str, raw: redis.Redis) -> None:
    store = RedisTokenStore(redis_url)
    try:
        await store.set(KEY, token())
        assert raw.exists(KEY) == 1
    finally:
        await store.delete(KEY)
        await store.aclose()


async def test_ttl_is_the_tokens_remaining_lifetime(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    store = make_store()

    await store.set(KEY, token(lifetime=120))

    assert 118_000 < raw.pttl(store.redis_key(KEY)) <= 120_000


async def test_ttl_reaches_the_refresh_tokens_expiry_when_that_is_later(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    store = make_store()

    await store.set(KEY, token(lifetime=60, refresh_token="r",
                               refresh_expires_at=time.time() + 1800))

    assert 1_790_000 < raw.pttl(store.redis_key(KEY)) <= 1_800_000


@pytest.mark.parametrize("stored", [
    token(lifetime=None),
    token(lifetime=60, refresh_token="refresh of unknown lifetime"),
], ids=["no expiry", "refresh token without expiry"])
async def test_no_ttl_when_nothing_about_the_token_expires(
    make_store: MakeStore, raw: redis.Redis, stored: Token
) -> None:
    store = make_store()

    await store.set(KEY, stored)

    assert raw.pttl(store.redis_key(KEY)) == -1


@pytest.mark.parametrize("lifetime", [1e17, float("inf"), float("nan"), 11 * 365 * 86400.0],
                         ids=["1e17 s", "inf", "nan", "eleven years"])
async def test_an_absurd_expiry_gets_a_clamped_ttl_never_none_or_an_error(
    make_store: MakeStore, raw: redis.Redis, caplog: pytest.LogCaptureFixture, lifetime: float
) -> None:
    store = make_store(timeout=30)  # a loaded machine is not what this test is about

    for _ in range(2):  # the second write finds Redis as usable as the first
        await store.set(KEY, token("absurd", lifetime=lifetime))

    assert MAX_TTL_MS - 60_000 < raw.pttl(store.redis_key(KEY)) <= MAX_TTL_MS
    stored = await store.get(KEY)
    assert stored is not None and stored.access_token == "access-absurd"
    assert "unreachable" not in caplog.text


def test_the_set_script_removes_the_token_when_redis_refuses_its_ttl(
    raw: redis.Redis, namespace: str
) -> None:
    key = f"{namespace}:{KEY}"
    raw.hset(key, "token", "an older token")

    with pytest.raises(redis.ResponseError):
        raw.eval(_SET, 1, key, "blob", "fingerprint", str(2**64))  # past PEXPIRE's range

    assert raw.exists(key) == 0  # never a token that outlives its expiry


async def test_an_expired_entry_reads_as_no_token(make_store: MakeStore) -> None:
    store = make_store()

    await store.set(KEY, token(lifetime=0.05))
    await asyncio.sleep(0.1)

    assert await store.get(KEY) is None


async def test_compare_and_delete_never_wipes_a_fresher_token(make_store: MakeStore) -> None:
    slow_process, fast_process = make_store(), make_store()
    rejected, fresher = token("rejected"), token("fresher")
    await slow_process.set(KEY, rejected)
    await fast_process.set(KEY, fresher)  # another process already replaced it

    assert await slow_process.delete(KEY, only_if=rejected) is False
    assert await fast_process.get(KEY) == fresher
    assert await slow_process.delete(KEY, only_if=fresher) is True
    assert await fast_process.get(KEY) is None


async def test_a_token_under_another_cipher_reads_as_no_token(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    await make_store(cipher=Reverse()).set(KEY, token())
    plain = make_store()

    assert await plain.get(KEY) is None
    assert "ignoring the token stored" in caplog.text


# --- the lock -------------------------------------------------------------------------------


async def test_lock_admits_one_process_at_a_time(make_store: MakeStore) -> None:
    stores = [make_store(poll_interval=0.01) for _ in range(4)]
    inside: list[int] = []
    overlaps: list[int] = []

    async def work(number: int, store: RedisTokenStore) -> None:
        async with store.lock(KEY):
            if inside:
                overlaps.append(number)
            inside.append(number)
            await asyncio.sleep(0.05)
            inside.remove(number)

    await asyncio.gather(*(work(n, s) for n, s in enumerate(stores)))

    assert overlaps == []


async def test_lock_is_released_only_by_its_owner(make_store: MakeStore, raw: redis.Redis) -> None:
    store = make_store()
    lock_key = store.redis_key(KEY) + ":lock"

    async with store.lock(KEY):
        owner = raw.get(lock_key)
        raw.set(lock_key, b"another-host:1:abc")  # ours expired and someone took over

    assert isinstance(owner, bytes) and owner.decode().split(":")[1] == str(os.getpid())
    assert raw.get(lock_key) == b"another-host:1:abc"


async def test_a_dead_holders_lock_expires_and_another_process_takes_over(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    store = make_store(poll_interval=0.01)
    raw.set(store.redis_key(KEY) + ":lock", b"dead-host:4242:abc", px=300)
    started = time.monotonic()

    async with store.lock(KEY):
        waited = time.monotonic() - started

    assert 0.25 < waited < 1.5


async def test_a_live_holder_keeps_its_lock_past_the_ttl_and_waiters_time_out(
    make_store: MakeStore,
) -> None:
    holder = make_store(lock_ttl=0.3)
    waiter = make_store(lock_ttl=0.3, wait_timeout=0.8, poll_interval=0.02)

    async with holder.lock(KEY):
        with pytest.raises(TokenStoreError) as timed_out:
            async with waiter.lock(KEY):
                pass

    assert f":{os.getpid()})" in str(timed_out.value)  # names the holder's host and pid
    async with waiter.lock(KEY):  # released: free at once
        pass


# --- when Redis is gone ---------------------------------------------------------------------


async def test_unreachable_redis_falls_back_to_memory_with_one_warning(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    store = make_store(url=f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    first, second = token("first"), token("second")

    for _ in range(3):
        async with store.lock(KEY):
            assert await store.get(KEY) is None
            await store.set(KEY, first)
        assert await store.get(KEY) == first
        assert await store.delete(KEY, only_if=second) is False
        assert await store.delete(KEY, only_if=first) is True

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "unreachable" in warnings[0].getMessage()


async def test_a_command_redis_refuses_is_a_token_store_error_not_an_outage(
    make_store: MakeStore, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(timeout=30)  # a loaded machine is not what this test is about
    raw.set(store.redis_key(KEY), b"a value of another type under the token's key")

    with pytest.raises(TokenStoreError, match="WRONGTYPE") as read:
        await store.get(KEY)
    with pytest.raises(TokenStoreError, match="WRONGTYPE"):  # inside a script, too
        await store.delete(KEY, only_if=token())

    assert "not an outage" in str(read.value)
    assert "unreachable" not in caplog.text
    await store.set(KEY, token("written"))  # Redis was never treated as down
    assert (await store.get(KEY)) == (await make_store(timeout=30).get(KEY))


async def test_redis_refusing_a_script_by_acl_is_a_token_store_error(
    make_store: MakeStore, redis_server: Callable[[], RedisServer]
) -> None:
    server = redis_server()
    with redis.Redis.from_url(server.url) as admin:
        admin.acl_setuser("app", enabled=True, passwords=["+app-Pa55word"],
                          keys=["*"], commands=["+@all", "-evalsha", "-eval"])
    url = server.url.replace("redis://", "redis://app:app-Pa55word@")
    store = make_store(url=url)

    with pytest.raises(TokenStoreError, match="NoPermissionError") as refused:
        await store.set(KEY, token())

    assert "app-Pa55word" not in str(refused.value)


async def test_a_full_redis_still_counts_as_an_outage(
    make_store: MakeStore, redis_server: Callable[[], RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    server = redis_server()
    with redis.Redis.from_url(server.url) as admin:
        admin.config_set("maxmemory", "1")
    store = make_store(url=server.url)

    async with store.lock(KEY):  # SET NX refused (OOM): the lock is this process's own
        await store.set(KEY, token("kept"))

    assert "unreachable" in caplog.text and "OutOfMemoryError" in caplog.text


async def test_strict_store_raises_instead_of_falling_back(make_store: MakeStore) -> None:
    store = make_store(url=f"redis://:pa55-Word-xyz@127.0.0.1:{free_port()}/0", strict=True,
                       timeout=0.5)

    with pytest.raises(TokenStoreError) as failed:
        await store.get(KEY)
    with pytest.raises(TokenStoreError):
        async with store.lock(KEY):
            pass

    assert "strict=True" in str(failed.value)
    assert "pa55-Word-xyz" not in str(failed.value)
    assert "pa55-Word-xyz" not in repr(store)
    assert "***" in repr(store)


async def test_store_goes_back_to_redis_once_it_answers_again(
    make_store: MakeStore, redis_server: Callable[[], RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="vendorkit")
    server = redis_server()
    store = make_store(url=server.url, retry_pause=0.2, timeout=0.5)
    await store.set(KEY, token("before"))
    server.stop()

    await store.set(KEY, token("during"))  # falls back: kept in memory only
    during = await store.get(KEY)
    server.start()  # the same port, empty
    await asyncio.sleep(0.25)
    await store.set(KEY, token("after"))

    with redis.Redis.from_url(server.url) as client:
        value = client.hget(store.redis_key(KEY), "token")
    assert during is not None and during.access_token == "access-during"
    assert value is not None and load_token(value).access_token == "access-after"
    assert "reachable again" in caplog.text


async def test_store_can_be_used_again_after_aclose(make_store: MakeStore) -> None:
    store = make_store()
    kept = token("kept")
    await store.set(KEY, kept)

    await store.aclose()

    assert await store.get(KEY) == kept


# --- clients sharing the store (each store stands for one process) --------------------------


@pytest.fixture
async def cloud4wi() -> AsyncIterator[RunningSandbox]:
    async with serve("cloud4wi") as sandbox:
        yield sandbox


@pytest.fixture
async def make_client(make_store: MakeStore) -> AsyncIterator[Callable[..., Any]]:
    """A vendor client with a Redis store of its own, like one process of a fleet."""
    clients: list[Any] = []

    def make(sandbox: RunningSandbox, **options: Any) -> Any:
        kwargs: dict[str, Any] = {**sandbox.client_kwargs, **options}
        client = CLIENTS[sandbox.vendor](**kwargs, token_store=make_store())
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_processes_sharing_redis_make_one_login(
    cloud4wi: RunningSandbox, make_client: Callable[..., Any]
) -> None:
    clients = [make_client(cloud4wi) for _ in range(4)]

    results = await asyncio.gather(
        *(c.get_organizations("c1") for c in clients for _ in range(100))
    )

    assert len(results) == 400
    assert cloud4wi.state.counters.logins == 1
    assert sum(c.stats.logins for c in clients) == 1


async def test_a_process_that_finds_a_valid_token_makes_no_login(
    cloud4wi: RunningSandbox, make_client: Callable[..., Any]
) -> None:
    first = make_client(cloud4wi)
    await first.get_organizations("c1")
    late = make_client(cloud4wi)

    await late.get_organizations("c1")

    assert late.stats.logins == 0
    assert late.token == first.token
    assert cloud4wi.state.counters.logins == 1


async def test_closing_one_client_leaves_the_token_for_the_fleet(
    cloud4wi: RunningSandbox, make_client: Callable[..., Any]
) -> None:
    leaving, staying = make_client(cloud4wi), make_client(cloud4wi)
    await leaving.get_organizations("c1")
    shared = leaving.token

    await leaving.aclose()
    await staying.get_organizations("c1")

    assert cloud4wi.state.counters.logouts == 0
    assert staying.token == shared
    assert cloud4wi.state.counters.logins == 1


async def test_logout_revokes_and_removes_the_token_for_every_process(
    cloud4wi: RunningSandbox, make_client: Callable[..., Any]
) -> None:
    leaving, staying = make_client(cloud4wi), make_client(cloud4wi)
    await leaving.get_organizations("c1")
    await staying.get_organizations("c1")

    assert await leaving.logout() is True
    assert await leaving.session.store.get(leaving.session.tokens.key) is None
    await staying.get_organizations("c1")  # rejected, then one login for the fleet

    assert cloud4wi.state.counters.logouts == 1
    assert cloud4wi.state.counters.logins == 2
    assert staying.stats.reauths == 1


async def test_a_revoked_token_is_replaced_by_one_login_fleet_wide(
    cloud4wi: RunningSandbox, make_client: Callable[..., Any]
) -> None:
    clients = [make_client(cloud4wi) for _ in range(4)]
    await asyncio.gather(*(c.get_organizations("c1") for c in clients))
    cloud4wi.state.revoke_all_tokens()

    await asyncio.gather(*(c.get_organizations("c1") for c in clients for _ in range(50)))

    assert cloud4wi.state.counters.logins == 2
    assert len({c.token.access_token for c in clients}) == 1


async def test_a_process_with_an_old_token_refreshes_with_the_fleets_newest(
    make_client: Callable[..., Any],
) -> None:
    # Wokelo rotates refresh tokens and ends the session if a used one comes back: the
    # idle process must refresh with the token the fleet stored, not the one it holds.
    async with serve("wokelo", token_lifetime=1.0) as wokelo:
        busy, idle = make_client(wokelo), make_client(wokelo)
        await busy.search_companies("acme")
        await idle.search_companies("acme")
        await asyncio.sleep(1.05)
        await busy.search_companies("acme")  # refresh 1, by the busy process
        await asyncio.sleep(1.05)

        await idle.search_companies("acme")  # holds token 1; token 2 has expired too

        assert wokelo.state.counters.refreshes == 2
        assert wokelo.state.counters.logins == 1
        assert wokelo.state.counters.failed_logins == 0
        stored = await idle.session.store.get(idle.session.tokens.key)
        assert stored == idle.token
