"""The DecisionLog contract: the record of each decision (/v1/evaluate, /v1/login), kept for a while.

Records are plain JSON data built by engine/decisions.py; a log stores and returns them whole.
Time is an argument (`now`, unix seconds as float) so tests can move it.

Key schema (Redis; the memory log keeps the same records in process, bounded):
    mfa:decision:{decision_id}     str   the record as orjson, EX decisions.ttl_seconds
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

DECISION_KEY = "mfa:decision:{}"


class DecisionLog(Protocol):
    async def put(self, decision_id: str, record: Mapping[str, Any], now: float) -> None:
        """Keep `record` for the log's TTL. Raises when the backend does not answer: the caller
        decides whether that matters (a login does not wait for it)."""

    async def get(self, decision_id: str, now: float) -> dict[str, Any] | None:
        """The record, or None when unknown, expired or dropped."""

    async def close(self) -> None: ...
