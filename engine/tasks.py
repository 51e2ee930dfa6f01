"""Stopping a background task for sure.

`task.cancel(); await task` is not enough on Python 3.11: `asyncio.wait_for` returns its inner
result when that finishes in the same loop step as the cancellation, and the cancellation is lost
(fixed in 3.12, where wait_for became `asyncio.timeout`). redis-py awaits every socket write that
way (`wait_for(writer.drain(), socket_timeout)`), so a task cancelled while it subscribes or sends
a command can carry on as if nothing happened, into a read with no timeout, and an `await task`
after the cancel then waits until the process is killed. It did: the rule follower's listener
swallowed the shutdown's cancel, its close ate the whole shutdown deadline, and every component
closed after it (the rule store, the directory) was skipped, its connections left open.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# How long a cancelled task gets before it is cancelled again: a cancel is delivered at the
# task's next step, so one that is not lost ends it within a loop turn or two.
RECANCEL_SECONDS = 0.05


async def stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel each task, again and again until it has ended, and collect how it ended.

    A task that ends with an exception other than its cancellation has that exception retrieved
    here and dropped (it is stopping; its own code logs what it must). A cancellation of the
    caller is not absorbed: `asyncio.wait` raises it, and the tasks are left cancelled."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in tasks:
        if not task.cancelled():
            with contextlib.suppress(Exception):
                task.exception()
