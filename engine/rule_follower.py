"""RuleFollower keeps this instance on the shared rule set: on each announcement, and every CHECK_INTERVAL_SECONDS.

The periodic check is the fallback for what pub/sub cannot promise: an announcement missed while
the subscription was down, a Redis restarted empty (the check seeds it again from the active set).
Both paths run RuleOps.converge, which is idempotent. While the store is down the instance keeps
serving its active set; the outage and the recovery are logged once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engine.errors import StoreUnavailable
from engine import tasks
from engine.rule_ops import RuleOps

log = logging.getLogger("engine.rule_follower")

CHECK_INTERVAL_SECONDS = 0.5  # a missed announcement still converges within the 1 s
RESUBSCRIBE_SECONDS = 0.5


class RuleFollower:
    def __init__(self, rules: RuleOps, check_interval_seconds: float = CHECK_INTERVAL_SECONDS) -> None:
        self.rules = rules
        self.check_interval_seconds = check_interval_seconds
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reachable = True

    async def start(self) -> None:
        """Converge once before serving (the shared version wins over the folder; an empty store is
        seeded from it), then follow in the background. Nothing to do without a shared store."""
        if not self.rules.sync.is_shared:
            return
        await self._converge()
        self._tasks = [asyncio.create_task(self._check(), name="rules-check"),
                       asyncio.create_task(self._listen(), name="rules-listen")]

    async def close(self) -> None:
        await tasks.stop(*self._tasks)
        self._tasks = []

    async def _check(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_interval_seconds):
                    await self._wake.wait()
            self._wake.clear()
            await self._converge()

    async def _listen(self) -> None:
        while True:
            try:
                async for _version in self.rules.sync.changes():
                    self._wake.set()
            except StoreUnavailable:
                pass
            await asyncio.sleep(RESUBSCRIBE_SECONDS)
            self._wake.set()  # announcements may have been missed while unsubscribed

    async def _converge(self) -> None:
        try:
            await self.rules.converge()
        except StoreUnavailable:
            if self._reachable:
                log.warning("rules_sync_unavailable version=%s", self.rules.active.version)
            self._reachable = False
            return
        except Exception:  # the follower must outlive any one bad check
            log.exception("rules_sync_failed")
            return
        if not self._reachable:
            log.info("rules_sync_restored version=%s", self.rules.active.version)
        self._reachable = True
