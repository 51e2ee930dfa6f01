"""MemoryDecisionLog: decision records in process, for one instance; bounded in count and time."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson


class MemoryDecisionLog:
    def __init__(self, *, ttl_seconds: int, max_records: int) -> None:
        """At most `max_records` are kept (the oldest written is dropped first), each for
        `ttl_seconds`: logins must not grow the process without bound."""
        self._ttl_seconds = ttl_seconds
        self._max_records = max_records
        # id -> (expires_at, orjson bytes), oldest first: a stored copy no caller can change.
        self._records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def put(self, decision_id: str, record: Mapping[str, Any], now: float) -> None:
        self._drop_expired(now)
        self._records.pop(decision_id, None)
        while len(self._records) >= self._max_records:
            self._records.popitem(last=False)
        self._records[decision_id] = (now + self._ttl_seconds, orjson.dumps(dict(record)))

    async def get(self, decision_id: str, now: float) -> dict[str, Any] | None:
        found = self._records.get(decision_id)
        if found is None or found[0] <= now:
            return None
        record: dict[str, Any] = orjson.loads(found[1])
        return record

    async def close(self) -> None:
        self._records.clear()

    def _drop_expired(self, now: float) -> None:
        # Every record has the same TTL, so the oldest written expire first (with a clock that
        # goes back, a few stay until the bound pushes them out).
        while self._records:
            expires_at = next(iter(self._records.values()))[0]
            if expires_at > now:
                return
            self._records.popitem(last=False)
