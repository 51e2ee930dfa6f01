"""Decisions and the three layers of factor order: config, then the user, then the rules."""

from __future__ import annotations

from typing import Any

from engine.config import MfaSettings
from engine.policy import decide, order_factors


def outcome(**changes: Any) -> dict[str, Any]:
    base = {"denied": False, "deny_reason": None, "mfa_required": True, "provider": "any", "factors": []}
    return base | changes


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
    assert (enroll.decision, enroll.enrollment_required) == ("mfa", True)
    deny = decide(outcome(), [], MfaSettings(when_no_factor="deny"))
    assert (deny.decision, deny.reason) == ("deny", "no_enrolled_factor")
