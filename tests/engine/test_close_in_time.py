"""The lifespan's close: stage by stage, each stage's components together, one deadline for all.
A component that hangs on close (a frozen Redis) is logged and skipped without keeping the others
of its stage open (it used to: they were closed one after another, and the deadline it ate
skipped every component after it, the directory included)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from engine.app import close_in_time


def test_a_component_that_hangs_keeps_no_other_of_its_stage_open(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[str] = []

    def closer(name: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            closed.append(name)
        return close

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise ConnectionError("gone")

    with caplog.at_level(logging.WARNING, logger="engine.app"):
        asyncio.run(close_in_time(0.2, (
            {"sandbox": closer("sandbox")},
            {"rule_follower": closer("rule_follower")},
            {"rule_sync": hangs, "store": fails, "decisions": closer("decisions"), "directory": closer("directory")})))

    assert closed == ["sandbox", "rule_follower", "decisions", "directory"]  # in stage order; the rest regardless
    assert "shutdown_close_timeout component=rule_sync" in caplog.text
    assert "shutdown_close_failed component=store type=ConnectionError" in caplog.text


def test_a_later_stage_starts_only_once_the_earlier_one_is_closed() -> None:
    order: list[str] = []

    async def slow_sandbox() -> None:
        await asyncio.sleep(0.05)
        order.append("sandbox")

    async def store() -> None:
        order.append("store")

    asyncio.run(close_in_time(5, ({"sandbox": slow_sandbox}, {"store": store})))
    assert order == ["sandbox", "store"]
