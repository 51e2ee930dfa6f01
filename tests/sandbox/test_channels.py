"""Cross-evaluation channels: the attacker's evaluation answers the same before and after the victim's.

Each channel runs on one worker process (a pool of size one) or in-process, so that the
victim's and the attacker's evaluations share whatever the process keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.inprocess import InProcessRunner
from sandbox.pool import WorkerPool
from sandbox.runner import RunReport
from sandbox.testing import HOST as SCRATCH_HOST
from tests.conftest import TEST_LIMITS, LoopThread, SyncRunner, program_set
from tests.sandbox.channels import CHANNELS, PREFIXES, SECRETS, Channel

# A worker takes about 20 MiB; the memory channel's victim leaves 24 MiB in a cycle and its
# attacker asks for 24 MiB more: under 64 MiB only if the victim's cycle was collected. The
# channels are about what an evaluation can learn, not about time: a second per rule keeps a
# loaded machine (the re cache channels compile hundreds of patterns) from failing them by deadline.
CHANNEL_LIMITS = dataclasses.replace(TEST_LIMITS, memory_mb=64, rule_timeout_ms=1000, pipeline_timeout_ms=2000,
                                     kill_grace_ms=2000)


@pytest.fixture(scope="module")
def single_worker(loop_thread: LoopThread) -> Iterator[WorkerPool]:
    pool = WorkerPool("sandbox.testing:HOST", CHANNEL_LIMITS, size=1)
    loop_thread.call(pool.start())
    yield pool
    loop_thread.call(pool.close())


def _runner(request: pytest.FixtureRequest, isolation: str) -> SyncRunner:
    loop = request.getfixturevalue("loop_thread")
    if isolation == "inprocess":
        return SyncRunner(InProcessRunner(SCRATCH_HOST, CHANNEL_LIMITS), loop)
    return SyncRunner(request.getfixturevalue("single_worker"), loop)


def _observed(report: RunReport) -> tuple[Any, ...]:
    """Everything an evaluation answers, but the durations."""
    return report.result, [(t.name, t.outcome, t.error, t.logs) for t in report.trace], report.logs_dropped


CASES = [pytest.param(ch, isolation, id=f"{ch.name}-{isolation}") for ch in CHANNELS for isolation in ch.runners]


@pytest.mark.parametrize(("channel", "isolation"), CASES)
def test_the_attacker_s_evaluation_is_a_function_of_its_own_input(request: pytest.FixtureRequest,
                                                                   channel: Channel, isolation: str) -> None:
    runner = _runner(request, isolation)
    loaded = program_set({channel.name: channel.source})
    attacker = {"input": {"role": "read"}}

    before = runner.run(loaded, attacker)
    victim = runner.run(loaded, {"input": {"role": "write", "secret": SECRETS[0], "prefixes": list(PREFIXES)}})
    after = runner.run(loaded, attacker)

    assert [t.outcome for t in victim.trace] in (["ok"], ["error"]), victim.trace

    assert [t.outcome for t in before.trace] == ["ok"], before.trace
    assert _observed(after) == _observed(before)


def test_every_channel_is_named_once_and_says_what_it_tries() -> None:
    names = [ch.name for ch in CHANNELS]
    assert len(set(names)) == len(names) >= 7
    assert all(ch.threat.strip() for ch in CHANNELS)
