"""The edges of an evaluation: what a worker's stray output can reach, what crosses back,
and when a rule's time is judged."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from sandbox.inprocess import InProcessRunner
from sandbox.pool import WorkerPool
from sandbox.runner import RunReport
from sandbox.testing import HOST as SCRATCH_HOST
from tests.conftest import TEST_LIMITS, LoopThread, SyncRunner, program_set

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENIGN = 'def rule(data, out):\n    out["greeting"] = "hello " + data["who"]\n'
# A short rule budget and a long kill deadline: one C call overruns the first by far and
# never comes near the second, on any machine.
SLOW_C_LIMITS = dataclasses.replace(TEST_LIMITS, rule_timeout_ms=20, pipeline_timeout_ms=1500, kill_grace_ms=3000)
ONE_LONG_C_CALL = 'def rule(data, out):\n    out["matched"] = re.match("(a+)+b", "a" * 22) is not None\n'


@pytest.fixture(scope="module")
def slow_c_pool(loop_thread: LoopThread) -> Iterator[WorkerPool]:
    pool = WorkerPool("sandbox.testing:HOST", SLOW_C_LIMITS, size=1)
    loop_thread.call(pool.start())
    yield pool
    loop_thread.call(pool.close())


def test_a_worker_s_standard_streams_lead_nowhere_and_the_protocol_has_pipes_of_its_own(
        scratch_pool: WorkerPool) -> None:
    for worker in list(scratch_pool._all):
        streams = [os.readlink(f"/proc/{worker.process.pid}/fd/{fd}") for fd in (0, 1, 2)]
        assert streams == ["/dev/null"] * 3


def test_output_that_cannot_be_encoded_fails_the_evaluation_and_the_worker_keeps_serving(
        scratch_pool: WorkerPool, loop_thread: LoopThread) -> None:
    # The scratch host does not validate text; the worker's encoder is the backstop.
    runner = SyncRunner(scratch_pool, loop_thread)
    kills = scratch_pool.kills
    report = runner.run({"surrogate": 'def rule(data, out):\n    out["x"] = chr(0xD800)\n'}, {"input": {}})

    assert report.result is None
    assert [(t.name, t.outcome, t.error) for t in report.trace] == [
        ("<sandbox>", "error", "the evaluation's output could not be encoded")]
    assert scratch_pool.kills == kills
    again = runner.run({"benign": BENIGN}, {"input": {"who": "bob"}})
    assert again.result == {"out": {"greeting": "hello bob"}, "failures": []}


@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_a_rule_whose_one_c_call_ran_past_its_deadline_is_a_timeout(request: pytest.FixtureRequest,
                                                                     loop_thread: LoopThread, isolation: str) -> None:
    executor = (InProcessRunner(SCRATCH_HOST, SLOW_C_LIMITS) if isolation == "inprocess"
                else request.getfixturevalue("slow_c_pool"))
    report = SyncRunner(executor, loop_thread).run(program_set({"slow": ONE_LONG_C_CALL}), {"input": {}})

    assert [(t.outcome, t.error) for t in report.trace] == [("timeout", "DeadlineExceeded: deadline exceeded")]
    assert report.result == {"out": {"stop": True}, "failures": [{"rule": "slow"}]}


def test_the_regular_expression_debug_flag_cannot_write_to_the_server_s_console(
        capfd: pytest.CaptureFixture[str], loop_thread: LoopThread) -> None:
    runner = SyncRunner(InProcessRunner(SCRATCH_HOST, TEST_LIMITS), loop_thread)
    report = runner.run({"debug": 'def rule(data, out):\n    re.compile("a|b", re.IGNORECASE | 128)\n'}, {"input": {}})

    assert [t.outcome for t in report.trace] == ["error"]
    assert capfd.readouterr() == ("", "")


def test_warnings_a_rule_triggers_never_reach_the_server_s_console(
        capfd: pytest.CaptureFixture[str], loop_thread: LoopThread) -> None:
    runner = SyncRunner(InProcessRunner(SCRATCH_HOST, TEST_LIMITS), loop_thread)
    report = runner.run({"nested": 'def rule(data, out):\n    out["m"] = re.match("[[a]", "[a") is not None\n'},
                        {"input": {}})

    assert [t.outcome for t in report.trace] == ["ok"]
    assert capfd.readouterr() == ("", "")


def test_a_worker_that_does_not_read_cannot_freeze_the_event_loop(loop_thread: LoopThread) -> None:
    # A frame larger than the pipe's buffer, to a stopped worker: a blocking write used to hold
    # the loop (every other request, /healthz) until the worker read again.
    pool = WorkerPool("sandbox.testing:HOST", TEST_LIMITS, size=1, queue_timeout_ms=3000)
    loop_thread.call(pool.start())
    programs = program_set({"benign": BENIGN})
    try:
        assert SyncRunner(pool, loop_thread).run(programs, {"input": {"who": "bob"}}).result is not None
        stopped = next(iter(pool._all)).process.pid
        os.kill(stopped, signal.SIGSTOP)
        # Whatever happens, the worker resumes in 2 s, so the old code finishes, late.
        resume = threading.Timer(2.0, lambda: _signal_quietly(stopped, signal.SIGCONT))
        resume.start()

        async def evaluate_while_timing_the_loop() -> tuple[float, RunReport]:
            loop = asyncio.get_running_loop()
            evaluation = asyncio.ensure_future(pool.run(programs, {"input": {"who": "x" * 300_000}}))
            started = loop.time()
            await asyncio.sleep(0.05)
            return loop.time() - started, await evaluation

        lag, report = loop_thread.call(evaluate_while_timing_the_loop())
        resume.cancel()

        assert lag < 0.5
        assert report.result == {"out": {"greeting": "hello " + "x" * 300_000}, "failures": []}
        assert pool.deaths == 1
    finally:
        loop_thread.call(pool.close())


def _signal_quietly(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def test_the_cpu_backstop_ends_a_worker_that_spins_past_its_request_s_allowance() -> None:
    # The third line, under the parent's kill and the parent-death signal: a process whose one
    # request spins past its allowance gets SIGXCPU. (The window is 0 here to keep the test short.)
    spin = ("import sandbox.worker as worker\n"
            "worker._CPU_WINDOW_S = 0.0\n"
            "worker.CpuBackstop().before(0.5)\n"
            "while True:\n"
            "    pass\n")
    ended = subprocess.run([sys.executable, "-c", spin], timeout=30, cwd=REPO_ROOT)

    assert ended.returncode == -signal.SIGXCPU
