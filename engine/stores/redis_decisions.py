"""RedisDecisionLog: decision records shared by every instance, each under its own key with a TTL."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from engine.errors import StoreUnavailable
from engine.stores.decisions import DECISION_KEY

# Records written in one pipeline at most: bounds one round trip's size.
MAX_BATCH = 64


class RedisDecisionLog:
    def __init__(self, url: str, *, ttl_seconds: int, timeout_ms: int = 500) -> None:
        """`timeout_ms` (store.timeout_ms) bounds connecting and each reply, as for the challenge
        store: a frozen Redis must not hold a login longer than that."""
        seconds = timeout_ms / 1000
        self._redis: redis.Redis = redis.Redis.from_url(url, socket_timeout=seconds,
                                                        socket_connect_timeout=seconds)
        self._ttl_seconds = ttl_seconds
        # Group commit: a put that finds no write in flight writes its record at once; puts that
        # arrive while one is in flight wait, and are written together in one pipeline. A SET
        # costs about 90 us of client CPU here (most of it the socket write), a pipelined one
        # about 30. Each put returns only once its record is in Redis, so any instance reads an
        # id as soon as its answer has been sent. One connection writes, whatever the load
        # (the pool refuses a 101st at once: MaxConnectionsError).
        self._waiting: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._writing = False
        self._writer: asyncio.Task[None] | None = None  # the batch being written, if any

    async def put(self, decision_id: str, record: Mapping[str, Any], now: float) -> None:
        # Redis expires the key itself: the TTL is from the write, whatever `now` says.
        key, value = DECISION_KEY.format(decision_id), orjson.dumps(dict(record))
        if self._writing:
            written = asyncio.get_running_loop().create_future()
            self._waiting.append((key, value, written))
            await written
            return
        self._writing = True
        try:
            await self._redis.set(key, value, ex=self._ttl_seconds)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """At the end of a write: the puts that came meanwhile go next, or no write is in flight."""
        if self._waiting:
            self._writer = asyncio.get_running_loop().create_task(self._write_waiting())
        else:
            self._writing, self._writer = False, None

    async def _write_waiting(self) -> None:
        """Write one batch of what waits; each of its puts learns how it went."""
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        try:
            await self._write(batch)
        except Exception as exc:  # each waiting put raises it (the recorder logs and goes on)
            for _, _, written in batch:
                if not written.done():  # not a put its caller stopped waiting for (timeout)
                    # Each its own copy: one exception raised in 64 tasks gathers all their tracebacks.
                    written.set_exception(copy.copy(exc))
        else:
            for _, _, written in batch:
                if not written.done():
                    written.set_result(None)
        finally:
            self._hand_over()

    async def _write(self, batch: list[tuple[str, bytes, asyncio.Future[None]]]) -> None:
        if len(batch) == 1:  # a pipeline of one costs more than the command alone
            key, value, _ = batch[0]
            await self._redis.set(key, value, ex=self._ttl_seconds)
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, value, _ in batch:
                pipe.set(key, value, ex=self._ttl_seconds)
            await pipe.execute()

    async def get(self, decision_id: str, now: float) -> dict[str, Any] | None:
        try:
            raw = await self._redis.get(DECISION_KEY.format(decision_id))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("the decision store is unavailable") from exc
        if raw is None:
            return None
        record: dict[str, Any] = orjson.loads(raw)
        return record

    async def close(self) -> None:
        while self._writer is not None:  # the batches on their way (close_in_time bounds this)
            await self._writer
        await self._redis.aclose(close_connection_pool=True)
