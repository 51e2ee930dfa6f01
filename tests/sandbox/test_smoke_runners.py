"""Both runners agree on the basics: order, logs, deny stops, failures fail closed."""

from __future__ import annotations

import asyncio
import contextlib
import time

from sandbox.pool import WorkerPool
from tests.conftest import LoopThread, SyncRunner, program_set, rule_payload


def test_rules_run_in_order_and_see_earlier_changes(rule_runner: SyncRunner) -> None:
    report = rule_runner.run(
        {
            "10-first": "def rule(user, context):\n    context.multifactor.add_factor('sms')\n",
            "20-second": "def rule(user, context):\n    print(context.multifactor.factors)\n"
                         "    context.multifactor.enable()\n",
        },
        rule_payload(),
    )
    assert report.result is not None
    assert report.result["mfa_required"] is True
    assert report.result["factors"] == ["sms"]
    assert [t.outcome for t in report.trace] == ["ok", "ok"]
    assert report.trace[1].logs == ("('sms',)",)


def test_a_cancelled_evaluation_retires_its_worker_and_the_pool_keeps_its_size(
    scratch_pool: WorkerPool, loop_thread: LoopThread
) -> None:
    # Busy until its own deadline (100 ms): certainly still running when it is cancelled.
    slow = program_set({"10-slow": "def rule(data, out):\n    while True:\n        pass\n"})

    async def cancel_midway() -> None:
        task = asyncio.ensure_future(scratch_pool.run(slow, {"input": {}}))
        await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    kills = scratch_pool.kills
    loop_thread.call(cancel_midway())
    assert scratch_pool.kills == kills + 1
    deadline = time.monotonic() + 10
    while scratch_pool.state()["idle"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert scratch_pool.state()["idle"] == 2
    report = loop_thread.call(scratch_pool.run(program_set({"10-ok": "def rule(data, out):\n    out['x'] = 1\n"}),
                                               {"input": {}}))
    assert report.result == {"out": {"x": 1}, "failures": []}
