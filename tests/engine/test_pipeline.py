"""Loading a rule set whole or not at all, versioning it, and failing closed when rules break."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine.config import RulesSettings
from engine.pipeline import Pipeline, RuleSetRejected, build_rule_set, load_rule_set
from sandbox.pool import WorkerPool
from tests.conftest import TEST_LIMITS, LoopThread, SyncRunner, rule_payload

ALLOW = '"""Does nothing."""\n\ndef rule(user, context):\n    pass\n'
MFA = '"""Always asks for a second factor."""\n\ndef rule(user, context):\n    context.multifactor.enable()\n'
BROKEN = '"""Raises."""\n\ndef rule(user, context):\n    raise ValueError("boom")\n'


def write_rules(directory: Path, rules: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, source in rules.items():
        (directory / name).write_text(source, encoding="utf-8")
    return directory


def test_rules_load_in_the_order_of_their_number_with_their_summaries(tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules", {"20-b.py": MFA, "10-a.py": ALLOW, "README.md": "not a rule"})
    rule_set = load_rule_set(directory, RulesSettings(), TEST_LIMITS)
    assert [rule.id for rule in rule_set.rules] == ["10-a", "20-b"]
    assert rule_set.rules[1].summary == "Always asks for a second factor."


def test_one_broken_rule_rejects_the_set_listing_every_error(tmp_path: Path) -> None:
    directory = write_rules(tmp_path / "rules", {
        "10-ok.py": ALLOW,
        "20-syntax.py": "def rule(user, context)\n    pass\n",
        "30-import.py": "import os\n\ndef rule(user, context):\n    pass\n",
        "35-open.py": "def rule(user, context):\n    open('/etc/passwd')\n",
        "40-no-rule.py": "x = 1\n",
    })
    with pytest.raises(RuleSetRejected) as rejected:
        load_rule_set(directory, RulesSettings(), TEST_LIMITS)
    errors = rejected.value.errors
    assert any(e.startswith("20-syntax: Line 1: SyntaxError") for e in errors)
    assert any(e.startswith("30-import: Line 1:") for e in errors)
    assert "35-open: Line 2: name 'open' is not available to rules" in errors
    assert "40-no-rule: Line 1: the file must define a top-level function rule()" in errors
    assert not any(e.startswith("10-ok") for e in errors)


@pytest.mark.parametrize("name", ["geo.py", "1-geo.py", "10_geo.py", "10-Geo.py", "10-.py"])
def test_a_python_file_with_a_bad_name_rejects_the_set(tmp_path: Path, name: str) -> None:
    with pytest.raises(RuleSetRejected, match="the name must look like NN-name"):
        load_rule_set(write_rules(tmp_path / "rules", {name: ALLOW}), RulesSettings(), TEST_LIMITS)


def test_a_rule_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "10-latin.py").write_bytes(b"# caf\xe9\ndef rule(user, context):\n    pass\n")
    with pytest.raises(RuleSetRejected, match="10-latin: Line 1: source is not valid UTF-8"):
        load_rule_set(directory, RulesSettings(), TEST_LIMITS)


def test_a_missing_rules_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(RuleSetRejected, match="does not exist"):
        load_rule_set(tmp_path / "nowhere", RulesSettings(), TEST_LIMITS)


def test_the_version_changes_with_the_source_and_the_failure_mode_only() -> None:
    settings = RulesSettings()
    first = build_rule_set({"10-a": ALLOW}, settings, TEST_LIMITS).version
    assert build_rule_set({"10-a": ALLOW}, settings, TEST_LIMITS).version == first
    assert build_rule_set({"10-a": ALLOW + "\n"}, settings, TEST_LIMITS).version != first
    assert build_rule_set({"10-a": ALLOW}, RulesSettings(on_error="require_mfa"), TEST_LIMITS).version != first


def evaluate(runner: SyncRunner, loop: LoopThread, rules: dict[str, str], settings: RulesSettings) -> dict:
    pipeline = Pipeline(build_rule_set(rules, settings, TEST_LIMITS), runner.runner)
    return loop.call(pipeline.evaluate(rule_payload())).outcome


def test_a_failing_rule_denies_by_default(rule_runner: SyncRunner, loop_thread: LoopThread) -> None:
    outcome = evaluate(rule_runner, loop_thread, {"10-broken": BROKEN, "20-mfa": MFA}, RulesSettings())
    assert outcome.denied is True
    assert outcome.deny_reason == "rule_failed"
    assert outcome.failed_rules == ("10-broken",)


def test_a_failing_rule_can_require_mfa_instead_and_later_rules_still_run(
    rule_runner: SyncRunner, loop_thread: LoopThread
) -> None:
    settings = RulesSettings(on_error_by_rule={"10-broken": "require_mfa"})
    disable = '"""Tries to switch MFA off."""\n\ndef rule(user, context):\n    context.multifactor.disable()\n'
    outcome = evaluate(rule_runner, loop_thread, {"10-broken": BROKEN, "20-disable": disable}, settings)
    assert outcome.denied is False
    assert outcome.mfa_required is True


def test_a_killed_evaluation_fails_closed_with_what_the_trace_knows(rule_pool: WorkerPool, loop_thread: LoopThread) -> None:
    hang = '"""Hangs in C."""\n\ndef rule(user, context):\n    re.match("(a+)+$", "a" * 64 + "b")\n'
    for mode, denied in (("deny", True), ("require_mfa", False)):
        pipeline = Pipeline(build_rule_set({"10-ok": ALLOW, "20-hang": hang}, RulesSettings(on_error=mode),
                                           TEST_LIMITS), rule_pool)
        evaluation = loop_thread.call(pipeline.evaluate(rule_payload()))
        assert [t.outcome for t in evaluation.trace] == ["ok", "killed"]
        assert evaluation.outcome.denied is denied
        assert evaluation.outcome.mfa_required is True
        assert evaluation.outcome.failed_rules == ("20-hang",)


def test_an_in_flight_evaluation_finishes_on_the_rule_set_it_started_with(
    rule_pool: WorkerPool, loop_thread: LoopThread
) -> None:
    slow_mfa = MFA + "    total = 0\n    for i in range(20000):\n        total += i\n"
    old = build_rule_set({"10-slow-mfa": slow_mfa}, RulesSettings(), TEST_LIMITS)
    pipeline = Pipeline(old, rule_pool)
    loop_thread.call(pipeline.evaluate(rule_payload()))  # the worker loads this version first
    pending = asyncio.run_coroutine_threadsafe(pipeline.evaluate(rule_payload()), loop_thread.loop)
    time.sleep(0.002)
    pipeline.rule_set = build_rule_set({"10-allow": ALLOW}, RulesSettings(), TEST_LIMITS)
    evaluation = pending.result(10)
    assert evaluation.version == old.version
    assert evaluation.outcome.mfa_required is True
    assert loop_thread.call(pipeline.evaluate(rule_payload())).outcome.mfa_required is False
