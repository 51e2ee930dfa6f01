"""engine.tasks.stop ends a background task even when a cancellation is lost, and the rule
follower closes at any moment of its start on a real Redis.

Python 3.11's asyncio.wait_for drops a cancellation that arrives in the loop step its inner
awaitable finishes; redis-py wraps every socket write in one, so a follower closed while its
listener subscribed used to carry on into a read with no timeout, and its close took the whole
shutdown deadline (the components closed after it were skipped, their connections left open)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine import tasks
from engine.rule_follower import RuleFollower
from engine.stores.redis_rule_sync import RedisRuleSync
from tests.engine.stores.conftest import TEST_REDIS_URL, Run, flushed_redis

# Long enough for any loaded machine to finish a close that works; a lost cancellation waits
# forever, so this only decides how long a failing run takes.
HANG_SECONDS = 10


async def _swallows_cancellations(times: int, finished: list[str]) -> None:
    """What redis-py does by accident on 3.11: a cancellation is caught and the work goes on."""
    for _ in range(times):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
    try:
        await asyncio.sleep(3600)
    finally:
        finished.append("cleaned up")


def test_a_task_that_loses_cancellations_is_stopped_and_cleans_up() -> None:
    async def main() -> list[str]:
        finished: list[str] = []
        task = asyncio.create_task(_swallows_cancellations(3, finished))
        await asyncio.sleep(0)
        async with asyncio.timeout(HANG_SECONDS):
            await tasks.stop(task)
        assert task.cancelled()
        return finished

    assert asyncio.run(main()) == ["cleaned up"]


def test_a_task_that_already_failed_has_its_exception_retrieved() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        task = asyncio.create_task(fails())
        await asyncio.sleep(0)
        await tasks.stop(task)  # does not raise: the task is being stopped, not awaited for a result
        assert not task.cancelled()
        # Retrieved by stop: asyncio would otherwise log "exception was never retrieved".
        assert task._log_traceback is False

    asyncio.run(main())


def test_the_callers_own_cancellation_is_not_absorbed() -> None:
    """A shutdown deadline around stop() must still fire when the task never ends."""

    async def main() -> None:
        released = asyncio.Event()

        async def stubborn() -> None:
            while not released.is_set():
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    pass

        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await tasks.stop(task)
        released.set()
        task.cancel()
        await asyncio.wait({task})

    asyncio.run(main())


class _SharedRules:
    """The part of RuleOps the follower uses: a real Redis rule sync, a converge with nothing to do."""

    def __init__(self, sync: RedisRuleSync) -> None:
        self.sync = sync
        self.active: Any = type("Active", (), {"version": "v1"})()

    async def converge(self) -> None:
        await self.sync.version()


@pytest.mark.parametrize("steps", range(0, 40, 1))
def test_the_rule_follower_closes_at_any_moment_of_its_start(run: Run, steps: int) -> None:
    """Each parameter closes the follower after `steps` more loop steps: connecting, HELLO,
    SELECT, SUBSCRIBE, listening. Before the fix about a third of them hung here."""
    with flushed_redis(run):
        async def main() -> None:
            sync = RedisRuleSync(TEST_REDIS_URL)
            follower = RuleFollower(_SharedRules(sync))  # type: ignore[arg-type]
            await follower.start()
            for _ in range(steps):
                await asyncio.sleep(0)
            # Waited for, not timed out: a deadline's own cancellation could end a close that hangs.
            closing = asyncio.create_task(follower.close())
            done, _ = await asyncio.wait({closing}, timeout=HANG_SECONDS)
            closing.cancel()
            await sync.close()
            assert done, "the follower's close hung: a cancellation of its listener was lost"

        run(main())
