"""Store fixtures: every ChallengeStore test runs against memory and a real Redis, on one loop per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as redis
from redis.exceptions import RedisError

from engine.stores.challenges import ChallengeStore
from engine.stores.memory import MemoryChallengeStore
from engine.stores.redis_store import RedisChallengeStore

# A dedicated database, flushed before and after each test. Not REDIS_URL: a developer's
# deployment setting must never point a FLUSHDB at real data.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

Run = Callable[[Awaitable[Any]], Any]


@pytest.fixture
def run() -> Iterator[Run]:
    """Runs a coroutine to completion on this test's own event loop (shared with `store`)."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


async def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@contextlib.contextmanager
def flushed_redis(run: Run) -> Iterator[None]:
    """The test database, empty before and after the test; fails (REQUIRE_REDIS=1) or skips
    when Redis is unreachable."""
    try:
        run(_flush(TEST_REDIS_URL))
    except (RedisError, OSError) as exc:
        reason = f"Redis at {TEST_REDIS_URL} is unreachable ({exc})"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"{reason} and REQUIRE_REDIS=1")
        pytest.skip(f"{reason}; set REQUIRE_REDIS=1 to fail instead")
    try:
        yield
    finally:
        run(_flush(TEST_REDIS_URL))


def _redis_store(run: Run) -> Iterator[RedisChallengeStore]:
    with flushed_redis(run):
        shared = RedisChallengeStore(TEST_REDIS_URL)
        try:
            yield shared
        finally:
            run(shared.close())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, run: Run) -> Iterator[ChallengeStore]:
    if request.param == "redis":
        yield from _redis_store(run)
        return
    memory = MemoryChallengeStore()
    yield memory
    run(memory.close())


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
def redis_store(run: Run) -> Iterator[RedisChallengeStore]:
    """The Redis store alone, for what only Redis has: round trips, TTLs."""
    yield from _redis_store(run)
