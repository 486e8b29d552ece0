"""Fixtures for the token-store tests: a real redis-server on 127.0.0.1, and namespaces.

``redis_url`` is ``VENDORKIT_TEST_REDIS_URL`` when CI exports one, else a redis-server this
session starts on a free port. Without redis-server installed, the Redis tests fail when
``CI=true`` (CI must run them) and are skipped elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from .redis_server import REDIS_URL_VARIABLE, RedisServer


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis for the whole session: CI's, or one started here and stopped after."""
    url = os.environ.get(REDIS_URL_VARIABLE)
    if url:
        yield url
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[Callable[[], RedisServer]]:
    """Start dedicated redis-servers (for tests that stop one); all stopped after the test."""
    servers: list[RedisServer] = []

    def start() -> RedisServer:
        servers.append(RedisServer().start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A namespace of this test's own; its keys are deleted afterwards."""
    name = f"vktest-{uuid.uuid4().hex[:12]}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{name}:*"))
        if keys:
            client.delete(*keys)
