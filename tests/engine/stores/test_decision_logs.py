"""Decision logs: a put returns once its record is readable, however many are written at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from redis.exceptions import RedisError

from engine.stores.decisions import DecisionLog
from engine.stores.memory_decisions import MemoryDecisionLog
from engine.stores.redis_decisions import MAX_BATCH, RedisDecisionLog
from tests.engine.stores.conftest import TEST_REDIS_URL, Run, flushed_redis

NOW = 1_800_000_000.0


def record(index: int) -> dict[str, object]:
    return {"decision_id": f"d{index:021d}", "decision": "allow", "rules": [{"rule": "10-x", "logs": [str(index)]}]}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def decision_log(request: pytest.FixtureRequest, run: Run) -> Iterator[DecisionLog]:
    if request.param == "memory":
        yield MemoryDecisionLog(ttl_seconds=60, max_records=10_000)
        return
    with flushed_redis(run):
        shared = RedisDecisionLog(TEST_REDIS_URL, ttl_seconds=60)
        try:
            yield shared
        finally:
            run(shared.close())


def test_each_of_many_concurrent_records_is_readable_once_its_put_returns(decision_log: DecisionLog,
                                                                          run: Run) -> None:
    count = 3 * MAX_BATCH + 5  # several full batches and a partial one, more than the pool's connections
    read = asyncio.Semaphore(8)

    async def put_then_read(index: int) -> object:
        await decision_log.put(f"d{index:021d}", record(index), NOW)
        async with read:
            return await decision_log.get(f"d{index:021d}", NOW)

    async def scenario() -> list[object]:
        return list(await asyncio.gather(*(put_then_read(index) for index in range(count))))

    assert run(scenario()) == [record(index) for index in range(count)]


def test_a_put_its_caller_stopped_waiting_for_does_not_stop_the_others(decision_log: DecisionLog,
                                                                       run: Run) -> None:
    async def scenario() -> list[object]:
        abandoned = asyncio.ensure_future(decision_log.put("d" + "0" * 21, record(0), NOW))
        others = [asyncio.ensure_future(decision_log.put(f"d{index:021d}", record(index), NOW))
                  for index in range(1, 5)]
        abandoned.cancel()
        await asyncio.gather(*others)
        return [await decision_log.get(f"d{index:021d}", NOW) for index in range(1, 5)]

    assert run(scenario()) == [record(index) for index in range(1, 5)]


@pytest.mark.redis
def test_every_put_of_a_batch_raises_when_redis_refuses_it(run: Run) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    down = RedisDecisionLog(f"redis://127.0.0.1:{port}/0", ttl_seconds=60, timeout_ms=200)

    async def scenario() -> list[BaseException | None]:
        results = await asyncio.gather(*(down.put(f"d{index:021d}", record(index), NOW) for index in range(5)),
                                       return_exceptions=True)
        return list(results)

    try:
        outcomes = run(scenario())
    finally:
        run(down.close())
    assert all(isinstance(outcome, (RedisError, OSError)) for outcome in outcomes), outcomes


def test_the_records_are_kept_whole(decision_log: DecisionLog, run: Run) -> None:
    kept = record(7)
    run(decision_log.put("d" + "7" * 21, kept, NOW))
    kept["decision"] = "deny"  # a caller changing its dict afterwards changes no stored record
    assert run(decision_log.get("d" + "7" * 21, NOW)) == record(7)

