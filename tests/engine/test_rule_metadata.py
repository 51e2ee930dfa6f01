"""Rules that remember: context.set_app_metadata / set_user_metadata through both runners.

What a rule sets is pending: it comes back in the result as `metadata_updates` (None deletes
the key), later rules see it in `user.app_metadata` / `user.user_metadata`, and a rule that
fails takes its changes with it. Bad keys and values, and metadata that would outgrow 16 KiB,
fail the rule closed with the exact message below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from engine import metadata
from engine.outcome import MalformedOutcome, Outcome
from sandbox.runner import RunReport
from tests.conftest import SyncRunner, rule_payload
from tests.engine.test_rule_api import ALLOWED, FAILED, REQUIRE_MFA, assert_failed_closed, assert_ok, rule, run

NO_UPDATES = {"app_metadata": {}, "user_metadata": {}}


def updates(report: RunReport | dict[str, Any]) -> dict[str, Any]:
    """The metadata_updates of a report or of a result (what assert_ok returns)."""
    result = report if isinstance(report, dict) else report.result
    assert result is not None
    return result["metadata_updates"]  # type: ignore[no-any-return]


def test_set_app_and_user_metadata_come_back_as_metadata_updates(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_app_metadata('visits', 3)",
                 "context.set_user_metadata('theme', {'dark': True, 'size': [1, 2.5, 'x', None]})")

    assert assert_ok(report) == {**ALLOWED, "metadata_updates": {
        "app_metadata": {"visits": 3}, "user_metadata": {"theme": {"dark": True, "size": [1, 2.5, "x", None]}}}}


def test_the_camel_case_aliases_are_the_same_calls(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.setAppMetadata('a', 1)", "context.setUserMetadata('b', 'two')")

    assert updates(assert_ok(report)) == {"app_metadata": {"a": 1}, "user_metadata": {"b": "two"}}


def test_none_deletes_a_key_and_the_last_call_for_a_key_wins(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_app_metadata('plan', None)", "context.set_app_metadata('n', 1)",
                 "context.set_app_metadata('n', 2)")

    assert updates(assert_ok(report)) == {"app_metadata": {"plan": None, "n": 2}, "user_metadata": {}}


def test_a_rule_that_sets_nothing_returns_both_kinds_empty(rule_runner: SyncRunner) -> None:
    assert updates(assert_ok(run(rule_runner, "pass"))) == NO_UPDATES


def test_the_rule_and_later_rules_see_the_pending_values_in_user_metadata(rule_runner: SyncRunner) -> None:
    report = rule_runner.run({
        "10-set": rule("context.set_app_metadata('visits', user.app_metadata.get('visits', 0) + 1)",
                       "context.set_app_metadata('plan', None)", "context.set_user_metadata('seen', ['US'])",
                       "print(user.app_metadata['visits'])"),
        "20-read": rule("print(user.app_metadata.get('visits'), 'plan' in user.app_metadata, user.app_metadata['roles'])",
                        "print(user.user_metadata['seen'], user.user_metadata['locale'])"),
    }, rule_payload(user={"app_metadata": {"visits": 4, "plan": "pro", "roles": ["staff"]}}))

    assert [(t.outcome, t.logs) for t in report.trace] == [
        ("ok", ("5",)), ("ok", ("5 False ('staff',)", "('US',) en")),
    ]
    assert updates(report) == {"app_metadata": {"visits": 5, "plan": None}, "user_metadata": {"seen": ["US"]}}


def test_pending_values_are_read_only_in_user_metadata(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_app_metadata('tags', ['a'])", "user.app_metadata['tags'].append('b')")

    assert report.trace[0].outcome == "error"
    assert report.result == {**FAILED, "metadata_updates": NO_UPDATES}


def test_a_value_changed_by_the_rule_after_the_call_is_saved_as_it_was_given(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "tags = ['a']", "context.set_app_metadata('tags', tags)", "tags.append('b')")

    assert updates(assert_ok(report))["app_metadata"] == {"tags": ["a"]}


def test_values_read_from_user_metadata_can_be_set_again(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_user_metadata('copy', user.app_metadata)")

    assert updates(assert_ok(report))["user_metadata"] == {"copy": {"roles": ["staff"], "plan": "pro"}}


def test_a_failing_rules_metadata_changes_are_rolled_back_and_earlier_rules_are_kept(
    rule_runner: SyncRunner,
) -> None:
    report = rule_runner.run({
        "10-kept": rule("context.set_app_metadata('a', 1)"),
        "20-broken": rule("context.set_app_metadata('a', 2)", "context.set_user_metadata('b', 3)",
                          "raise KeyError('x')"),
        "30-reads": rule("print(user.app_metadata.get('a'), user.user_metadata.get('b'))"),
    }, rule_payload(), REQUIRE_MFA)

    assert [t.logs for t in report.trace][2] == ("1 None",)
    assert report.result == {**ALLOWED, "mfa_required": True, "failed_rules": ["20-broken"],
                             "required_by_rules": ["20-broken"],
                             "metadata_updates": {"app_metadata": {"a": 1}, "user_metadata": {}}}


def test_a_denied_evaluation_still_reports_its_updates_the_engine_drops_them(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_app_metadata('a', 1)", "context.deny('no')")

    assert updates(report) == {"app_metadata": {"a": 1}, "user_metadata": {}}


@pytest.mark.parametrize(("key", "error"), [
    ("''", "ValueError: metadata keys are strings of 1 to 200 characters"),
    ("'k' * 201", "ValueError: metadata keys are strings of 1 to 200 characters"),
    ("chr(0xD800)", "ValueError: metadata keys must be valid Unicode (it has a lone surrogate)"),
    ("1", "TypeError: metadata keys are strings of 1 to 200 characters, not int"),
    ("None", "TypeError: metadata keys are strings of 1 to 200 characters, not NoneType"),
])
def test_bad_keys_fail_the_rule_closed(rule_runner: SyncRunner, key: str, error: str) -> None:
    report = run(rule_runner, f"context.set_app_metadata({key}, 1)")

    assert_failed_closed(report, f"{error} (line 2)")


def test_a_key_of_200_characters_is_accepted(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_app_metadata('k' * 200, 1)")

    assert updates(assert_ok(report))["app_metadata"] == {"k" * 200: 1}


@pytest.mark.parametrize(("value", "error"), [
    ("{1, 2}", "TypeError: metadata values must be plain JSON data, not set"),
    ("b'x'", "TypeError: metadata values must be plain JSON data, not bytes"),
    ("context", "TypeError: metadata values must be plain JSON data, not Context"),
    ("{1: 'a'}", "TypeError: metadata objects need string keys"),
    ("2 ** 53", "ValueError: metadata integers must lie within +-(2**53 - 1)"),
    ("float('nan')", "ValueError: metadata numbers must be finite"),
    ("float('inf')", "ValueError: metadata numbers must be finite"),
    ("'a' + chr(0xDC00)", "ValueError: metadata text must be valid Unicode (it has a lone surrogate)"),
    ("[[[[[[[[[1]]]]]]]]]", "ValueError: metadata values nest at most 8 lists and objects deep"),
])
def test_values_that_are_not_plain_json_data_fail_the_rule_closed(rule_runner: SyncRunner, value: str,
                                                                  error: str) -> None:
    report = run(rule_runner, f"context.set_user_metadata('k', {value})")

    assert_failed_closed(report, f"{error} (line 2)")


def test_eight_levels_of_nesting_and_the_largest_exact_integers_are_accepted(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_user_metadata('deep', [[[[[[[{'n': -(2 ** 53 - 1)}]]]]]]])",
                 "context.set_user_metadata('big', 2 ** 53 - 1)", "context.set_user_metadata('t', True)")

    assert updates(assert_ok(report))["user_metadata"] == {
        "deep": [[[[[[[{"n": -(2**53 - 1)}]]]]]]], "big": 2**53 - 1, "t": True}


def size_of(metadata: dict[str, Any]) -> int:
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def test_metadata_of_exactly_16_kib_is_accepted(rule_runner: SyncRunner) -> None:
    stored = {"locale": "en"}
    # {"locale":"en","blob":"..."}: fill to exactly 16,384 bytes, with multi-byte text counted in UTF-8.
    room = 16_384 - size_of({**stored, "blob": ""})
    payload = rule_payload(user={"user_metadata": stored})

    report = run(rule_runner, f"context.set_user_metadata('blob', 'é' * {room // 2} + 'x' * {room % 2})",
                 payload=payload)

    blob = updates(assert_ok(report))["user_metadata"]["blob"]
    assert size_of({**stored, "blob": blob}) == 16_384


def test_metadata_one_byte_over_16_kib_fails_the_rule_closed_and_nothing_is_kept(rule_runner: SyncRunner) -> None:
    stored = {"locale": "en"}
    room = 16_384 - size_of({**stored, "blob": ""})
    payload = rule_payload(user={"user_metadata": stored})

    report = run(rule_runner, "context.set_user_metadata('small', 1)", "context.set_user_metadata('small', None)",
                 f"context.set_user_metadata('blob', 'x' * {room + 1})", payload=payload)

    assert_failed_closed(report, "ValueError: user_metadata would take 16385 bytes as JSON, more than 16384 (line 4)")
    assert report.result is not None and report.result["metadata_updates"] == NO_UPDATES


def test_the_bound_counts_what_is_already_stored(rule_runner: SyncRunner) -> None:
    payload = rule_payload(user={"app_metadata": {"history": "x" * 16_000}})

    report = run(rule_runner, "context.set_app_metadata('more', 'y' * 400)", payload=payload)

    assert report.trace[0].error is not None
    assert report.trace[0].error.startswith("ValueError: app_metadata would take 16")


def test_deleting_keys_shrinks_metadata_that_is_already_too_large(rule_runner: SyncRunner) -> None:
    payload = rule_payload(user={"app_metadata": {"history": "x" * 17_000, "plan": "pro"}})

    report = run(rule_runner, "context.set_app_metadata('history', None)", payload=payload)

    assert updates(assert_ok(report))["app_metadata"] == {"history": None}


def test_many_deletions_of_absent_keys_are_bounded_too(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "for n in range(2000):", "    context.set_app_metadata(f'gone-{n}', None)")

    assert report.trace[0].error is not None
    assert report.trace[0].error.startswith("ValueError: the app_metadata changes of one evaluation would take")


def test_a_failed_rule_on_require_mfa_keeps_no_oversized_change(rule_runner: SyncRunner) -> None:
    report = run(rule_runner, "context.set_app_metadata('a', 'x' * 20000)", meta=REQUIRE_MFA)

    assert report.result == {**ALLOWED, "mfa_required": True, "failed_rules": ["10-rule"],
                             "required_by_rules": ["10-rule"]}


# -- the outcome the engine parses --------------------------------------------------------


def test_the_outcome_carries_the_updates(rule_runner: SyncRunner) -> None:
    outcome = Outcome.from_plain(updates_result(rule_runner))

    assert outcome.metadata_updates == {"app_metadata": {"a": [1, {"b": None}]}, "user_metadata": {"c": None}}


def updates_result(rule_runner: SyncRunner) -> dict[str, Any]:
    report = run(rule_runner, "context.set_app_metadata('a', [1, {'b': None}])", "context.set_user_metadata('c', None)")
    assert report.result is not None
    return report.result


@pytest.mark.parametrize("metadata_updates", [
    None, [], {"app_metadata": {}}, {"app_metadata": {}, "user_metadata": {}, "other": {}},
    {"app_metadata": {"": 1}, "user_metadata": {}}, {"app_metadata": {1: 1}, "user_metadata": {}},
    {"app_metadata": {"a": {1, 2}}, "user_metadata": {}}, {"app_metadata": {"a": float("nan")}, "user_metadata": {}},
    {"app_metadata": {"a": 2**64}, "user_metadata": {}}, {"app_metadata": {}, "user_metadata": []},
    {"app_metadata": {"a": "x" * 20_000}, "user_metadata": {}},
])
def test_updates_that_are_not_what_the_host_writes_are_refused(rule_runner: SyncRunner,
                                                                metadata_updates: Any) -> None:
    live = updates_result(rule_runner)

    with pytest.raises(MalformedOutcome):
        Outcome.from_plain({**live, "metadata_updates": metadata_updates})


def test_a_failed_evaluation_has_no_updates() -> None:
    assert Outcome.failed(["10-rule"], "deny").metadata_updates == NO_UPDATES


@pytest.mark.parametrize("empty", [{}, MappingProxyType({})])
def test_no_metadata_measures_as_its_json_does(empty: Mapping[str, Any]) -> None:
    assert metadata.size(empty) == len(json.dumps(dict(empty), separators=(",", ":")).encode()) == 2
