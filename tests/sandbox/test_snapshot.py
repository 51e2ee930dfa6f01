"""Module snapshots keep every evaluation fresh while running module bodies only once."""

from __future__ import annotations

import pytest

from sandbox.guards import Guards
from sandbox.programs import compile_set
from sandbox.runner import prepare_programs
from sandbox.testing import HOST
from tests.conftest import TEST_LIMITS, SyncRunner, program_set


def snapshot_of(source: str) -> object:
    programs = compile_set(program_set({"10-r": source}), TEST_LIMITS)
    return prepare_programs(programs, Guards(HOST.access, TEST_LIMITS))[0].snapshot


@pytest.mark.parametrize("source", [
    'HOME = {"US", "CA"}\nOFFICE = ipaddress.ip_network("198.51.100.0/24")\nPATTERN = re.compile("a+")\n'
    'LIMITS = dict(otp=[1, 2], sms=(3, {"x": 4}))\nMATCH = re.match\nWHEN = datetime.timedelta(days=1)\n'
    'def helper(x, seen=[]):\n    return x\nCHECKS = [helper, lambda v: v]\ndef rule(data, out):\n    pass\n',
])
def test_modules_of_shareable_and_copyable_values_get_a_snapshot(source: str) -> None:
    assert snapshot_of(source) is not None


@pytest.mark.parametrize(("case", "source"), [
    ("closure", "def make():\n    kept = []\n    def inner():\n        return kept\n    return inner\n"
                "remember = make()\ndef rule(data, out):\n    pass\n"),
    ("generator", "STREAM = (n for n in range(3))\ndef rule(data, out):\n    pass\n"),
    ("printing", "print('loaded')\ndef rule(data, out):\n    pass\n"),
    ("failing", "BROKEN = 1 // 0\ndef rule(data, out):\n    pass\n"),
    ("over budget", "def spin():\n    while True:\n        pass\nX = spin()\ndef rule(data, out):\n    pass\n"),
])
def test_modules_with_state_that_cannot_be_copied_run_again_every_time(case: str, source: str) -> None:
    assert snapshot_of(source) is None


def test_module_containers_start_over_on_every_evaluation(scratch_runner: SyncRunner) -> None:
    source = ("SEEN = list()\nBY_KEY = {'n': [0]}\ndef remember(x, acc=[]):\n    acc.append(x)\n    return acc\n"
              "def rule(data, out):\n    SEEN.append(data['n'])\n    BY_KEY['n'].append(data['n'])\n"
              "    out['seen'] = SEEN\n    out['by_key'] = BY_KEY['n']\n    out['acc'] = remember(data['n'])\n")
    assert snapshot_of(source) is not None
    programs = program_set({"10-r": source})
    for n in (1, 2, 3):
        report = scratch_runner.run(programs, {"input": {"n": n}})
        assert report.result == {"out": {"seen": [n], "by_key": [0, n], "acc": [n]}, "failures": []}


def test_two_names_for_one_list_stay_one_list(scratch_runner: SyncRunner) -> None:
    source = "A = list()\nB = A\ndef rule(data, out):\n    A.append(1)\n    out['b'] = B\n"
    assert snapshot_of(source) is not None
    assert scratch_runner.run({"10-r": source}, {"input": {}}).result == {"out": {"b": [1]}, "failures": []}


def test_functions_kept_in_containers_use_this_evaluations_budget_and_trace(scratch_runner: SyncRunner) -> None:
    source = ("def count():\n    total = 0\n    for i in range(2000):\n        total += i\n    print('counted', total)\n"
              "    return total\nSTEPS = dict(count=count)\n"
              "def rule(data, out):\n    out['total'] = STEPS['count']()\n")
    assert snapshot_of(source) is not None
    programs = program_set({"10-r": source})
    for _ in range(2):
        report = scratch_runner.run(programs, {"input": {}})
        assert report.result == {"out": {"total": 1999000}, "failures": []}
        assert report.trace[0].logs == ("counted 1999000",)


def test_a_snapshotted_function_still_times_out_on_this_evaluations_deadline(scratch_runner: SyncRunner) -> None:
    source = "def spin():\n    while True:\n        pass\nJOBS = list([spin])\ndef rule(data, out):\n    JOBS[0]()\n"
    assert snapshot_of(source) is not None
    report = scratch_runner.run({"10-r": source}, {"input": {}})
    assert report.trace[0].outcome == "timeout"
