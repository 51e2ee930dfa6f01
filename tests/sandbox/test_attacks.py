"""The attack corpus (attacks.py) against the compiler and both runners: each attack fails exactly as named."""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.rule_host import HOST as RULE_HOST
from sandbox.compiler import CompileErrors, compile_program
from sandbox.errors import CompileFailed
from sandbox.inprocess import InProcessRunner
from sandbox.pool import WorkerPool
from sandbox.runner import RunReport
from sandbox.testing import HOST as SCRATCH_HOST
from tests.conftest import TEST_LIMITS, LoopThread, SyncRunner, program_set, rule_payload
from tests.sandbox.attacks import (
    BENIGN_RULE,
    BENIGN_SCRATCH,
    CAPPED_MEMORY_MB,
    CORPUS,
    ONE_CALL,
    PAYLOAD,
    STATEFUL,
    Attack,
    Fails,
    Rejected,
)

ADVISORIES = ("CVE-2023-37271", "CVE-2023-41039", "CVE-2024-47532", "CVE-2025-22153", "CVE-2026-55830",
              "CVE-2026-76825")
_HOSTS = {"scratch": SCRATCH_HOST, "rule": RULE_HOST}
_POOLS = {"scratch": "scratch_pool", "rule": "rule_pool"}

REJECTED = [pytest.param(attack, id=attack.name) for attack in CORPUS if isinstance(attack.expected, Rejected)]
AT_RUN_TIME = [
    pytest.param(attack, isolation, id=f"{attack.name}-{isolation}")
    for attack in CORPUS if isinstance(attack.expected, Fails) for isolation in attack.runners
]


@pytest.fixture(scope="module")
def capped_memory_pool(loop_thread: LoopThread) -> Iterator[WorkerPool]:
    """One scratch worker with a small address space.

    Memory attacks touch every page they allocate: under the default 512 MiB a loaded
    machine can reach the kill deadline first. A small cap makes RLIMIT_AS answer in tens
    of milliseconds, and a long kill grace keeps the deadline out of the way. One worker,
    so the benign evaluation afterwards runs on the very process that ran out of memory.
    """
    limits = dataclasses.replace(TEST_LIMITS, memory_mb=CAPPED_MEMORY_MB, kill_grace_ms=2000)
    pool = WorkerPool("sandbox.testing:HOST", limits, size=1)
    loop_thread.call(pool.start())
    yield pool
    loop_thread.call(pool.close())


def runner_for(request: pytest.FixtureRequest, attack: Attack, isolation: str) -> SyncRunner:
    loop = request.getfixturevalue("loop_thread")
    if isolation == "inprocess":
        return SyncRunner(InProcessRunner(_HOSTS[attack.host], TEST_LIMITS), loop)
    if attack.capped_memory:
        return SyncRunner(request.getfixturevalue("capped_memory_pool"), loop)
    return SyncRunner(request.getfixturevalue(_POOLS[attack.host]), loop)


def payload_for(host: str) -> dict[str, Any]:
    return copy.deepcopy(PAYLOAD) if host == "scratch" else rule_payload()


def assert_failed_closed(attack: Attack, outcome: str, report: RunReport) -> None:
    """Nothing the attack wrote survives, and the host's failure policy applied."""
    if outcome == "killed":
        assert report.result is None
    elif attack.host == "scratch":
        assert report.result == {"out": {"stop": True}, "failures": [{"rule": attack.name}]}
    else:
        assert report.result is not None
        assert (report.result["denied"], report.result["deny_reason"]) == (True, "rule_failed")
        assert report.result["failed_rules"] == [attack.name]
        assert report.result["claims"] == {}


def assert_still_answers(runner: SyncRunner, host: str) -> None:
    if host == "scratch":
        report = runner.run({"benign": BENIGN_SCRATCH}, {"input": {"who": "bob"}})
        assert report.result == {"out": {"greeting": "hello bob"}, "failures": []}
    else:
        report = runner.run({"benign": BENIGN_RULE}, rule_payload())
        assert report.result is not None
        assert (report.result["mfa_required"], report.result["factors"]) == (True, ["otp"])
    assert [(t.name, t.outcome, t.error) for t in report.trace] == [("benign", "ok", None)]


def test_the_corpus_holds_at_least_forty_attacks_each_named_once() -> None:
    names = [attack.name for attack in CORPUS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in names)


@pytest.mark.parametrize("advisory", ADVISORIES)
def test_every_public_restrictedpython_advisory_has_an_attack(advisory: str) -> None:
    assert any(advisory in attack.threat for attack in CORPUS)


@pytest.mark.parametrize("attack", REJECTED)
def test_attack_is_rejected_at_compile_time_with_its_message(attack: Attack) -> None:
    assert isinstance(attack.expected, Rejected)

    compiled = compile_program(attack.source, attack.name)

    assert isinstance(compiled, CompileErrors)
    assert attack.expected.error in compiled.errors


@pytest.mark.parametrize("attack", REJECTED)
def test_rejected_attack_never_reaches_either_runner(scratch_runner: SyncRunner, attack: Attack) -> None:
    assert isinstance(attack.expected, Rejected)

    with pytest.raises(CompileFailed) as failure:
        scratch_runner.run({attack.name: attack.source}, PAYLOAD)

    assert f"{attack.name}: {attack.expected.error}" in failure.value.errors


@pytest.mark.parametrize(("attack", "isolation"), AT_RUN_TIME)
def test_attack_fails_at_run_time_exactly_as_named(request: pytest.FixtureRequest, attack: Attack,
                                                   isolation: str) -> None:
    expected = attack.expected
    assert isinstance(expected, Fails)
    runner = runner_for(request, attack, isolation)
    payload = payload_for(attack.host)

    report = runner.run({attack.name: attack.source}, payload)

    assert [t.name for t in report.trace] == [attack.name]
    outcome, error = report.trace[0].outcome, report.trace[0].error
    assert re.fullmatch(expected.outcome, outcome), outcome
    assert error is not None and re.fullmatch(expected.pattern, error), error
    assert_failed_closed(attack, outcome, report)
    assert payload == payload_for(attack.host)
    if isolation == "process":
        assert_still_answers(runner, attack.host)


# A loose bound on an in-process run of a one-call attack: the rule's deadline is 100 ms
# (TEST_LIMITS); compiling, a loaded machine and the check interval stay well under this.
IN_PROCESS_BOUND_SECONDS = 2.0


@pytest.mark.parametrize("attack", [pytest.param(attack, id=attack.name) for attack in ONE_CALL])
def test_one_call_attack_ends_in_process_within_a_few_deadlines(request: pytest.FixtureRequest,
                                                                attack: Attack) -> None:
    runner = runner_for(request, attack, "inprocess")
    loaded = program_set({attack.name: attack.source})

    started = time.perf_counter()
    report = runner.run(loaded, payload_for(attack.host))
    elapsed = time.perf_counter() - started

    assert isinstance(attack.expected, Fails)
    assert [t.name for t in report.trace] == [attack.name]
    assert re.fullmatch(attack.expected.outcome, report.trace[0].outcome), report.trace[0].outcome
    assert elapsed < IN_PROCESS_BOUND_SECONDS, f"{elapsed:.2f} s in-process"


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_no_state_survives_from_one_evaluation_into_the_next(scratch_runner: SyncRunner, name: str) -> None:
    # Four evaluations of one loaded program set: the pool's two workers run it twice each.
    loaded = program_set({name: STATEFUL[name]})
    for who in ("alice", "bob", "carol", "dave"):
        report = scratch_runner.run(loaded, {"input": {"who": who}})

        assert report.result == {"out": {"seen": [who]}, "failures": []}
        assert [t.outcome for t in report.trace] == ["ok"]
