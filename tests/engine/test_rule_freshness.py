"""`context.authentication.completed_within(minutes, factors=None)` on both runners: how fresh the
session's factors are, by `context.now`, and the exact refusal each misuse gets (the rule fails closed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from engine import rule_lint
from sandbox.runner import RunReport
from tests.conftest import SyncRunner, rule_payload

NOW = "2026-11-27T10:00:00+00:00"
KNOWN = "known factors: otp, totp, sms, recovery"


def methods(*entries: tuple[str, str]) -> dict[str, Any]:
    return {"methods": [{"name": name, "timestamp": at} for name, at in entries]}


PWD_AT_NINE = ("pwd", "2026-11-27T09:00:00+00:00")
SESSION = methods(PWD_AT_NINE, ("otp", "2026-11-27T09:58:00+00:00"))


def run(runner: SyncRunner, call: str, authentication: Mapping[str, Any] = SESSION) -> RunReport:
    source = f"def rule(user, context):\n    print({call})\n"
    return runner.run({"10-rule": source}, rule_payload(authentication=dict(authentication), now=NOW))


def printed(report: RunReport) -> str:
    assert [(t.outcome, t.error) for t in report.trace] == [("ok", None)], report.trace
    (line,) = report.trace[0].logs
    return line


def failed_with(report: RunReport) -> str | None:
    assert report.result is not None and report.result["denied"] is True
    assert report.result["deny_reason"] == "rule_failed"
    return report.trace[0].error


@pytest.mark.parametrize(("call", "expected"), [
    ("context.authentication.completed_within(minutes=5)", "True"),
    ("context.authentication.completed_within(minutes=5, factors=['otp', 'sms'])", "True"),
    ("context.authentication.completed_within(minutes=5, factors=['totp'])", "True"),
    ("context.authentication.completed_within(minutes=5, factors=('sms', 'recovery'))", "False"),
    # Two minutes exactly: the boundary is fresh.
    ("context.authentication.completed_within(minutes=2)", "True"),
    ("context.authentication.completed_within(minutes=1.5)", "False"),
    ("context.authentication.completed_within(5, ['otp'])", "True"),
    ("context.authentication.completed_within(minutes=0)", "False"),
])
def test_a_factor_counts_as_fresh_by_its_completion_time_and_name(rule_runner: SyncRunner, call: str,
                                                                  expected: str) -> None:
    assert printed(run(rule_runner, call)) == expected


def test_a_factor_from_six_minutes_ago_is_not_within_five(rule_runner: SyncRunner) -> None:
    session = methods(PWD_AT_NINE, ("sms", "2026-11-27T09:54:00+00:00"))
    report = run(rule_runner, "context.authentication.completed_within(minutes=5, factors=['otp', 'sms'])", session)
    assert printed(report) == "False"


def test_the_latest_completion_of_a_factor_is_the_one_that_counts(rule_runner: SyncRunner) -> None:
    session = methods(PWD_AT_NINE, ("otp", "2026-11-27T09:10:00+00:00"), ("otp", "2026-11-27T09:59:00+00:00"))
    assert printed(run(rule_runner, "context.authentication.completed_within(minutes=5)", session)) == "True"


def test_the_password_is_not_a_factor_however_recent(rule_runner: SyncRunner) -> None:
    session = methods(("pwd", NOW))
    assert printed(run(rule_runner, "context.authentication.completed_within(minutes=60)", session)) == "False"


def test_no_methods_at_all_is_not_fresh(rule_runner: SyncRunner) -> None:
    assert printed(run(rule_runner, "context.authentication.completed_within(minutes=60)", {"methods": []})) == "False"


@pytest.mark.parametrize("minutes", [5, 60, 527040])
def test_a_factor_dated_after_context_now_is_not_fresh(rule_runner: SyncRunner, minutes: int) -> None:
    """A completion time later than `context.now` cannot be a real one (a caller's clock, or a forged
    method): it never counts as fresh, however wide the window; a real one beside it still does."""
    future = methods(PWD_AT_NINE, ("otp", "2026-11-27T10:00:01+00:00"), ("sms", "2027-01-01T00:00:00+00:00"))
    call = f"context.authentication.completed_within(minutes={minutes})"
    assert printed(run(rule_runner, call, future)) == "False"
    beside = methods(("pwd", "2026-11-27T09:00:00+00:00"), ("otp", "2026-11-27T10:00:01+00:00"),
                     ("sms", "2026-11-27T09:58:00+00:00"))
    assert printed(run(rule_runner, call, beside)) == "True"


def test_a_factor_completed_exactly_at_context_now_is_fresh(rule_runner: SyncRunner) -> None:
    session = methods(PWD_AT_NINE, ("otp", NOW))
    assert printed(run(rule_runner, "context.authentication.completed_within(minutes=0)", session)) == "True"


@pytest.mark.parametrize(("call", "error"), [
    ("completed_within(minutes=-1)", "ValueError: completed_within(minutes=...) must be 0 to 527040 (line 2)"),
    ("completed_within(minutes=600000)", "ValueError: completed_within(minutes=...) must be 0 to 527040 (line 2)"),
    ("completed_within(minutes=float('nan'))",
     "ValueError: completed_within(minutes=...) must be 0 to 527040 (line 2)"),
    ("completed_within(minutes='5')", "TypeError: completed_within(minutes=...) takes a number (line 2)"),
    ("completed_within(minutes=True)", "TypeError: completed_within(minutes=...) takes a number (line 2)"),
    ("completed_within(minutes=None)", "TypeError: completed_within(minutes=...) takes a number (line 2)"),
    ("completed_within(minutes=5, factors='otp')",
     "TypeError: completed_within(factors=...) takes a list of factor names (line 2)"),
    ("completed_within(minutes=5, factors=[])",
     "ValueError: completed_within(factors=...) must name 1 to 16 factors (line 2)"),
    ("completed_within(minutes=5, factors=['push'])", f"ValueError: unknown factor 'push'; {KNOWN} (line 2)"),
    ("completed_within(minutes=5, factors=['pwd'])", f"ValueError: unknown factor 'pwd'; {KNOWN} (line 2)"),
])
def test_a_misused_completed_within_fails_the_rule_closed(rule_runner: SyncRunner, call: str, error: str) -> None:
    assert failed_with(run(rule_runner, f"context.authentication.{call}")) == error


def test_completed_within_needs_minutes(rule_runner: SyncRunner) -> None:
    error = failed_with(run(rule_runner, "context.authentication.completed_within()"))
    assert error is not None and error.startswith("TypeError:") and "minutes" in error


def test_an_unknown_keyword_of_completed_within_is_a_load_time_error() -> None:
    source = "def rule(user, context):\n    context.authentication.completed_within(minute=5)\n"
    assert rule_lint.lint(source) == [
        "Line 2: context.authentication.completed_within() has no keyword argument 'minute'; did you mean minutes?"]
