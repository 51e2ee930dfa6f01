"""ChallengeStore.consume: read and delete in one atomic step (single-use records), on memory and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from engine.stores.challenges import Challenge, ChallengeStore

Run = Callable[[Awaitable[Any]], Any]
NOW = 1_000_000_000.0


def record(record_id: str = "ac-1", ttl_seconds: float = 60) -> Challenge:
    return Challenge(record_id, "authcode", "u-1", "demo", (), NOW + ttl_seconds,
                     data={"redirect_uri": "https://app.example.com/callback", "answer": {"amr": ["pwd", "sms"]}})


def test_a_consumed_record_is_returned_once_and_then_gone(store: ChallengeStore, run: Run) -> None:
    run(store.create(record(), NOW))
    assert run(store.consume("ac-1", NOW + 1)) == record()
    assert run(store.consume("ac-1", NOW + 1)) is None
    assert run(store.get("ac-1", NOW + 1)) is None


def test_an_expired_record_cannot_be_consumed(store: ChallengeStore, run: Run) -> None:
    run(store.create(record(ttl_seconds=60), NOW))
    assert run(store.consume("ac-1", NOW + 60)) is None
    assert run(store.consume("unknown", NOW)) is None


def test_of_concurrent_consumers_exactly_one_gets_the_record(store: ChallengeStore, run: Run) -> None:
    run(store.create(record(), NOW))

    async def race() -> list[Challenge | None]:
        return list(await asyncio.gather(*(store.consume("ac-1", NOW + 1) for _ in range(20))))

    results = run(race())
    assert [result for result in results if result is not None] == [record()]
