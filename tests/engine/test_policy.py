"""Decisions and the three layers of factor order: config, then the user, then the rules."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.config import MfaSettings
from engine.outcome import Outcome
from engine.policy import Decision, decide, order_factors


def outcome(**changes: Any) -> Outcome:
    return Outcome(**{"denied": False, "deny_reason": None, "mfa_required": True, "provider": "any",
                      "factors": (), **changes})


def test_a_denial_wins_over_everything() -> None:
    decision = decide(outcome(denied=True, deny_reason="blocked"), ["otp"], MfaSettings())
    assert (decision.decision, decision.reason, decision.factors) == ("deny", "blocked", ())


def test_no_requirement_allows() -> None:
    assert decide(outcome(mfa_required=False), ["otp"], MfaSettings()).decision == "allow"


def test_the_rules_order_beats_the_users_which_beats_the_configs() -> None:
    assert order_factors(["sms"], ["otp", "sms"], ("otp", "sms", "recovery")) == (["sms", "otp"], "rule")
    assert order_factors([], ["sms", "otp"], ("otp", "sms", "recovery")) == (["sms", "otp"], "user")
    assert order_factors([], None, ("recovery", "otp", "sms")) == (["recovery", "otp", "sms"], "config")


def test_factors_disabled_in_config_or_not_enrolled_are_dropped() -> None:
    decision = decide(outcome(factors=["sms", "otp"]), ["otp", "recovery"], MfaSettings(factors=("otp", "sms")))
    assert decision.factors == ("otp",)
    assert decision.default_source == "rule"
    assert decision.factors_plain() == [{"type": "otp", "default": True}]


def test_a_provider_restricts_the_factors_to_that_one() -> None:
    decision = decide(outcome(provider="sms", factors=["otp"]), ["otp", "sms"], MfaSettings())
    assert decision.factors == ("sms",)


def test_required_mfa_with_no_usable_factor_asks_for_enrollment_or_denies() -> None:
    enroll = decide(outcome(), [], MfaSettings())
    assert (enroll.decision, enroll.enrollment_required, enroll.enroll_after) == ("mfa", True, ("otp", "sms"))
    deny = decide(outcome(), [], MfaSettings(when_no_factor="deny"))
    assert (deny.decision, deny.reason) == ("deny", "no_enrolled_factor")


# A user who has a factor never enrolls another before passing one (issue 6, item 2).

def test_a_user_lacking_the_required_type_passes_an_existing_factor_before_enrolling_it() -> None:
    decision = decide(outcome(provider="otp", factors=["otp"]), ["sms", "recovery"], MfaSettings())
    assert (decision.decision, decision.reason) == ("mfa", "verify_then_enroll")
    assert decision.factors == ("sms", "recovery")
    assert decision.default_source == "user"
    assert decision.enrollment_required is False
    assert decision.enroll_after == ("otp",)


def test_a_type_dropped_from_config_is_enrolled_only_after_passing_an_existing_factor() -> None:
    decision = decide(outcome(), ["sms", "recovery"], MfaSettings(factors=("otp", "sms")))
    assert (decision.decision, decision.factors, decision.enroll_after) == ("mfa", ("sms",), ())
    dropped = decide(outcome(), ["sms"], MfaSettings(factors=("otp", "recovery")))
    assert (dropped.decision, dropped.reason) == ("deny", "no_usable_factor")


def test_a_user_whose_factors_are_all_disabled_in_config_is_denied() -> None:
    decision = decide(outcome(provider="otp"), ["sms", "recovery"], MfaSettings(factors=("otp",)))
    assert (decision.decision, decision.reason) == ("deny", "no_usable_factor")


def test_when_no_factor_deny_does_not_apply_to_a_user_who_has_one() -> None:
    decision = decide(outcome(provider="otp"), ["sms"], MfaSettings(when_no_factor="deny"))
    assert (decision.decision, decision.factors, decision.enroll_after) == ("mfa", ("sms",), ("otp",))


def test_a_requirement_no_enrollment_can_meet_is_denied_for_a_user_with_factors() -> None:
    # Recovery codes come with the first factor; they cannot be enrolled on their own.
    decision = decide(outcome(provider="recovery"), ["sms"], MfaSettings())
    assert (decision.decision, decision.reason) == ("deny", "no_usable_factor")


def test_a_user_with_no_factor_enrolls_only_the_type_a_rule_restricted_the_login_to() -> None:
    otp_only = decide(outcome(provider="otp"), [], MfaSettings())
    assert (otp_only.decision, otp_only.enroll_after) == ("mfa", ("otp",))
    recovery_only = decide(outcome(provider="recovery"), [], MfaSettings())
    assert (recovery_only.decision, recovery_only.reason) == ("deny", "no_usable_factor")


def test_a_decision_with_its_layers_keeps_every_other_field() -> None:
    # with_layers names each field by position: a field added to Decision and not to it would be reset.
    decision = Decision(**{field.name: object() for field in dataclasses.fields(Decision)})
    layers = (("rule:10-x",), "required", ("new_device",), ("a note",))
    assert decision.with_layers(*layers) == dataclasses.replace(
        decision, required_by=layers[0], policy=layers[1], triggers_fired=layers[2], notes=layers[3])
