"""mfa.policy (issue 10): required, optional, adaptive, never, alone and with rules and triggers;
every decision names the layers that required the factor (`required_by`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.app import create_app
from engine.config import MfaSettings, RecentTrigger, TriggersSettings
from engine.outcome import Outcome
from engine.policy import decide
from engine.triggers import Risk, Triggered
from tests.conftest import LoopThread
from tests.engine.asgi import ServiceClient
from tests.engine.service import DE_IP, US_IP, admin_auth, auth, evaluate_body, make_settings

NOTHING = Outcome(denied=False, deny_reason=None, mfa_required=False)
NO_RISK = Risk(False, None, False, False, None)


def by_rule(*rules: str) -> Outcome:
    return Outcome(denied=False, deny_reason=None, mfa_required=True, required_by_rules=rules)


def fired(*names: str, notes: tuple[str, ...] = ()) -> Triggered:
    return Triggered(names, None, NO_RISK, notes)


def mode(policy: str, **changes: Any) -> MfaSettings:
    return MfaSettings(policy=policy, **changes)


# -- policy.decide ------------------------------------------------------------------------

@pytest.mark.parametrize("enrolled", [["otp"], [], None])
def test_required_asks_every_login_for_a_factor(enrolled: list[str] | None) -> None:
    decision = decide(NOTHING, enrolled, mode("required"))
    assert decision.decision == "mfa"
    assert decision.required_by == ("policy",)
    assert decision.reason == ("enrollment_required" if enrolled == [] else "policy_requires_mfa")
    assert decision.enrollment_required is (enrolled == [])


def test_required_names_the_rules_and_triggers_that_asked_too() -> None:
    decision = decide(by_rule("20-abroad"), ["otp"], mode("required"), fired("new_device"))
    assert decision.required_by == ("policy", "trigger:new_device", "rule:20-abroad")


def test_required_with_no_factor_and_when_no_factor_deny_is_denied_never_let_through() -> None:
    decision = decide(NOTHING, [], mode("required", when_no_factor="deny"))
    assert (decision.decision, decision.reason) == ("deny", "no_enrolled_factor")


def test_a_denial_for_want_of_a_factor_keeps_the_layers_that_required_it() -> None:
    """Review of issue 10: the factor was required (by these layers) and could not be asked for."""
    decision = decide(by_rule("20-abroad"), [], mode("required", when_no_factor="deny"), fired("new_device"))
    assert (decision.decision, decision.reason) == ("deny", "no_enrolled_factor")
    assert decision.required_by == ("policy", "trigger:new_device", "rule:20-abroad")
    unusable = decide(NOTHING, ["sms"], mode("required", factors=("otp",)))
    assert (unusable.decision, unusable.reason, unusable.required_by) == ("deny", "no_usable_factor", ("policy",))


def test_a_denial_by_a_rule_or_a_country_requires_no_factor() -> None:
    denied = Outcome(denied=True, deny_reason="blocked", mfa_required=True, required_by_rules=("20-abroad",))
    assert decide(denied, ["otp"], mode("required")).required_by == ()
    country = Triggered(("new_device",), "country_denied", NO_RISK)
    assert decide(NOTHING, ["otp"], mode("required"), country).required_by == ()


def test_optional_challenges_a_user_with_a_factor() -> None:
    decision = decide(NOTHING, ["sms", "recovery"], mode("optional"))
    assert (decision.decision, decision.factors, decision.required_by) == ("mfa", ("sms", "recovery"), ("policy",))


def test_optional_lets_a_user_without_a_factor_in_with_the_password() -> None:
    decision = decide(NOTHING, [], mode("optional"))
    assert (decision.decision, decision.required_by) == ("allow", ())


def test_optional_sends_a_user_without_a_factor_to_enrollment_when_a_rule_asks() -> None:
    decision = decide(by_rule("20-abroad"), [], mode("optional"))
    assert (decision.decision, decision.enrollment_required) == ("mfa", True)
    assert decision.required_by == ("rule:20-abroad",)


def test_optional_counts_unknown_enrollment_as_enrolled_with_a_note() -> None:
    decision = decide(NOTHING, None, mode("optional"))
    assert decision.required_by == ("policy",)
    assert "policy optional: user.factors unknown, counted as enrolled" in decision.notes


def test_optional_reports_login_triggers_without_requiring_a_factor() -> None:
    decision = decide(NOTHING, [], mode("optional"), fired("new_country"))
    assert (decision.decision, decision.triggers_fired) == ("allow", ("new_country",))
    assert "trigger new_country fired; mfa.policy optional: it requires no factor" in decision.notes


def test_adaptive_lets_the_triggers_and_rules_decide() -> None:
    assert decide(NOTHING, ["otp"], mode("adaptive")).decision == "allow"
    decision = decide(NOTHING, ["otp"], mode("adaptive"), fired("new_device", "impossible_travel"))
    assert decision.required_by == ("trigger:new_device", "trigger:impossible_travel")
    assert decision.reason == "trigger_requires_mfa"
    decision = decide(by_rule("20-abroad", "40-new"), ["otp"], mode("adaptive"))
    assert (decision.required_by, decision.reason) == (("rule:20-abroad", "rule:40-new"), "rule_requires_mfa")


def test_never_asks_only_when_a_rule_does() -> None:
    decision = decide(NOTHING, ["otp"], mode("never"), fired("new_device", "countries"))
    assert (decision.decision, decision.required_by) == ("allow", ())
    assert decision.triggers_fired == ("new_device", "countries")
    decision = decide(by_rule("30-step-up"), ["otp"], mode("never"), fired("new_device"))
    assert (decision.decision, decision.required_by) == ("mfa", ("rule:30-step-up",))


@pytest.mark.parametrize("policy", ["required", "optional", "adaptive", "never"])
def test_a_denied_country_is_refused_in_every_mode(policy: str) -> None:
    triggered = Triggered((), "country_denied", NO_RISK)
    decision = decide(NOTHING, ["otp"], mode(policy), triggered)
    assert (decision.decision, decision.reason, decision.required_by) == ("deny", "country_denied", ())


def test_required_and_optional_speak_of_logins_not_of_later_actions() -> None:
    assert decide(NOTHING, ["otp"], mode("required"), action="change_profile").decision == "allow"
    assert decide(NOTHING, ["otp"], mode("optional"), action="change_profile").decision == "allow"
    decision = decide(NOTHING, ["otp"], mode("optional"), fired("sensitive_actions"), action="transaction")
    assert decision.required_by == ("trigger:sensitive_actions",)


def test_trigger_notes_and_ignored_disables_are_in_the_decision() -> None:
    outcome = Outcome(denied=False, deny_reason=None, mfa_required=False, disable_ignored_by=("35-office",))
    decision = decide(outcome, ["otp"], mode("required"),
                      fired(notes=("impossible_travel skipped: unknown coordinates",)))
    assert decision.notes == ("impossible_travel skipped: unknown coordinates",
                              "rule 35-office: multifactor.disable() ignored: mfa.policy is required")
    assert decision.to_plain()["notes"] == list(decision.notes)


# -- over HTTP: /v1/evaluate, the dry run, the decision record -------------------------------

OFFICE = '''
"""The office network never needs a second factor."""


def rule(user, context):
    context.multifactor.disable()
'''
ABROAD = '''
"""Abroad needs a second factor."""


def rule(user, context):
    if context.connection.ip_country not in ("US", "CA"):
        context.multifactor.enable()
'''
BROKEN = '''
"""Fails; its on_error is require_mfa."""


def rule(user, context):
    raise RuntimeError("down")
'''


def start(tmp_path: Path, loop: LoopThread, rules: dict[str, str], **mfa: Any) -> ServiceClient:
    settings = make_settings(tmp_path, rules, mfa=mfa,
                             rules_settings={"on_error_by_rule": {"50-broken": "require_mfa"}})
    return ServiceClient(create_app(settings), loop)


@pytest.fixture
def required(tmp_path: Path, loop_thread: LoopThread) -> Iterator[ServiceClient]:
    with start(tmp_path, loop_thread, {"20-abroad": ABROAD, "35-office": OFFICE}, policy="required") as client:
        yield client


def evaluate(client: ServiceClient, ip: str = US_IP, **user: Any) -> dict[str, Any]:
    response = client.post("/v1/evaluate", json=evaluate_body(ip, **user), headers=auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_required_cannot_be_disabled_by_a_rule_and_the_trace_says_so(required: ServiceClient) -> None:
    body = evaluate(required, DE_IP)
    assert body["decision"] == "mfa"
    assert body["policy"] == "required"
    assert body["required_by"] == ["policy", "rule:20-abroad"]
    office = next(entry for entry in body["trace"] if entry["rule"] == "35-office")
    assert office["logs"] == ["multifactor.disable() ignored: mfa.policy is required"]
    assert "rule 35-office: multifactor.disable() ignored: mfa.policy is required" in body["notes"]
    record = required.get(f"/admin/decisions/{body['decision_id']}", headers=admin_auth()).json()
    assert record["required_by"] == ["policy", "rule:20-abroad"]
    assert record["notes"] == body["notes"]


def test_required_at_home_is_required_by_the_policy_alone(required: ServiceClient) -> None:
    body = evaluate(required, US_IP)
    assert (body["decision"], body["required_by"], body["reason"]) == ("mfa", ["policy"], "policy_requires_mfa")


def test_the_dry_run_answers_required_by(required: ServiceClient) -> None:
    response = required.post("/admin/rules/dry-run", json={"user": evaluate_body(DE_IP)["user"],
                                                           "context": {"ip": DE_IP}}, headers=admin_auth())
    assert response.status_code == 200, response.text
    assert response.json()["required_by"] == ["policy", "rule:20-abroad"]


def test_adaptive_names_the_rule_and_a_disable_still_works(tmp_path: Path, loop_thread: LoopThread) -> None:
    with start(tmp_path, loop_thread, {"20-abroad": ABROAD}) as client:
        body = evaluate(client, DE_IP)
        assert (body["decision"], body["required_by"], body["policy"]) == ("mfa", ["rule:20-abroad"], "adaptive")
        assert evaluate(client, US_IP)["required_by"] == []
    (tmp_path / "b").mkdir()
    with start(tmp_path / "b", loop_thread, {"20-abroad": ABROAD, "35-office": OFFICE}) as client:
        assert evaluate(client, DE_IP)["decision"] == "allow"


def test_a_failed_rule_whose_on_error_is_require_mfa_is_named(tmp_path: Path, loop_thread: LoopThread) -> None:
    with start(tmp_path, loop_thread, {"50-broken": BROKEN}, policy="never") as client:
        body = evaluate(client, US_IP)
        assert (body["decision"], body["required_by"]) == ("mfa", ["rule:50-broken"])


def test_never_ignores_a_fired_trigger_but_not_a_rule(tmp_path: Path, loop_thread: LoopThread) -> None:
    with start(tmp_path, loop_thread, {"20-abroad": ABROAD}, policy="never",
               triggers=TriggersSettings(new_device=RecentTrigger(enabled=True))) as client:
        body = evaluate(client, US_IP, known_device_ids=["dev-other"])
        assert (body["decision"], body["required_by"], body["triggers_fired"]) == ("allow", [], ["new_device"])
        body = evaluate(client, DE_IP, known_device_ids=["dev-other"])
        assert (body["decision"], body["required_by"]) == ("mfa", ["rule:20-abroad"])


def test_optional_over_http_with_and_without_enrolled_factors(tmp_path: Path, loop_thread: LoopThread) -> None:
    with start(tmp_path, loop_thread, {"20-abroad": ABROAD}, policy="optional") as client:
        body = evaluate(client, US_IP, factors=["otp"])
        assert (body["decision"], body["required_by"]) == ("mfa", ["policy"])
        assert evaluate(client, US_IP, factors=[])["decision"] == "allow"
        body = evaluate(client, DE_IP, factors=[])
        assert (body["decision"], body["enrollment_required"], body["required_by"]) == ("mfa", True,
                                                                                        ["rule:20-abroad"])



# -- sensitive actions are the administrator's explicit request: every mode ------------------

@pytest.mark.parametrize("policy", ["required", "optional", "adaptive", "never"])
def test_a_sensitive_action_requires_a_factor_in_every_mode(policy: str) -> None:
    decision = decide(NOTHING, ["otp"], mode(policy), fired("sensitive_actions"), action="transaction")
    assert (decision.decision, decision.reason) == ("mfa", "trigger_requires_mfa")
    assert decision.required_by == ("trigger:sensitive_actions",)
    assert decision.factors == ("otp",)


def test_never_counts_the_sensitive_action_but_still_only_reports_the_other_triggers() -> None:
    decision = decide(NOTHING, ["otp"], mode("never"), fired("new_device", "sensitive_actions"), action="transaction")
    assert decision.required_by == ("trigger:sensitive_actions",)
    assert "trigger new_device fired; mfa.policy never: it requires no factor" in decision.notes
    assert not any("sensitive_actions" in note for note in decision.notes)


def test_never_sends_a_user_without_a_factor_to_enrollment_for_a_sensitive_action() -> None:
    decision = decide(NOTHING, [], mode("never"), fired("sensitive_actions"), action="transaction")
    assert (decision.decision, decision.enrollment_required) == ("mfa", True)
    decision = decide(NOTHING, [], mode("never", when_no_factor="deny"), fired("sensitive_actions"),
                      action="transaction")
    assert (decision.decision, decision.reason) == ("deny", "no_enrolled_factor")


def test_never_over_http_asks_for_a_recent_factor_for_a_sensitive_action(
        tmp_path: Path, loop_thread: LoopThread) -> None:
    from engine.config import SensitiveActionsTrigger

    triggers = TriggersSettings(sensitive_actions=SensitiveActionsTrigger(actions=("transfer",)))
    with start(tmp_path, loop_thread, {}, policy="never", triggers=triggers) as client:
        body = evaluate_body(US_IP)
        body["context"]["action"] = "transfer"
        answer = client.post("/v1/evaluate", json=body, headers=auth()).json()
        assert (answer["decision"], answer["required_by"], answer["policy"]) == (
            "mfa", ["trigger:sensitive_actions"], "never"), answer
        body["context"]["action"] = "change_profile"
        answer = client.post("/v1/evaluate", json=body, headers=auth()).json()
        assert (answer["decision"], answer["required_by"]) == ("allow", []), answer


def test_a_login_denied_for_want_of_a_factor_names_the_layers_in_the_403_and_the_record(
        tmp_path: Path, loop_thread: LoopThread) -> None:
    with start(tmp_path, loop_thread, {"20-abroad": ABROAD}, policy="required", when_no_factor="deny") as client:
        created = client.post("/admin/users", json={"username": "bob", "password": "correct horse battery staple"},
                              headers=admin_auth())
        assert created.status_code == 201, created.text
        response = client.post("/v1/login", json={"username": "bob", "password": "correct horse battery staple",
                                                  "client_id": "app-1", "context": {"ip": DE_IP}}, headers=auth())
        assert response.status_code == 403, response.text
        body = response.json()
        assert (body["reason"], body["required_by"]) == ("no_enrolled_factor", ["policy", "rule:20-abroad"])
        record = client.get(f"/admin/decisions/{body['decision_id']}", headers=admin_auth()).json()
        assert (record["decision"], record["required_by"]) == ("deny", ["policy", "rule:20-abroad"])
