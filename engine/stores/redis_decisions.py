"""RedisDecisionLog: decision records shared by every instance, each under its own key with a TTL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from engine.errors import StoreUnavailable
from engine.stores.decisions import DECISION_KEY


class RedisDecisionLog:
    def __init__(self, url: str, *, ttl_seconds: int, timeout_ms: int = 500) -> None:
        """`timeout_ms` (store.timeout_ms) bounds connecting and each reply, as for the challenge
        store: a frozen Redis must not hold a login longer than that."""
        seconds = timeout_ms / 1000
        self._redis: redis.Redis = redis.Redis.from_url(url, socket_timeout=seconds,
                                                        socket_connect_timeout=seconds)
        self._ttl_seconds = ttl_seconds

    async def put(self, decision_id: str, record: Mapping[str, Any], now: float) -> None:
        # Redis expires the key itself: the TTL is from the write, whatever `now` says.
        await self._redis.set(DECISION_KEY.format(decision_id), orjson.dumps(dict(record)), ex=self._ttl_seconds)

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
        await self._redis.aclose(close_connection_pool=True)
