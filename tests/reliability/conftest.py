"""Fixtures for the reliability suite: a ``lab`` of sandboxes and clients per test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from .support import Lab


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with contextlib.AsyncExitStack() as stack:
        yield Lab(stack)
