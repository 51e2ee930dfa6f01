"""RedisRuleSync: the active rule set of every instance in one Redis hash, changes announced by pub/sub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from engine.errors import StoreUnavailable
from engine.stores.rule_sync import ACTIVE_KEY, CHANGED_CHANNEL


class RuleSyncScripts:
    # KEYS[1] - the active set hash   mfa:rules:active
    # ARGV[1] - the expected current version; "" means: only into an empty hash (seeding)
    # ARGV[2] - the new version
    # ARGV[3] - the new entry (orjson)
    # ARGV[4] - the channel to announce on   mfa:rules:changed
    # return 1: stored and announced (also when ARGV[2] is already stored: a retried call)
    #      | 0: the current version is another one, nothing written
    PUBLISH = """
        local current = redis.call('hget', KEYS[1], 'version')
        if current and current ~= ARGV[1] and current ~= ARGV[2] then
            return 0
        end
        redis.call('hset', KEYS[1], 'version', ARGV[2], 'set', ARGV[3])
        redis.call('publish', ARGV[4], ARGV[2])
        return 1
    """


class RedisRuleSync:
    kind = "redis"
    is_shared = True

    def __init__(self, url: str, *, timeout_ms: int = 500) -> None:
        """`timeout_ms` (store.timeout_ms) bounds connecting and each reply; the subscription has
        no reply timeout (it waits for announcements) but connects within the same bound. One
        retry: the first command on a pooled connection to a restarted Redis finds it closed
        (PUBLISH is safe to retry, see the script)."""
        seconds = timeout_ms / 1000
        self._redis: redis.Redis = redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds,
                                                        retry=Retry(NoBackoff(), 1))
        self._listener: redis.Redis = redis.Redis.from_url(url, socket_connect_timeout=seconds)
        self._publish = self._redis.register_script(RuleSyncScripts.PUBLISH)

    async def version(self) -> str | None:
        try:
            raw = await self._redis.hget(ACTIVE_KEY, "version")
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("the rule store is unavailable") from exc
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def read(self) -> dict[str, Any] | None:
        try:
            raw = await self._redis.hget(ACTIVE_KEY, "set")
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("the rule store is unavailable") from exc
        if raw is None:
            return None
        try:
            entry: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:  # written by something else: as unreadable as a store that is down
            raise StoreUnavailable("the shared rule set in the store is unreadable") from exc
        return entry

    async def publish(self, entry: Mapping[str, Any], expected: str | None) -> bool:
        try:
            stored = await self._publish(keys=[ACTIVE_KEY], args=[
                expected or "", entry["version"], orjson.dumps(dict(entry)), CHANGED_CHANNEL])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("the rule store is unavailable") from exc
        return int(stored) == 1

    async def changes(self) -> AsyncIterator[str]:
        pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANGED_CHANNEL)
            async for message in pubsub.listen():
                data = message["data"]
                if message["type"] == "message":
                    yield data.decode() if isinstance(data, bytes) else str(data)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("the rule store is unavailable") from exc
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._listener.aclose(close_connection_pool=True)
        await self._redis.aclose(close_connection_pool=True)
