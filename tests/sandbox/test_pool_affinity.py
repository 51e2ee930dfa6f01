"""sandbox.cpu_affinity "loop": the event-loop thread and its workers share one CPU, and a
worker spinning in C on that CPU is still killed at its deadline."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from sandbox.affinity import PROCESS_CPUS, CpuClaim, release_thread
from sandbox.pool import WorkerPool
from sandbox.runner import RunReport
from tests.conftest import TEST_LIMITS, LoopThread, SyncRunner, program_set

BENIGN = 'def rule(data, out):\n    out["x"] = 1\n'
# One C call that never returns within the test: only the parent's kill ends it.
CATASTROPHIC = 'def rule(data, out):\n    re.match("(a+)+b", "a" * 40)\n'
HANG_ON_REQUEST = 'def rule(data, out):\n    if data["hang"]:\n        re.match("(a+)+b", "a" * 40)\n'
KILL_DEADLINE_S = (TEST_LIMITS.pipeline_timeout_ms + TEST_LIMITS.kill_grace_ms) / 1000


def _affinity_of_thread(loop_thread: LoopThread) -> set[int]:
    async def read() -> set[int]:
        return os.sched_getaffinity(0)

    return loop_thread.call(read())


@pytest.fixture
def pinned_pool(loop_thread: LoopThread) -> Iterator[WorkerPool]:
    pool = WorkerPool("sandbox.testing:HOST", TEST_LIMITS, size=2, cpu_affinity="loop")
    loop_thread.call(pool.start())
    yield pool
    loop_thread.call(pool.close())


def _two_at_once(pool: WorkerPool, loop_thread: LoopThread) -> list[RunReport]:
    async def both() -> list[RunReport]:
        rules = program_set({"10-x": BENIGN})
        return list(await asyncio.gather(*(pool.run(rules, {"input": {}}) for _ in range(2))))

    return loop_thread.call(both())


def test_the_loop_thread_and_each_worker_that_evaluated_run_on_one_cpu(
        pinned_pool: WorkerPool, loop_thread: LoopThread) -> None:
    reports = _two_at_once(pinned_pool, loop_thread)

    assert [report.result for report in reports] == [{"out": {"x": 1}, "failures": []}] * 2
    loop_cpus = _affinity_of_thread(loop_thread)
    assert len(loop_cpus) == 1
    assert [os.sched_getaffinity(worker.process.pid) for worker in pinned_pool._all] == [loop_cpus] * 2
    assert os.sched_getaffinity(0) == set(PROCESS_CPUS)  # only the loop's thread was pinned


def test_a_replacement_worker_starts_on_any_cpu_and_joins_the_loop_s_at_its_first_evaluation(
        pinned_pool: WorkerPool, loop_thread: LoopThread) -> None:
    _two_at_once(pinned_pool, loop_thread)
    report = SyncRunner(pinned_pool, loop_thread).run({"10-hang": CATASTROPHIC}, {"input": {}})
    assert [t.outcome for t in report.trace] == ["killed"]
    deadline = time.monotonic() + 10
    while pinned_pool.state()["idle"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    fresh = [worker for worker in pinned_pool._all if not worker.pinned]
    assert len(fresh) == 1
    assert os.sched_getaffinity(fresh[0].process.pid) == set(PROCESS_CPUS)

    _two_at_once(pinned_pool, loop_thread)

    assert os.sched_getaffinity(fresh[0].process.pid) == _affinity_of_thread(loop_thread)


def test_workers_spinning_in_c_on_the_loop_s_cpu_are_still_killed_at_their_deadline(
        pinned_pool: WorkerPool, loop_thread: LoopThread) -> None:
    # Two workers at 100% on the loop's own CPU: the loop gets a fair share of it, so the
    # deadline timer fires on time, and the rest of the loop keeps answering.
    rules = program_set({"10-hang": HANG_ON_REQUEST})

    async def two_hangs_and_a_ticking_loop() -> tuple[list[float], float, list[RunReport]]:
        loop = asyncio.get_running_loop()
        # Both workers started, pinned and holding the rules: what is timed is the run alone.
        await asyncio.gather(*(pinned_pool.run(rules, {"input": {"hang": False}}) for _ in range(2)))
        started = loop.time()

        async def timed() -> tuple[float, RunReport]:
            report = await pinned_pool.run(rules, {"input": {"hang": True}})
            return loop.time() - started, report

        evaluations = [asyncio.ensure_future(timed()) for _ in range(2)]
        worst_tick = 0.0
        while not all(evaluation.done() for evaluation in evaluations):
            before = loop.time()
            await asyncio.sleep(0.01)
            worst_tick = max(worst_tick, loop.time() - before)
        results = [evaluation.result() for evaluation in evaluations]
        return [elapsed for elapsed, _ in results], worst_tick, [report for _, report in results]

    elapsed, worst_tick, reports = loop_thread.call(two_hangs_and_a_ticking_loop())

    assert [[t.outcome for t in report.trace] for report in reports] == [["killed"], ["killed"]]
    assert all(KILL_DEADLINE_S <= seconds < KILL_DEADLINE_S + 0.25 for seconds in elapsed), elapsed
    assert worst_tick < 0.2
    assert pinned_pool.kills == 2


def test_closing_the_pool_gives_the_loop_thread_its_cpus_back(loop_thread: LoopThread) -> None:
    pool = WorkerPool("sandbox.testing:HOST", TEST_LIMITS, size=1, cpu_affinity="loop")
    loop_thread.call(pool.start())
    try:
        assert len(_affinity_of_thread(loop_thread)) == 1
    finally:
        loop_thread.call(pool.close())

    assert _affinity_of_thread(loop_thread) == set(PROCESS_CPUS)


def test_an_executor_thread_created_from_the_pinned_loop_can_release_itself(loop_thread: LoopThread) -> None:
    # argon2's executor: created lazily from the loop thread, it would inherit the loop's one CPU.
    claim = loop_thread.call(_pin_here("mfa-engine-test-release"))
    executor = ThreadPoolExecutor(1, initializer=release_thread)
    try:

        async def from_the_loop() -> set[int]:
            return await asyncio.get_running_loop().run_in_executor(executor, os.sched_getaffinity, 0)

        assert loop_thread.call(from_the_loop()) == set(PROCESS_CPUS)
        assert _affinity_of_thread(loop_thread) == {claim.cpu}
    finally:
        executor.shutdown()
        loop_thread.call(_close(claim))


async def _pin_here(namespace: str) -> CpuClaim:
    return CpuClaim.pin_loop_thread(namespace)


async def _close(claim: CpuClaim) -> None:
    claim.close()


@pytest.mark.skipif(len(PROCESS_CPUS) < 2, reason="one CPU: every process shares it")
def test_serving_processes_claim_different_cpus_while_there_are_free_ones() -> None:
    claims: list[CpuClaim] = []

    def claim() -> None:  # each thread stands for one process's loop thread (and ends pinned)
        claims.append(CpuClaim.pin_loop_thread("mfa-engine-test-claims"))

    for _ in range(len(PROCESS_CPUS) + 1):
        thread = threading.Thread(target=claim)
        thread.start()
        thread.join()
    try:
        cpus = [held.cpu for held in claims]
        assert sorted(cpus[:-1]) == sorted(PROCESS_CPUS)
        assert cpus[-1] in PROCESS_CPUS  # every CPU held: shares one rather than failing
    finally:
        for held in claims:
            held.close()
