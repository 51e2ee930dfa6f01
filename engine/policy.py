"""From a pipeline outcome to a decision: allow, mfa (with ordered factors) or deny.

Factor order has three layers, strongest last: the admin's default order (`mfa.factors`),
the user's preferred order (their enrolled factors as given), and a rule's `add_factor`
calls. Factors not enabled in config, or not enrolled by the user when enrollment is
known, are dropped. When a second factor is required and none remains, the answer asks
for enrollment (or denies, by `mfa.when_no_factor`): never a login without the factor.

A user who already has a factor never enrolls another on the strength of the password
alone: when what is required is a type they lack, they first pass one of the factors they
have (`verify_then_enroll`), or are denied (`no_usable_factor`) when none of theirs is
usable. `mfa.when_no_factor` is only for users who have no factor at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine import metadata
from engine.config import MfaSettings
from engine.offers import RECOVERY_FACTOR_ID
from engine.outcome import Outcome


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str  # "allow" | "mfa" | "deny"
    reason: str | None
    factors: tuple[str, ...] = ()
    default_source: str | None = None  # "rule" | "user" | "config": the layer that chose factors[0]
    enrollment_required: bool = False
    # The types the user may enroll to meet the requirement: with "enrollment_required" at
    # once, with "verify_then_enroll" once they have passed one of `factors` (their own).
    enroll_after: tuple[str, ...] = ()

    def factors_plain(self) -> list[dict[str, Any]]:
        return [{"type": name, "default": index == 0} for index, name in enumerate(self.factors)]

    def to_plain(self) -> dict[str, Any]:
        return {"decision": self.decision, "reason": self.reason, "factors": self.factors_plain(),
                "default_factor_source": self.default_source, "enrollment_required": self.enrollment_required,
                "enroll_after": list(self.enroll_after)}


def answer(decision: Decision, outcome: Outcome, version: str, trace: Sequence[Any]) -> dict[str, Any]:
    """The answer of /v1/evaluate (and of a dry run, and `mfa-engine evaluate`): the decision, the
    provider the rules allow ("any": no restriction) and the rule that named it, what the rules
    ask of the caller (claims, where to return, metadata to save: both kinds, always, None values
    deleting keys; empty when denied, as a denied login saves nothing), the rule-set version and each rule's trace."""
    denied = decision.decision == "deny"
    return {**decision.to_plain(), "provider": outcome.provider, "provider_set_by": outcome.provider_set_by,
            "claims": {} if denied else dict(outcome.claims),
            "return_to": None if denied else outcome.return_to,
            "metadata_updates": {kind: {} if denied else dict(outcome.metadata_updates.get(kind, {}))
                                 for kind in metadata.KINDS},
            "rule_set": {"version": version}, "trace": [entry.to_plain() for entry in trace]}


def decide(outcome: Outcome, enrolled: Sequence[str] | None, settings: MfaSettings) -> Decision:
    """`enrolled` is the user's factors in preference order, or None when unknown."""
    if outcome.denied:
        return Decision("deny", outcome.deny_reason or "access_denied")
    if not outcome.mfa_required:
        return Decision("allow", None)
    usable, source = order_factors(outcome.factors, enrolled, settings.factors)
    ordered = usable if outcome.provider == "any" else [name for name in usable if name == outcome.provider]
    if ordered:
        return Decision("mfa", "rule_requires_mfa", tuple(ordered), source)
    if enrolled:
        return _verify_then_enroll(outcome, usable, source, settings)
    if settings.when_no_factor == "deny":
        return Decision("deny", "no_enrolled_factor")
    enrollable = _enrollable(outcome, settings)
    if not enrollable:
        return Decision("deny", "no_usable_factor")
    # A rule's provider holds for enrollment too: a rule asking for the authenticator is not
    # met by a phone the user adds on the way.
    return Decision("mfa", "enrollment_required", enrollment_required=True, enroll_after=enrollable)


def _enrollable(outcome: Outcome, settings: MfaSettings) -> tuple[str, ...]:
    """The factor types a user may enroll to meet this requirement."""
    return tuple(name for name in settings.factors
                 if name != RECOVERY_FACTOR_ID and outcome.provider in ("any", name))


def _verify_then_enroll(outcome: Outcome, existing: Sequence[str], source: str | None,
                        settings: MfaSettings) -> Decision:
    """The user has factors (`existing`: their usable ones, in order), none of the required type:
    enrolling one on the password alone would let a password thief add their own, so the user
    passes one of theirs first."""
    enrollable = _enrollable(outcome, settings)
    if not existing or not enrollable:
        return Decision("deny", "no_usable_factor")
    return Decision("mfa", "verify_then_enroll", tuple(existing), source, enroll_after=enrollable)


def order_factors(
    from_rules: Sequence[str], enrolled: Sequence[str] | None, enabled: Sequence[str]
) -> tuple[list[str], str | None]:
    layers = (("rule", from_rules), ("user", enrolled or ()), ("config", enabled))
    ordered: list[str] = []
    source = None
    for layer, names in layers:
        for name in names:
            usable = name in enabled and (enrolled is None or name in enrolled)
            if usable and name not in ordered:
                ordered.append(name)
                source = source or layer
    return ordered, source
